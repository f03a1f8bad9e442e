//! A network's addressing: subnets and gateways of both families, MTU,
//! `aux_addresses`, and the ranges no container network may use.

use super::super::raw::*;
use super::super::*;
use super::{host_problem, Diagnostics};
use crate::drivers::Gateway;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Subnets (both families) and MTU, for drivers that use them.
pub(super) fn check_addressing(c: &mut Diagnostics, name: &str, n: &RawNetwork, net: &mut Network) {
    check_ipv4(c, name, n, net);
    if let Some(v6) = &n.ipv6 {
        net.ipv6 = check_ipv6(c, name, &v6.value);
    }
    check_aux_addresses(c, name, n, net);
    if let Some(m) = &n.mtu {
        if !(68..=65535).contains(&m.value) {
            c.err(
                m,
                format!("network {name}: mtu {} is outside 68..65535", m.value),
            );
        }
    }
    if let Some(v) = n.options.get(crate::drivers::DOCKER_MTU_OPTION) {
        let key = crate::drivers::DOCKER_MTU_OPTION;
        let value = v
            .value
            .as_u64()
            .or_else(|| v.value.as_str().and_then(|s| s.trim().parse().ok()))
            .and_then(|m| u32::try_from(m).ok());
        match (value, &n.mtu) {
            (None, _) => c.err(v, format!("network {name}: options.{key} must be a number")),
            (Some(m), _) if !(68..=65535).contains(&m) => c.err(
                v,
                format!("network {name}: options.{key} {m} is outside 68..65535"),
            ),
            (Some(m), Some(mtu)) if mtu.value != m => c.err(
                v,
                format!(
                    "network {name}: options.{key} {m} contradicts mtu {}",
                    mtu.value
                ),
            ),
            (Some(m), _) => net.mtu = Some(m),
        }
    }
}

/// `aux_addresses: { NAME: IP }`: each an address of the network's
/// explicit subnet of its family that is not the subnet's own, its
/// broadcast or the gateway, and not given twice. (An IPAM plugin's
/// network gets none: the plugin decides its addresses.)
fn check_aux_addresses(c: &mut Diagnostics, name: &str, n: &RawNetwork, net: &mut Network) {
    if n.aux_addresses.len() > MAX_AUX_ADDRESSES {
        if let Some((_, v)) = n.aux_addresses.iter().next() {
            c.err(
                v,
                format!("network {name}: at most {MAX_AUX_ADDRESSES} aux_addresses"),
            );
        }
        return;
    }
    let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for (key, v) in &n.aux_addresses {
        let what = format!("network {name}: aux_addresses.{key}");
        if n.ipam.is_some() {
            c.err(
                v,
                format!("{what}: a network addressed by an IPAM plugin takes no aux_addresses"),
            );
            continue;
        }
        let Ok(ip) = v.value.trim().parse::<IpAddr>() else {
            c.err(v, format!("{what}: '{}' is not an IP address", v.value));
            continue;
        };
        let inside = match ip {
            IpAddr::V4(a) => net.subnet.map(|s| {
                s.contains(a)
                    && a != s.network()
                    && a != s.broadcast()
                    && Some(a) != super::gateway_v4(net)
            }),
            IpAddr::V6(a) => net.ipv6.as_ref().map(|v| {
                v.subnet.contains(a)
                    && a != v.subnet.network()
                    && Some(a) != super::gateway_v6(net, v)
            }),
        };
        match inside {
            None => c.err(
                v,
                format!(
                    "{what}: {ip} needs an explicit {} subnet on the network",
                    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
            ),
            Some(false) => c.err(
                v,
                format!("{what}: {ip} is not a host address of the subnet other than the gateway"),
            ),
            Some(true) => {
                if let Some(first) = seen.insert(ip, key) {
                    c.err(v, format!("{what}: {ip} is also aux_addresses.{first}"));
                } else {
                    net.aux_addresses.insert(key.clone(), ip);
                }
            }
        }
    }
}

/// More reserved addresses than any real network needs.
const MAX_AUX_ADDRESSES: usize = 1024;

fn check_ipv4(c: &mut Diagnostics, name: &str, n: &RawNetwork, net: &mut Network) {
    if let Some(s) = &n.subnet {
        match s.value.parse::<ipnetwork::IpNetwork>() {
            Ok(ipnetwork::IpNetwork::V4(v4)) => {
                if v4.ip() != v4.network() {
                    c.err(s, format!("network {name}: subnet {v4} has host bits set; did you mean {}/{}?", v4.network(), v4.prefix()));
                } else if v4.prefix() > 30 {
                    c.err(s, format!("network {name}: subnet {v4} is too small; use a /30 or larger"));
                } else if let Some(why) = reserved_v4(v4) {
                    c.err(s, format!("network {name}: subnet {v4} {why}; a container network needs ordinary unicast addresses (for example from 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)"));
                } else {
                    net.subnet = Some(v4);
                }
            }
            Ok(ipnetwork::IpNetwork::V6(_)) => {
                c.err(s, format!("network {name}: subnet takes an IPv4 network; put IPv6 under ipv6: {{ subnet: ... }}"))
            }
            Err(_) => c.err(s, format!("network {name}: subnet '{}' is not a CIDR network like 10.0.0.0/24", s.value)),
        }
        if net.subnet.is_none() {
            c.addressing_broken(name);
        }
    }
    if let Some(g) = n
        .gateway
        .as_ref()
        .filter(|_| matches!(net.caps.gateway, Gateway::OnHost | Gateway::Outside))
    {
        if let Some(ip) = c.parse::<Ipv4Addr>(g, &format!("network {name}: gateway")) {
            match net.subnet {
                Some(sub) => match host_problem(
                    sub.network().into(),
                    sub.broadcast().into(),
                    sub.contains(ip),
                    ip.into(),
                ) {
                    Some(p) => c.err(g, format!("network {name}: gateway {ip} {p} {sub}")),
                    None => net.gateway = Some(ip),
                },
                None if n.subnet.is_none() => c.err(
                    g,
                    format!("network {name}: gateway needs an explicit subnet"),
                ),
                None => {}
            }
        }
    }
    if let Some(r) = &n.ip_range {
        if let Some(range) = c.parse::<Ipv4Network>(r, &format!("network {name}: ip_range")) {
            match net.subnet {
                Some(sub)
                    if !(sub.contains(range.network()) && sub.contains(range.broadcast())) =>
                {
                    c.err(
                        r,
                        format!("network {name}: ip_range {range} is not inside subnet {sub}"),
                    )
                }
                Some(_) => {
                    net.ip_range =
                        Some(Ipv4Network::new(range.network(), range.prefix()).unwrap_or(range))
                }
                None if n.subnet.is_none() => c.err(
                    r,
                    format!("network {name}: ip_range needs an explicit subnet"),
                ),
                None => {}
            }
        }
    }
}

fn check_ipv6(c: &mut Diagnostics, name: &str, v6: &RawIpv6) -> Option<Ipv6Config> {
    let cfg = check_ipv6_config(c, name, v6);
    if cfg.is_none() {
        c.addressing_broken(name);
    }
    cfg
}

fn check_ipv6_config(c: &mut Diagnostics, name: &str, v6: &RawIpv6) -> Option<Ipv6Config> {
    let subnet = match v6.subnet.value.parse::<ipnetwork::IpNetwork>() {
        Ok(ipnetwork::IpNetwork::V6(s)) if s.ip() != s.network() => {
            c.err(
                &v6.subnet,
                format!(
                    "network {name}: ipv6 subnet {s} has host bits set; did you mean {}/{}?",
                    s.network(),
                    s.prefix()
                ),
            );
            return None;
        }
        Ok(ipnetwork::IpNetwork::V6(s)) if reserved_v6(s).is_some() => {
            c.err(
                &v6.subnet,
                format!(
                    "network {name}: ipv6 subnet {s} {}; a container network needs ordinary unicast addresses (for example from fd00::/8)",
                    reserved_v6(s).unwrap_or_default()
                ),
            );
            return None;
        }
        Ok(ipnetwork::IpNetwork::V6(s)) if s.prefix() > 126 => {
            c.err(
                &v6.subnet,
                format!("network {name}: ipv6 subnet {s} is too small; use a /126 or larger"),
            );
            return None;
        }
        Ok(ipnetwork::IpNetwork::V6(s)) => s,
        _ => {
            c.err(
                &v6.subnet,
                format!(
                    "network {name}: ipv6 subnet '{}' is not an IPv6 CIDR network like fd00::/64",
                    v6.subnet.value
                ),
            );
            return None;
        }
    };
    let mut cfg = Ipv6Config {
        subnet,
        gateway: None,
        ip_range: None,
    };
    if let Some(g) = &v6.gateway {
        if let Some(ip) = c.parse::<Ipv6Addr>(g, &format!("network {name}: ipv6 gateway")) {
            match host_problem(
                subnet.network().into(),
                IpAddr::V6(subnet.broadcast()),
                subnet.contains(ip),
                ip.into(),
            ) {
                Some(p) => c.err(g, format!("network {name}: ipv6 gateway {ip} {p} {subnet}")),
                None => cfg.gateway = Some(ip),
            }
        }
    }
    if let Some(r) = &v6.ip_range {
        if let Some(range) = c.parse::<Ipv6Network>(r, &format!("network {name}: ipv6 ip_range")) {
            if subnet.contains(range.network()) && subnet.contains(range.broadcast()) {
                cfg.ip_range =
                    Some(Ipv6Network::new(range.network(), range.prefix()).unwrap_or(range));
            } else {
                c.err(
                    r,
                    format!("network {name}: ipv6 ip_range {range} is not inside subnet {subnet}"),
                );
            }
        }
    }
    Some(cfg)
}

/// Why a subnet (of either family) cannot carry a container network, if
/// it cannot (also applied to pools an IPAM plugin gives).
pub fn reserved(n: ipnetwork::IpNetwork) -> Option<&'static str> {
    match n {
        ipnetwork::IpNetwork::V4(v) => reserved_v4(v),
        ipnetwork::IpNetwork::V6(v) => reserved_v6(v),
    }
}

/// Why an IPv4 subnet cannot carry a container network, if it cannot.
fn reserved_v4(n: Ipv4Network) -> Option<&'static str> {
    let overlaps = |r: &str| {
        let r: Ipv4Network = r.parse().ok()?;
        (r.contains(n.network()) || n.contains(r.network())).then_some(())
    };
    [
        ("0.0.0.0/8", "covers the unspecified address 0.0.0.0"),
        ("127.0.0.0/8", "is in the loopback range 127.0.0.0/8"),
        (
            "169.254.0.0/16",
            "is in the link-local range 169.254.0.0/16",
        ),
        ("224.0.0.0/4", "is in the multicast range 224.0.0.0/4"),
        ("240.0.0.0/4", "is in the reserved range 240.0.0.0/4"),
    ]
    .into_iter()
    .find_map(|(r, why)| overlaps(r).map(|()| why))
}

/// Why an IPv6 subnet cannot carry a container network, if it cannot.
fn reserved_v6(n: Ipv6Network) -> Option<&'static str> {
    let overlaps = |r: &str| {
        let r: Ipv6Network = r.parse().ok()?;
        (r.contains(n.network()) || n.contains(r.network())).then_some(())
    };
    [
        ("::/128", "covers the unspecified address ::"),
        ("::1/128", "covers the loopback address ::1"),
        ("fe80::/10", "is in the link-local range fe80::/10"),
        ("ff00::/8", "is in the multicast range ff00::/8"),
    ]
    .into_iter()
    .find_map(|(r, why)| overlaps(r).map(|()| why))
}
