//! `endpoints:`: references, addresses, MACs, aliases, ports.

use super::super::names::{is_hostname, valid_identifier};
use super::super::ports::parse_port;
use super::super::raw::*;
use super::super::*;
use super::networks::article;
use super::{gateway_v4, gateway_v6, host_problem, known, Diagnostics, MAX_OBJECT_NAME};
use crate::drivers::{Gateway, Ipam};
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
        let net = networks.get(&e.network.value);
        if net.is_none() {
            c.err(
                &e.network,
                format!(
                    "endpoint {name}: network '{}' is not defined{}",
                    e.network.value,
                    known(networks.keys())
                ),
            );
        }
        if !sandboxes.contains_key(&e.sandbox.value) {
            c.err(
                &e.sandbox,
                format!(
                    "endpoint {name}: sandbox '{}' is not defined{}",
                    e.sandbox.value,
                    known(sandboxes.keys())
                ),
            );
        }
        let mut ep = Endpoint {
            name: name.clone(),
            loc: spanned.into(),
            network: e.network.value.clone(),
            sandbox: e.sandbox.value.clone(),
            address: None,
            ipv6_address: None,
            mac: None,
            aliases: Vec::new(),
            ports: Vec::new(),
            gateway: e.gateway.as_ref().map(|g| g.value).unwrap_or(false),
        };
        let bridged = net.map(|n| n.caps.interfaces);
        if let Some(a) = &e.address {
            if let Some(ip) = c.parse::<Ipv4Addr>(a, &format!("endpoint {name}: address")) {
                match net {
                    Some(n) if !n.caps.interfaces || n.caps.ipam == Ipam::None => c.err(a, format!("endpoint {name}: network {} (driver {}) assigns no addresses", n.name, n.driver)),
                    Some(n) => match n.subnet {
                        None => c.err(a, format!("endpoint {name}: a static address needs network {} to have an explicit subnet", n.name)),
                        Some(sub) => match host_problem(sub.network().into(), sub.broadcast().into(), sub.contains(ip), ip.into()) {
                            Some(p) => c.err(a, format!("endpoint {name}: address {ip} {p} {sub}")),
                            None if Some(ip) == gateway_v4(n) => c.err(a, format!("endpoint {name}: address {ip} is the gateway of network {}", n.name)),
                            None => ep.address = Some(ip),
                        },
                    },
                    None => {}
                }
            }
        }
        if let Some(a) = &e.ipv6_address {
            if let Some(ip) = c.parse::<Ipv6Addr>(a, &format!("endpoint {name}: ipv6_address")) {
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
                        None => ep.ipv6_address = Some(ip),
                    },
                    None => {}
                }
            }
        }
        if let Some(m) = &e.mac {
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
        for a in &e.aliases {
            match is_hostname(&a.value) {
                Ok(()) => ep.aliases.push(a.value.clone()),
                Err(why) => c.err(
                    a,
                    format!("endpoint {name}: alias '{}' {why}", a.value.escape_debug()),
                ),
            }
        }
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
        if let (Some(g), Some(n)) = (&e.gateway, net) {
            if g.value && (n.internal || n.caps.gateway == Gateway::None) {
                c.err(g, format!("endpoint {name}: gateway: true needs a non-internal network with a gateway; {} is not", n.name));
            }
        }
        out.insert(name.clone(), ep);
    }
    out
}
