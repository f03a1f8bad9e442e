//! `networks:`: the driver (found in the registry, any name accepted: it
//! may be a plugin), the keys the driver's [`Caps`] allow, addressing, and
//! the driver's own options, checked by the driver.

use super::super::raw::*;
use super::super::*;
use super::{host_problem, Diagnostics, MAX_OBJECT_NAME};
use crate::drivers::{Caps, Gateway, NetworkInput, Opaque, Options, Registry};
use crate::naming::valid_identifier;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

pub(super) fn check_networks(
    c: &mut Diagnostics,
    topology: &str,
    raw: &Map<Option<RawNetwork>>,
    hosts: &BTreeMap<String, Host>,
    reg: &Registry,
) -> BTreeMap<String, Network> {
    let mut out = BTreeMap::new();
    for (name, spanned) in raw {
        if let Err(e) = valid_identifier(name, MAX_OBJECT_NAME) {
            c.err(spanned, format!("network '{name}': name {e}"));
            continue;
        }
        let empty = RawNetwork::default();
        let n = spanned.value.as_ref().unwrap_or(&empty);
        if let Some(net) = check_network(c, topology, name, spanned.into(), n, hosts, reg) {
            out.insert(name.clone(), net);
        }
    }
    for driver in reg.names() {
        let mine: Vec<&Network> = out.values().filter(|n| n.driver == driver).collect();
        if let (false, Some(d)) = (mine.is_empty(), reg.get(driver)) {
            d.check_together(&mine, c);
        }
    }
    out
}

fn check_network(
    c: &mut Diagnostics,
    topology: &str,
    name: &str,
    loc: Loc,
    n: &RawNetwork,
    hosts: &BTreeMap<String, Host>,
    reg: &Registry,
) -> Option<Network> {
    if let Some(d) = n.driver.as_ref().filter(|d| d.value.is_none()) {
        c.err(
            d,
            format!("network {name}: driver is YAML's null here; write driver: \"null\" (quoted) for Docker's null driver, or leave driver out for bridge"),
        );
        return None;
    }
    let driver_name = n
        .driver
        .as_ref()
        .and_then(|d| d.value.as_deref())
        .unwrap_or(crate::spec::DEFAULT_DRIVER);
    let driver_loc = n.driver.as_ref().map(Loc::from).unwrap_or(loc);
    // Any other driver may be a plugin: plan decides. The name becomes part
    // of plugin paths, so it passes the name check.
    if let Err(e) = valid_identifier(driver_name, MAX_OBJECT_NAME) {
        c.err(
            driver_loc,
            format!(
                "network {name}: driver name '{}' {e}",
                driver_name.escape_debug()
            ),
        );
        return None;
    }
    let driver = reg.get(driver_name);
    let caps = driver.map_or(Caps::UNKNOWN, |d| d.caps());
    let mut net = Network {
        name: name.to_string(),
        loc,
        driver: driver_name.to_string(),
        driver_loc,
        caps,
        subnet: None,
        gateway: None,
        ip_range: None,
        ipv6: None,
        ipv4: n.ipv4.as_ref().is_none_or(|b| b.value),
        internal: n.internal.as_ref().map(|b| b.value).unwrap_or(false),
        mtu: n.mtu.as_ref().map(|m| m.value),
        aux_addresses: BTreeMap::new(),
        options: Options(Arc::new(Opaque::default())),
        ipam: None,
    };
    check_keys(c, name, driver_name, driver_loc, n, hosts, caps);
    net.ipam = check_ipam(c, name, driver_name, n, caps);
    if caps.addressing {
        check_addressing(c, name, n, &mut net);
    }
    check_ipv6_only(c, name, driver_name, n, &net);
    net.options = match driver {
        Some(d) => d.check(
            &NetworkInput {
                topology,
                name,
                loc,
                raw: n,
                hosts,
            },
            c,
        ),
        None => Options(Arc::new(Opaque(
            n.options
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
        ))),
    };
    Some(net)
}

/// `ipv4: false` (Docker's `--ipv4=false`): an IPv6-only network. It
/// needs `ipv6:`, and no IPv4 key; cnm's own addressing only.
fn check_ipv6_only(c: &mut Diagnostics, name: &str, driver: &str, n: &RawNetwork, net: &Network) {
    let Some(at) = n.ipv4.as_ref().filter(|b| !b.value) else {
        return;
    };
    if !net.caps.addressing || net.caps.ipam != crate::drivers::Ipam::Lowest {
        c.err(
            at,
            format!("network {name}: ipv4: false is not supported by driver {driver}"),
        );
        return;
    }
    if n.ipv6.is_none() {
        c.err(
            at,
            format!(
                "network {name}: ipv4: false needs ipv6: {{ subnet: ... }} (an IPv6-only network)"
            ),
        );
    }
    if n.ipam.is_some() {
        c.err(
            at,
            format!("network {name}: ipv4: false cannot be used with an ipam: plugin"),
        );
    }
    for (key, v) in [
        ("subnet", &n.subnet),
        ("gateway", &n.gateway),
        ("ip_range", &n.ip_range),
    ] {
        if let Some(v) = v {
            c.err(
                v,
                format!(
                    "network {name}: {key} is IPv4 addressing, and the network has ipv4: false"
                ),
            );
        }
    }
}

/// `ipam: { driver, options }`: a plugin name (it becomes part of plugin
/// paths) and string options. `driver: default` is cnm's own IPAM, as in
/// Docker and compose files.
fn check_ipam(
    c: &mut Diagnostics,
    name: &str,
    driver: &str,
    n: &RawNetwork,
    caps: Caps,
) -> Option<crate::spec::IpamSpec> {
    let ipam = &n.ipam.as_ref()?.value;
    let plugin = ipam.driver.value.as_str();
    let loc = Loc::from(&ipam.driver);
    if plugin == "default" {
        return None;
    }
    if let Err(e) = valid_identifier(plugin, MAX_OBJECT_NAME) {
        c.err(
            loc,
            format!(
                "network {name}: ipam driver name '{}' {e}",
                plugin.escape_debug()
            ),
        );
        return None;
    }
    if !caps.addressing || caps.ipam == crate::drivers::Ipam::None {
        c.err(
            loc,
            format!("network {name}: ipam does not apply to driver {driver}: its endpoints have no addresses"),
        );
        return None;
    }
    if caps.ipam == crate::drivers::Ipam::Hashed {
        c.err(
            loc,
            format!("network {name}: {} {driver} network spans hosts, whose addresses every host derives from the file; an IPAM plugin cannot take part", article(driver)),
        );
        return None;
    }
    let mut options = BTreeMap::new();
    for (k, v) in &ipam.options {
        let s = match &v.value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(x) => x.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                c.err(
                    v,
                    format!("network {name}: ipam option {k} must be a string, number or boolean"),
                );
                continue;
            }
        };
        options.insert(k.clone(), s);
    }
    Some(crate::spec::IpamSpec {
        driver: plugin.to_string(),
        loc,
        options,
    })
}

/// "a" or "an", before a driver name.
pub(super) fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// Keys the driver's networks cannot have, and what they must have.
fn check_keys(
    c: &mut Diagnostics,
    name: &str,
    driver: &str,
    driver_loc: Loc,
    n: &RawNetwork,
    hosts: &BTreeMap<String, Host>,
    caps: Caps,
) {
    if caps.spans_hosts && hosts.is_empty() && !c.any_refused("host") {
        c.err(
            driver_loc,
            format!("network {name}: driver {driver} spans machines; declare them under hosts: (name: {{ address: <underlay IP> }})"),
        );
    }
    if caps.needs_subnet && n.subnet.is_none() {
        c.err(
            driver_loc,
            format!("network {name}: {} {driver} network needs an explicit subnet: every host derives the same addresses from it", article(driver)),
        );
    }
    if !caps.addressing {
        for (key, at) in [
            ("subnet", n.subnet.as_ref().map(Loc::from)),
            ("gateway", n.gateway.as_ref().map(Loc::from)),
            ("ip_range", n.ip_range.as_ref().map(Loc::from)),
            ("ipv6", n.ipv6.as_ref().map(Loc::from)),
            ("mtu", n.mtu.as_ref().map(Loc::from)),
            (
                "aux_addresses",
                n.aux_addresses.values().next().map(Loc::from),
            ),
        ] {
            if let Some(at) = at {
                c.err(
                    at,
                    format!("network {name}: {key} does not apply to driver {driver}"),
                );
            }
        }
    }
    if !caps.internal {
        if let Some(at) = n.internal.as_ref() {
            let why = if caps.addressing {
                format!("internal does not apply to {} {driver} network: it carries traffic between its sandboxes only; give a sandbox a bridge endpoint to reach outside", article(driver))
            } else {
                format!("internal does not apply to driver {driver}")
            };
            c.err(at, format!("network {name}: {why}"));
        }
    }
    if caps.addressing && caps.gateway == Gateway::None {
        let v6_gateway = n
            .ipv6
            .as_ref()
            .and_then(|v| v.value.gateway.as_ref().map(Loc::from));
        for (key, at) in [
            ("gateway", n.gateway.as_ref().map(Loc::from)),
            ("ipv6 gateway", v6_gateway),
        ] {
            if let Some(at) = at {
                c.err(at, format!("network {name}: {key} does not apply to {} {driver} network: it carries traffic between its sandboxes only; give a sandbox a bridge endpoint to reach outside", article(driver)));
            }
        }
    }
}

/// Subnets (both families) and MTU, for drivers that use them.
fn check_addressing(c: &mut Diagnostics, name: &str, n: &RawNetwork, net: &mut Network) {
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
        .filter(|_| net.caps.gateway != Gateway::None)
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
