//! `endpoints:`: references, addresses, MACs, aliases, ports.

use super::super::raw::*;
use super::super::*;
use super::networks::article;
use super::{gateway_v4, gateway_v6, host_problem, known, Diagnostics, MAX_OBJECT_NAME};
use crate::drivers::{Gateway, Ipam};
use crate::naming::{is_hostname, valid_identifier, valid_kernel_name};
use crate::topology::parse_port;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub(super) fn check_endpoints(
    c: &mut Diagnostics,
    raw: &Map<Option<RawEndpoint>>,
    networks: &BTreeMap<String, Network>,
    sandboxes: &BTreeMap<String, Sandbox>,
) -> BTreeMap<String, Endpoint> {
    let mut out = BTreeMap::new();
    for (name, spanned) in raw {
        if let Err(e) = valid_identifier(name, MAX_OBJECT_NAME) {
            c.err(spanned, format!("endpoint '{name}': name {e}"));
            continue;
        }
        let Some(e) = &spanned.value else {
            c.err(
                spanned,
                format!("endpoint {name}: needs network: and sandbox:"),
            );
            continue;
        };
        let net = check_references(c, name, e, networks, sandboxes);
        let mut ep = Endpoint {
            name: name.clone(),
            loc: spanned.into(),
            network: e.network.value.clone(),
            sandbox: e.sandbox.value.clone(),
            address: None,
            ipv6_address: None,
            mac: None,
            ifname: None,
            aliases: Vec::new(),
            ports: Vec::new(),
            gateway: e.gateway.as_ref().map(|g| g.value).unwrap_or(false),
        };
        check_address(c, name, e, net, &mut ep);
        check_ipv6_address(c, name, e, net, &mut ep);
        check_mac(c, name, e, net, &mut ep);
        check_ifname(c, name, e, net, &mut ep);
        check_aliases(c, name, e, &mut ep);
        check_ports(c, name, e, net, &mut ep);
        check_gateway(c, name, e, net);
        out.insert(name.clone(), ep);
    }
    check_ifnames_unique(c, raw, &out);
    out
}

/// The endpoint's network and sandbox must be defined; returns its network.
fn check_references<'a>(
    c: &mut Diagnostics,
    name: &str,
    e: &RawEndpoint,
    networks: &'a BTreeMap<String, Network>,
    sandboxes: &BTreeMap<String, Sandbox>,
) -> Option<&'a Network> {
    let net = networks.get(&e.network.value);
    // A network or sandbox that was refused has its own error.
    if net.is_none() && !c.is_refused("network", &e.network.value) {
        c.err(
            &e.network,
            format!(
                "endpoint {name}: network '{}' is not defined{}",
                e.network.value,
                known(networks.keys())
            ),
        );
    }
    if !sandboxes.contains_key(&e.sandbox.value) && !c.is_refused("sandbox", &e.sandbox.value) {
        c.err(
            &e.sandbox,
            format!(
                "endpoint {name}: sandbox '{}' is not defined{}",
                e.sandbox.value,
                known(sandboxes.keys())
            ),
        );
    }
    net
}

/// `address:`: a host of the network's explicit subnet, not its gateway.
fn check_address(
    c: &mut Diagnostics,
    name: &str,
    e: &RawEndpoint,
    net: Option<&Network>,
    ep: &mut Endpoint,
) {
    let Some(a) = &e.address else {
        return;
    };
    let Some(ip) = c.parse::<Ipv4Addr>(a, &format!("endpoint {name}: address")) else {
        return;
    };
    // The network's subnet was refused: that error says it all.
    if net.is_some_and(|n| c.is_addressing_broken(&n.name)) {
        return;
    }
    match net {
        Some(n) if !n.caps.interfaces || n.caps.ipam == Ipam::None => c.err(
            a,
            format!(
                "endpoint {name}: network {} (driver {}) assigns no addresses",
                n.name, n.driver
            ),
        ),
        Some(n) if !n.ipv4 => c.err(
            a,
            format!(
                "endpoint {name}: network {} has ipv4: false; give it an ipv6_address instead",
                n.name
            ),
        ),
        // An IPAM plugin is asked for it (and decides).
        Some(n) if n.subnet.is_none() && n.ipam.is_some() => ep.address = Some(ip),
        Some(n) => match n.subnet {
            None => c.err(
                a,
                format!(
                    "endpoint {name}: a static address needs network {} to have an explicit subnet",
                    n.name
                ),
            ),
            Some(sub) => match host_problem(
                sub.network().into(),
                sub.broadcast().into(),
                sub.contains(ip),
                ip.into(),
            ) {
                Some(p) => c.err(a, format!("endpoint {name}: address {ip} {p} {sub}")),
                None if Some(ip) == gateway_v4(n) => c.err(
                    a,
                    format!(
                        "endpoint {name}: address {ip} is the gateway of network {}",
                        n.name
                    ),
                ),
                None if n.aux_addresses.values().any(|a| *a == IpAddr::V4(ip)) => c.err(
                    a,
                    format!(
                        "endpoint {name}: address {ip} is one of the aux_addresses of network {}",
                        n.name
                    ),
                ),
                None => ep.address = Some(ip),
            },
        },
        None => {}
    }
}

/// `ipv6_address:`: a host of the network's ipv6 subnet, not its gateway.
fn check_ipv6_address(
    c: &mut Diagnostics,
    name: &str,
    e: &RawEndpoint,
    net: Option<&Network>,
    ep: &mut Endpoint,
) {
    let Some(a) = &e.ipv6_address else {
        return;
    };
    let Some(ip) = c.parse::<Ipv6Addr>(a, &format!("endpoint {name}: ipv6_address")) else {
        return;
    };
    if net.is_some_and(|n| c.is_addressing_broken(&n.name)) {
        return;
    }
    match net.map(|n| (n, &n.ipv6)) {
        Some((n, None)) => c.err(
            a,
            format!("endpoint {name}: network {} has no ipv6 subnet", n.name),
        ),
        Some((n, Some(v6))) => match host_problem(
            v6.subnet.network().into(),
            IpAddr::V6(v6.subnet.broadcast()),
            v6.subnet.contains(ip),
            ip.into(),
        ) {
            Some(p) => c.err(
                a,
                format!("endpoint {name}: ipv6_address {ip} {p} {}", v6.subnet),
            ),
            None if Some(ip) == gateway_v6(n, v6) => c.err(
                a,
                format!(
                    "endpoint {name}: ipv6_address {ip} is the gateway of network {}",
                    n.name
                ),
            ),
            None if n.aux_addresses.values().any(|a| *a == IpAddr::V6(ip)) => c.err(
                a,
                format!(
                    "endpoint {name}: ipv6_address {ip} is one of the aux_addresses of network {}",
                    n.name
                ),
            ),
            None => ep.ipv6_address = Some(ip),
        },
        None => {}
    }
}

/// `mac:`: a valid address, on a network whose endpoints are interfaces.
fn check_mac(
    c: &mut Diagnostics,
    name: &str,
    e: &RawEndpoint,
    net: Option<&Network>,
    ep: &mut Endpoint,
) {
    let Some(m) = &e.mac else {
        return;
    };
    let bridged = net.map(|n| n.caps.interfaces);
    match parse_mac(&m.value) {
        Ok(mac) if bridged == Some(false) => {
            let _ = mac;
            c.err(
                m,
                format!(
                    "endpoint {name}: mac does not apply to a {} network",
                    net.map(|n| n.driver.as_str()).unwrap_or("")
                ),
            );
        }
        Ok(mac) => ep.mac = Some(mac),
        Err(why) => c.err(m, format!("endpoint {name}: mac '{}' {why}", m.value)),
    }
}

/// `ifname:`: the interface's name in the sandbox (Docker's
/// `com.docker.network.endpoint.ifname`, compose's `interface_name`), for
/// drivers that make one; not `lo`.
fn check_ifname(
    c: &mut Diagnostics,
    name: &str,
    e: &RawEndpoint,
    net: Option<&Network>,
    ep: &mut Endpoint,
) {
    let Some(i) = &e.ifname else {
        return;
    };
    let why = match valid_kernel_name(&i.value) {
        Err(why) => why,
        Ok(()) if i.value == "lo" => "is the loopback's".to_string(),
        Ok(()) => match net {
            Some(n) if !n.caps.interfaces => {
                let d = n.driver.as_str();
                return c.err(
                    i,
                    format!("endpoint {name}: ifname does not apply to {} {d} network: it makes no interface", article(d)),
                );
            }
            _ => {
                ep.ifname = Some(i.value.clone());
                return;
            }
        },
    };
    c.err(i, format!("endpoint {name}: ifname '{}' {why}", i.value));
}

/// Two endpoints of one sandbox cannot have the same interface name.
fn check_ifnames_unique(
    c: &mut Diagnostics,
    raw: &Map<Option<RawEndpoint>>,
    eps: &BTreeMap<String, Endpoint>,
) {
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for e in eps.values() {
        let Some(ifname) = &e.ifname else { continue };
        if let Some(first) = seen.insert((&e.sandbox, ifname), &e.name) {
            let at = raw[&e.name].value.as_ref().and_then(|r| r.ifname.as_ref());
            if let Some(at) = at {
                c.err(
                    at,
                    format!(
                        "endpoint {}: sandbox {} already has an interface {ifname} (endpoint {first})",
                        e.name, e.sandbox
                    ),
                );
            }
        }
    }
}

/// `aliases:`: host names.
fn check_aliases(c: &mut Diagnostics, name: &str, e: &RawEndpoint, ep: &mut Endpoint) {
    for a in &e.aliases {
        match is_hostname(&a.value) {
            Ok(()) => ep.aliases.push(a.value.clone()),
            Err(why) => c.err(
                a,
                format!("endpoint {name}: alias '{}' {why}", a.value.escape_debug()),
            ),
        }
    }
}

/// `ports:`: valid mappings, on a network that publishes ports.
fn check_ports(
    c: &mut Diagnostics,
    name: &str,
    e: &RawEndpoint,
    net: Option<&Network>,
    ep: &mut Endpoint,
) {
    for p in &e.ports {
        match parse_port(&p.value) {
            Ok(pm) => match net {
                Some(n) if !n.caps.ports => c.err(
                    p,
                    format!(
                        "endpoint {name}: ports cannot be published on {} {} network; publish them on a bridge endpoint of sandbox {}",
                        article(&n.driver),
                        n.driver,
                        ep.sandbox
                    ),
                ),
                Some(n) if n.internal => c.err(
                    p,
                    format!(
                        "endpoint {name}: network {} is internal; it cannot publish ports",
                        n.name
                    ),
                ),
                _ => ep.ports.push(pm),
            },
            Err(why) => c.err(p, format!("endpoint {name}: {why}")),
        }
    }
}

/// `gateway: true` needs a network that routes out.
fn check_gateway(c: &mut Diagnostics, name: &str, e: &RawEndpoint, net: Option<&Network>) {
    if let (Some(g), Some(n)) = (&e.gateway, net) {
        if g.value && (n.internal || n.caps.gateway == Gateway::None) {
            c.err(g, format!("endpoint {name}: gateway: true needs a non-internal network with a gateway; {} is not", n.name));
        }
    }
}
