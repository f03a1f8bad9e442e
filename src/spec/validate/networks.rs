//! `networks:`: the driver (found in the registry, any name accepted: it
//! may be a plugin), the keys the driver's [`Caps`] allow, addressing, and
//! the driver's own options, checked by the driver.

use super::super::raw::*;
use super::super::*;
use super::addressing::check_addressing;
use super::{Diagnostics, MAX_OBJECT_NAME};
use crate::drivers::{Caps, Gateway, NetworkInput, Opaque, Options, Registry};
use crate::naming::valid_identifier;
use std::collections::BTreeMap;
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
    // Options first: they may decide the network's caps (ipvlan's mode).
    let options = match driver {
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
    let caps = driver.map_or(Caps::UNKNOWN, |d| d.network_caps(&options));
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
        options,
        ipam: None,
    };
    check_keys(c, name, driver_name, driver_loc, n, hosts, caps);
    net.ipam = check_ipam(c, name, driver_name, n, caps);
    if caps.addressing {
        check_addressing(c, name, n, &mut net);
    }
    check_ipv6_only(c, name, driver_name, n, &net);
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
    let no_gateway = match caps.gateway {
        Gateway::None => Some("it carries traffic between its sandboxes only; give a sandbox a bridge endpoint to reach outside"),
        Gateway::Device => Some("its default route goes out of the endpoint's interface, with no next hop"),
        Gateway::OnHost | Gateway::Outside => None,
    };
    if let (true, Some(why)) = (caps.addressing, no_gateway) {
        let v6_gateway = n
            .ipv6
            .as_ref()
            .and_then(|v| v.value.gateway.as_ref().map(Loc::from));
        for (key, at) in [
            ("gateway", n.gateway.as_ref().map(Loc::from)),
            ("ipv6 gateway", v6_gateway),
        ] {
            if let Some(at) = at {
                c.err(
                    at,
                    format!(
                        "network {name}: {key} does not apply to {} {driver} network: {why}",
                        article(driver)
                    ),
                );
            }
        }
    }
}
