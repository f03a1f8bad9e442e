//! Published ports: the port maps (one element per port, in maps keyed
//! by protocol and port), their DNAT rules, and how each is labelled.

use super::*;

/// A port that names no host address binds to its network's
/// `host_binding_ipv4` when the network sets one (Docker's default host IP).
pub(super) fn with_binding(ctx: &FirewallCtx<'_>, network: &str, pm: &PortMapping) -> PortMapping {
    let binding = ctx
        .topology
        .networks
        .get(network)
        .and_then(|n| n.options.get::<BridgeOptions>())
        .and_then(|o| o.host_binding_ipv4);
    PortMapping {
        host_ip: pm.host_ip.or(binding.map(IpAddr::V4)),
        ..*pm
    }
}

/// A single published port to a single target: one map element. Ranges
/// stay rules of their own (a shifted range is a per-port mapping).
pub(super) fn single(pm: &PortMapping) -> bool {
    pm.published.0 == pm.published.1 && pm.target.0 == pm.target.1
}

/// Published single ports as elements of the port maps (IPv4/IPv6, any
/// host address / one host address; each an address map and a port map):
/// `[HOST .] PROTO . PORT → ADDR` and `→ TARGET`. The first address of a
/// family wins a key (as the first of two rules did).
pub(super) fn port_maps(ctx: &FirewallCtx<'_>) -> Vec<FwMap> {
    let mut maps = [
        port_maps_of(true, false),
        port_maps_of(true, true),
        port_maps_of(false, false),
        port_maps_of(false, true),
    ];
    for ep in ctx.topology.endpoints.values() {
        let Some(v) = ctx.state.endpoints.get(&ep.name) else {
            continue;
        };
        for pm in ep.ports.iter().filter(|pm| single(pm)) {
            let pm = &with_binding(ctx, &ep.network, pm);
            for addr in v.addrs.iter().map(IpNetwork::ip) {
                let at = match pm.host_ip {
                    Some(ip) if ip.is_ipv4() != addr.is_ipv4() => continue,
                    Some(ip) if !ip.is_unspecified() => Some(ip),
                    _ => None,
                };
                let i = if addr.is_ipv4() { 0 } else { 2 } + usize::from(at.is_some());
                let mut key: Vec<Atom> = at.iter().map(|ip| Atom::Text(ip.to_string())).collect();
                key.push(Atom::Text(pm.protocol.as_str().to_string()));
                key.push(Atom::Num(u32::from(pm.published.0)));
                let [addrs, ports] = &mut maps[i];
                if addrs.elements.contains_key(&key) {
                    continue;
                }
                let label = port_label(pm, &ep.name, addr);
                addrs
                    .elements
                    .insert(key.clone(), vec![Atom::Text(addr.to_string())]);
                addrs.labels.insert(key.clone(), label.clone());
                ports
                    .elements
                    .insert(key.clone(), vec![Atom::Num(u32::from(pm.target.0))]);
                ports.labels.insert(key, label);
            }
        }
    }
    maps.into_iter()
        .flatten()
        .filter(|m| !m.elements.is_empty())
        .collect()
}

/// The DNAT rules that look the port maps up, for traffic arriving
/// (prerouting) and from the host itself (output): the maps keyed by host
/// address first, then those for any local address.
pub(super) fn map_rules(maps: &[FwMap], push: &mut impl FnMut(&str, String, Body)) {
    for chain in ["prerouting", "output"] {
        for at_address in [true, false] {
            for addrs in maps
                .iter()
                .filter(|m| (m.key_type.len() == 3) == at_address && m.name.ends_with("_addr"))
            {
                let v4 = addrs.value_type.first().is_some_and(|t| t == "ipv4_addr");
                let base = addrs.name.trim_end_matches("_addr");
                let ports = format!("{base}_port");
                let mut body = Vec::new();
                if !at_address {
                    body.push(r::nfproto(v4));
                    body.push(r::to_local_address());
                }
                body.push(r::dnat_maps(v4, at_address, &addrs.name, &ports));
                let suffix = if chain == "output" {
                    " (from the host)"
                } else {
                    ""
                };
                push(chain, format!("published ports: @{base}_*{suffix}"), body);
            }
        }
    }
}

/// Published port ranges: DNAT from any host address (or the given one),
/// for traffic arriving (prerouting) and from the host itself (output). A
/// range is one rule: the ports kept, or shifted through a map.
pub(super) fn ports(ctx: &FirewallCtx<'_>, push: &mut impl FnMut(&str, String, Body)) {
    for chain in ["prerouting", "output"] {
        for ep in ctx
            .topology
            .endpoints
            .values()
            .filter(|e| !e.ports.is_empty())
        {
            let Some(v) = ctx.state.endpoints.get(&ep.name) else {
                continue;
            };
            for pm in ep.ports.iter().filter(|pm| !single(pm)) {
                let pm = &with_binding(ctx, &ep.network, pm);
                for addr in v.addrs.iter().map(IpNetwork::ip) {
                    let Some(body) = dnat(pm, addr) else { continue };
                    let suffix = if chain == "output" {
                        " (from the host)"
                    } else {
                        ""
                    };
                    push(
                        chain,
                        format!("{}{suffix}", port_label(pm, &ep.name, addr)),
                        body,
                    );
                }
            }
        }
    }
}

/// Rules are written as nft lists them back (the golden files compare the
/// two): a match on an `ip`/`ip6` header field implies the family, so
/// `meta nfproto` is only written where nothing else says it.
pub(super) fn dnat(pm: &PortMapping, addr: IpAddr) -> Option<Body> {
    let mut body = Vec::new();
    match pm.host_ip {
        Some(ip) if ip.is_ipv4() != addr.is_ipv4() => return None,
        Some(ip) if !ip.is_unspecified() => body.push(r::daddr_eq(ip)),
        _ => {
            body.push(r::nfproto(addr.is_ipv4()));
            body.push(r::to_local_address());
        }
    }
    let proto = pm.protocol.as_str();
    body.push(r::dport(proto, pm.published));
    body.push(r::dnat(addr, proto, pm.published, pm.target));
    Some(body)
}

/// `port 0.0.0.0:8080/tcp → web 10.0.0.2:80`.
pub(super) fn port_label(pm: &PortMapping, endpoint: &str, addr: IpAddr) -> String {
    format!(
        "port {}:{}/{} → {endpoint} {}:{}",
        host_ip(pm, addr),
        range(pm.published),
        pm.protocol.as_str(),
        fmt_addr(addr),
        range(pm.target),
    )
}

/// "80" or "8000-8010".
pub(super) fn range((a, b): (u16, u16)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

pub(super) fn host_ip(pm: &PortMapping, addr: IpAddr) -> String {
    match (pm.host_ip, addr) {
        (Some(ip), _) => fmt_addr(ip),
        (None, IpAddr::V4(_)) => "0.0.0.0".into(),
        (None, IpAddr::V6(_)) => "[::]".into(),
    }
}

pub(super) fn fmt_addr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}
