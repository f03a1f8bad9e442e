//! Rules that relate several objects of the file.

use super::super::raw::*;
use super::super::*;
use super::Diagnostics;
use std::collections::BTreeMap;

/// Rules that relate several objects.
pub(super) fn check_cross(c: &mut Diagnostics, t: &Topology, raw_eps: &Map<Option<RawEndpoint>>) {
    let loc_of = |ep: &str| raw_eps.get(ep).map(Loc::from).unwrap_or_default();
    check_overlapping_subnets(c, t);
    check_duplicates(c, t, loc_of);
    check_port_clashes(c, t, loc_of);
    check_sandbox_rules(c, t, loc_of);
}

/// Overlapping subnets (both families).
fn check_overlapping_subnets(c: &mut Diagnostics, t: &Topology) {
    let nets: Vec<&Network> = t.networks.values().collect();
    for (i, a) in nets.iter().enumerate() {
        for b in &nets[i + 1..] {
            if let (Some(x), Some(y)) = (a.subnet, b.subnet) {
                if x.contains(y.network()) || y.contains(x.network()) {
                    c.err(
                        b.loc,
                        format!(
                            "network {}: subnet {y} overlaps subnet {x} of network {}",
                            b.name, a.name
                        ),
                    );
                }
            }
            if let (Some(x), Some(y)) = (&a.ipv6, &b.ipv6) {
                if x.subnet.contains(y.subnet.network()) || y.subnet.contains(x.subnet.network()) {
                    c.err(
                        b.loc,
                        format!(
                            "network {}: ipv6 subnet {} overlaps ipv6 subnet {} of network {}",
                            b.name, y.subnet, x.subnet, a.name
                        ),
                    );
                }
            }
        }
    }
}

/// Duplicate addresses per network, duplicate MACs anywhere, one endpoint
/// per sandbox and network.
fn check_duplicates(c: &mut Diagnostics, t: &Topology, loc_of: impl Fn(&str) -> Loc) {
    let mut seen_v4: BTreeMap<(String, Ipv4Addr), String> = BTreeMap::new();
    let mut seen_v6: BTreeMap<(String, Ipv6Addr), String> = BTreeMap::new();
    let mut seen_mac: BTreeMap<[u8; 6], String> = BTreeMap::new();
    let mut seen_join: BTreeMap<(String, String), String> = BTreeMap::new();
    for ep in t.endpoints.values() {
        if let Some(a) = ep.address {
            if let Some(first) = seen_v4.insert((ep.network.clone(), a), ep.name.clone()) {
                c.err(
                    loc_of(&ep.name),
                    format!(
                        "endpoint {}: address {a} is also assigned to endpoint {first}",
                        ep.name
                    ),
                );
            }
        }
        if let Some(a) = ep.ipv6_address {
            if let Some(first) = seen_v6.insert((ep.network.clone(), a), ep.name.clone()) {
                c.err(
                    loc_of(&ep.name),
                    format!(
                        "endpoint {}: ipv6_address {a} is also assigned to endpoint {first}",
                        ep.name
                    ),
                );
            }
        }
        if let Some(m) = ep.mac {
            if let Some(first) = seen_mac.insert(m, ep.name.clone()) {
                c.err(
                    loc_of(&ep.name),
                    format!(
                        "endpoint {}: mac {} is also used by endpoint {first}",
                        ep.name,
                        format_mac(&m)
                    ),
                );
            }
        }
        if let Some(first) =
            seen_join.insert((ep.sandbox.clone(), ep.network.clone()), ep.name.clone())
        {
            c.err(
                loc_of(&ep.name),
                format!(
                    "endpoint {}: sandbox {} already joins network {} through endpoint {first}",
                    ep.name, ep.sandbox, ep.network
                ),
            );
        }
    }
}

/// Published ports that clash.
fn check_port_clashes(c: &mut Diagnostics, t: &Topology, loc_of: impl Fn(&str) -> Loc) {
    // Published ports, sorted by protocol and first port: each is compared
    // only with the ones whose range starts inside its own (no N²).
    let mut all_ports: Vec<(&Endpoint, &PortMapping)> = t
        .endpoints
        .values()
        .flat_map(|e| e.ports.iter().map(move |p| (e, p)))
        .collect();
    // A host port cnm chooses is kept by endpoint, protocol, container
    // port and host address: the same one twice would share it.
    for e in t.endpoints.values() {
        let mut seen = std::collections::BTreeSet::new();
        for p in e.ports.iter().filter(|p| p.ephemeral()) {
            if !seen.insert((p.protocol, p.target.0, p.host_ip)) {
                c.err(
                    loc_of(&e.name),
                    format!("endpoint {}: port {p} is listed twice", e.name),
                );
            }
        }
    }
    all_ports.sort_by_key(|(e, p)| (p.protocol, p.published.0, e.name.clone()));
    for (i, (ea, pa)) in all_ports.iter().enumerate() {
        for (eb, pb) in all_ports[i + 1..]
            .iter()
            .take_while(|(_, pb)| pb.protocol == pa.protocol && pb.published.0 <= pa.published.1)
        {
            if pa.clashes_with(pb) {
                let ((first, fp), (second, sp)) = if (&ea.name, pa) <= (&eb.name, pb) {
                    ((ea, pa), (eb, pb))
                } else {
                    ((eb, pb), (ea, pa))
                };
                c.err(
                    loc_of(&second.name),
                    format!(
                        "endpoint {}: port {sp} clashes with port {fp} of endpoint {}",
                        second.name, first.name
                    ),
                );
            }
        }
    }
}

/// Sandbox-level rules: host/null networks are exclusive; one gateway.
fn check_sandbox_rules(c: &mut Diagnostics, t: &Topology, loc_of: impl Fn(&str) -> Loc) {
    let mut by_sandbox: BTreeMap<&str, Vec<&Endpoint>> = BTreeMap::new();
    for e in t.endpoints.values() {
        by_sandbox.entry(e.sandbox.as_str()).or_default().push(e);
    }
    let mut borrowers: BTreeMap<&NetnsRef, &str> = BTreeMap::new();
    for sb in t.sandboxes.values() {
        if let Some(r) = &sb.netns {
            if let Some(first) = borrowers.insert(r, &sb.name) {
                c.err(
                    sb.loc,
                    format!(
                        "sandbox {}: netns {r} is borrowed by sandbox {first} already",
                        sb.name
                    ),
                );
            }
        }
    }
    for sb in t.sandboxes.values() {
        let eps: &[&Endpoint] = by_sandbox.get(sb.name.as_str()).map_or(&[], Vec::as_slice);
        if eps.len() > 1 {
            let exclusive = eps.iter().find_map(|e| {
                t.networks
                    .get(&e.network)
                    .filter(|n| n.caps.exclusive)
                    .map(|n| (e, n))
            });
            if let Some((e, n)) = exclusive {
                c.err(loc_of(&e.name), format!(
                    "endpoint {}: sandbox {} joins a {} network and other networks; a {} network must be its only one",
                    e.name, sb.name, n.driver, n.driver
                ));
            }
        }
        if (sb.netns.is_some() || !sb.sysctls.is_empty()) && t.sandbox_uses_host_stack(&sb.name) {
            c.err(
                sb.loc,
                format!(
                    "sandbox {}: netns: and sysctls: need a namespace of the sandbox's own; it joins a network of the host's stack",
                    sb.name
                ),
            );
        }
        // host-gateway is the gateway of the sandbox's default route.
        if let Some(x) = sb.extra_hosts.iter().find(|x| x.ip.is_none()) {
            let routed = eps.iter().any(|e| {
                t.networks
                    .get(&e.network)
                    .is_some_and(|n| n.caps.gateway.has_address() && !n.internal)
            });
            if !routed {
                c.err(
                    x.loc,
                    format!(
                        "sandbox {}: extra_hosts {x}: host-gateway is the gateway of the sandbox's default route, and it has none (no endpoint on a non-internal network with a gateway)",
                        sb.name
                    ),
                );
            }
        }
        let gws: Vec<&&Endpoint> = eps.iter().filter(|e| e.gateway).collect();
        if gws.len() > 1 {
            c.err(
                loc_of(&gws[1].name),
                format!(
                    "endpoint {}: sandbox {} already routes through endpoint {} (gateway: true)",
                    gws[1].name, sb.name, gws[0].name
                ),
            );
        }
    }
}
