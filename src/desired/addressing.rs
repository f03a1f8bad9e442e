//! IPAM: subnets, addresses and interface names. Pure: given the file and
//! what exists, the same answer every time. A network that exists keeps its
//! subnet, an endpoint keeps its address and its `ethN` (what the kernel
//! has, else what the records say was allocated); new ones take the
//! lowest free values in name order, so `plan` shows exactly what `apply`
//! will do. Networks whose driver addresses by hash get a pure function of
//! the file instead (every host derives the same).

use super::EndpointAddr;
use crate::drivers::{Addressing, Gateway, Ipam};
use crate::ipam;
use crate::model::{Observed, State};
use crate::naming;
use crate::topology::{Endpoint, Loc, Topology};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Addresses of every endpoint on networks addressed by hash, from the
/// file alone (every host of a multi-host file derives the same): static
/// ones, then each other endpoint (in name order) at the hash of its name
/// in the range, probing past taken addresses.
pub(super) fn hashed_addresses(
    t: &Topology,
) -> Result<BTreeMap<String, EndpointAddr>, (Loc, String)> {
    let mut out: BTreeMap<String, EndpointAddr> = BTreeMap::new();
    for net in t.networks.values().filter(|n| n.caps.ipam == Ipam::Hashed) {
        let eps: Vec<&Endpoint> = t.endpoints_on_network(&net.name).collect();
        if let Some(subnet) = net.subnet {
            let range = net.ip_range.unwrap_or(subnet);
            let (nw, bc) = (u32::from(subnet.network()), u32::from(subnet.broadcast()));
            let chosen = hashed_family(
                &eps,
                |e| e.address.map(|a| u32::from(a).into()),
                (
                    u32::from(range.network()).into(),
                    u32::from(range.broadcast()).into(),
                ),
                |a| a == nw.into() || a == bc.into(),
                net.aux_addresses.values().filter_map(|a| match a {
                    std::net::IpAddr::V4(v) => Some(u128::from(u32::from(*v))),
                    _ => None,
                }),
            )
            .map_err(|e| no_free(e, &net.name, "IPv4", &range.to_string()))?;
            for (e, a) in chosen {
                let ip = Ipv4Addr::from(a as u32);
                out.entry(e.name.clone()).or_default().v4 =
                    Ipv4Network::new(ip, subnet.prefix()).ok();
            }
        }
        if let Some(cfg) = &net.ipv6 {
            let subnet = cfg.subnet;
            let range = cfg.ip_range.unwrap_or(subnet);
            let nw = u128::from(subnet.network());
            let chosen = hashed_family(
                &eps,
                |e| e.ipv6_address.map(u128::from),
                (range.network().into(), range.broadcast().into()),
                |a| a == nw,
                net.aux_addresses.values().filter_map(|a| match a {
                    std::net::IpAddr::V6(v) => Some(u128::from(*v)),
                    _ => None,
                }),
            )
            .map_err(|e| no_free(e, &net.name, "IPv6", &range.to_string()))?;
            for (e, a) in chosen {
                out.entry(e.name.clone()).or_default().v6 =
                    Ipv6Network::new(Ipv6Addr::from(a), subnet.prefix()).ok();
            }
        }
    }
    Ok(out)
}

/// One family of an overlay network: static addresses, then each other
/// endpoint in name order at its hashed place in `lo..=hi`. On exhaustion,
/// the endpoint that found nothing.
fn hashed_family<'e>(
    eps: &[&'e Endpoint],
    static_of: impl Fn(&Endpoint) -> Option<u128>,
    (lo, hi): (u128, u128),
    excluded: impl Fn(u128) -> bool,
    reserved: impl IntoIterator<Item = u128>,
) -> Result<Vec<(&'e Endpoint, u128)>, &'e Endpoint> {
    let mut used: BTreeSet<u128> = eps.iter().filter_map(|e| static_of(e)).collect();
    used.extend(reserved);
    let mut out = Vec::new();
    for e in eps {
        let a = match static_of(e) {
            Some(a) => a,
            None => {
                let a = ipam::hashed_free(&e.name, lo, hi, &excluded, &used).ok_or(*e)?;
                used.insert(a);
                a
            }
        };
        out.push((*e, a));
    }
    Ok(out)
}

/// Gateways of networks addressed by cnm with a gateway: explicit subnets
/// first, then networks that exist keep theirs, then new ones are
/// allocated from the default pools, skipping whatever the host routes.
pub(super) fn resolve_subnets(
    t: &Topology,
    obs: &Observed,
) -> Result<BTreeMap<String, Addressing>, (Loc, String)> {
    let mut taken: Vec<IpNetwork> = obs.host.routed.clone();
    taken.extend(
        t.networks
            .values()
            .filter_map(|n| n.subnet.map(IpNetwork::V4)),
    );
    // Pools IPAM plugins gave this topology's other networks.
    taken.extend(
        obs.state
            .plugins
            .values()
            .filter(|p| p.call == crate::model::PluginCall::Pool)
            .filter_map(|p| p.returned_str("Pool"))
            .filter_map(|p| p.parse::<IpNetwork>().ok()),
    );
    let mut out = BTreeMap::new();
    for net in t
        .networks
        .values()
        .filter(|n| n.caps.ipam == Ipam::Lowest && n.caps.gateway != Gateway::None)
        .filter(|n| n.ipam.is_none())
    {
        let gateway_v6 = net.ipv6.as_ref().and_then(|v6| {
            let gw = v6.gateway.unwrap_or_else(|| ipam::first_host_v6(v6.subnet));
            Ipv6Network::new(gw, v6.subnet.prefix()).ok()
        });
        if !net.ipv4 {
            // IPv6 only: no IPv4 subnet taken, no IPv4 gateway.
            out.insert(
                net.name.clone(),
                Addressing {
                    gateway_v6,
                    ..Default::default()
                },
            );
            continue;
        }
        let subnet = match net.subnet {
            Some(s) => s,
            None => {
                let existing = kept_subnet(obs, &net.name);
                // A gateway outside cnm's links (a plugin's bridge, a
                // router) routes the network's own subnet on the host:
                // that route does not take the subnet from it.
                let outside = net.caps.gateway == Gateway::Outside;
                let keep = existing.filter(|s| {
                    let me = IpNetwork::V4(*s);
                    let routed = obs.host.routed.iter().filter(|r| **r == me).count();
                    let others = taken.iter().filter(|x| **x == me).count();
                    !t.networks
                        .values()
                        .filter_map(|n| n.subnet)
                        .any(|o| o.contains(s.network()) || s.contains(o.network()))
                        && (others == 0 || (outside && others == routed))
                });
                match keep.or_else(|| ipam::allocate_subnet(&taken)) {
                    Some(s) => {
                        taken.push(IpNetwork::V4(s));
                        s
                    }
                    None => {
                        return Err((net.loc, format!(
                            "network {}: no free subnet left in the default pools (172.17.0.0/16 … 192.168.240.0/20); give it a subnet:",
                            net.name
                        )))
                    }
                }
            }
        };
        let gw4 = net.gateway.unwrap_or_else(|| ipam::first_host_v4(subnet));
        let gateway_v4 = Ipv4Network::new(gw4, subnet.prefix()).ok();
        out.insert(
            net.name.clone(),
            Addressing {
                gateway_v4,
                gateway_v6,
                ..Default::default()
            },
        );
    }
    Ok(out)
}

/// The IPv4 subnet a network has in the kernel: its link's address, else
/// any of its endpoints' (a network whose gateway is outside); else the
/// one recorded (the kernel lost it: a reboot).
fn kept_subnet(obs: &Observed, network: &str) -> Option<Ipv4Network> {
    let v4 = |addrs: &std::collections::BTreeSet<IpNetwork>| {
        addrs.iter().find_map(|a| match a {
            IpNetwork::V4(v4) => Ipv4Network::new(v4.network(), v4.prefix()).ok(),
            _ => None,
        })
    };
    let key = (network.to_string(), crate::naming::MarkKind::Network);
    obs.state
        .links
        .get(&key)
        .and_then(|l| v4(&l.addrs))
        .or_else(|| {
            obs.state
                .endpoints
                .values()
                .filter(|e| e.network == network)
                .find_map(|e| v4(&e.addrs))
        })
        .or_else(|| obs.host.allocated.subnets.get(network).copied())
}

/// Endpoint addresses: static ones, then kept ones (an endpoint that exists
/// keeps its address while it stays valid), then the lowest free address of
/// the range for each new endpoint, in endpoint-name order.
pub(super) fn resolve_addresses(
    t: &Topology,
    obs: &Observed,
    addressing: &BTreeMap<String, Addressing>,
) -> Result<BTreeMap<String, EndpointAddr>, (Loc, String)> {
    let mut out: BTreeMap<String, EndpointAddr> = BTreeMap::new();
    for net in t
        .networks
        .values()
        .filter(|n| n.caps.ipam == Ipam::Lowest && n.ipam.is_none())
    {
        let Some(a) = addressing.get(&net.name) else {
            continue;
        };
        let eps: Vec<&Endpoint> = t.endpoints_on_network(&net.name).collect();
        let observed = |e: &Endpoint| match obs.state.endpoints.get(&e.name) {
            Some(v) if v.network == net.name => v.addrs.clone(),
            Some(_) => Default::default(),
            // Not in the kernel: what was recorded (a reboot).
            None => obs
                .host
                .allocated
                .endpoints
                .get(&e.name)
                .filter(|a| a.network == net.name)
                .map(|a| a.addrs.clone())
                .unwrap_or_default(),
        };

        if let Some(gw) = a.gateway_v4 {
            let subnet = Ipv4Network::new(gw.network(), gw.prefix())
                .map_err(|e| (net.loc, e.to_string()))?;
            let range = net.ip_range.unwrap_or(subnet);
            let kept = |e: &Endpoint| {
                observed(e).into_iter().find_map(|a| match a {
                    IpNetwork::V4(v) if v.prefix() == subnet.prefix() => Some(v.ip()),
                    _ => None,
                })
            };
            let usable = |ip: Ipv4Addr| {
                subnet.contains(ip) && ip != subnet.network() && ip != subnet.broadcast()
            };
            let chosen = assign(
                &eps,
                gw.ip(),
                net.aux_addresses.values().filter_map(|a| match a {
                    std::net::IpAddr::V4(v) => Some(*v),
                    _ => None,
                }),
                |e| e.address,
                kept,
                usable,
                |used| ipam::lowest_free_v4(subnet, range, used),
            )
            .map_err(|e| no_free(e, &net.name, "IPv4", &range.to_string()))?;
            for (e, ip) in chosen {
                out.entry(e.name.clone()).or_default().v4 =
                    Ipv4Network::new(ip, subnet.prefix()).ok();
            }
        }

        if let (Some(gw), Some(cfg)) = (a.gateway_v6, &net.ipv6) {
            let subnet = cfg.subnet;
            let range = cfg.ip_range.unwrap_or(subnet);
            let kept = |e: &Endpoint| {
                observed(e).into_iter().find_map(|a| match a {
                    IpNetwork::V6(v) if v.prefix() == subnet.prefix() => Some(v.ip()),
                    _ => None,
                })
            };
            let usable = |ip: Ipv6Addr| subnet.contains(ip) && ip != subnet.network();
            let chosen = assign(
                &eps,
                gw.ip(),
                net.aux_addresses.values().filter_map(|a| match a {
                    std::net::IpAddr::V6(v) => Some(*v),
                    _ => None,
                }),
                |e| e.ipv6_address,
                kept,
                usable,
                |used| ipam::lowest_free_v6(subnet, range, used),
            )
            .map_err(|e| no_free(e, &net.name, "IPv6", &range.to_string()))?;
            for (e, ip) in chosen {
                out.entry(e.name.clone()).or_default().v6 =
                    Ipv6Network::new(ip, subnet.prefix()).ok();
            }
        }
    }
    Ok(out)
}

/// One family's addresses for a network's endpoints (in name order): static
/// ones first, then each existing endpoint keeps its observed address while
/// it is still usable and free, then the rest take `next_free` in turn. On
/// exhaustion, the endpoint that found nothing.
#[allow(clippy::too_many_arguments)]
fn assign<'e, A: Ord + Copy>(
    eps: &[&'e Endpoint],
    gateway: A,
    reserved: impl IntoIterator<Item = A>,
    static_of: impl Fn(&Endpoint) -> Option<A>,
    kept_of: impl Fn(&Endpoint) -> Option<A>,
    usable: impl Fn(A) -> bool,
    next_free: impl Fn(&BTreeSet<A>) -> Option<A>,
) -> Result<Vec<(&'e Endpoint, A)>, &'e Endpoint> {
    let mut used: BTreeSet<A> = eps.iter().filter_map(|e| static_of(e)).collect();
    used.insert(gateway);
    // aux_addresses: never given out, not even kept.
    used.extend(reserved);
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for e in eps {
        match (static_of(e), kept_of(e)) {
            (Some(s), _) => out.push((*e, s)),
            (None, Some(k)) if usable(k) && used.insert(k) => out.push((*e, k)),
            _ => pending.push(*e),
        }
    }
    for e in pending {
        let a = next_free(&used).ok_or(e)?;
        used.insert(a);
        out.push((e, a));
    }
    Ok(out)
}

fn no_free(e: &Endpoint, network: &str, family: &str, range: &str) -> (Loc, String) {
    (
        e.loc,
        format!(
            "endpoint {}: network {network} has no free {family} address left in {range}",
            e.name
        ),
    )
}

/// Interface names inside each sandbox: an endpoint that exists keeps its
/// `ethN`; new endpoints take the lowest free `ethN`, in endpoint-name
/// order. In a borrowed namespace the names its own interfaces have are
/// not free (a Docker container's `eth0`: cnm's endpoint is `eth1`, as
/// `docker network connect` would name it).
pub(super) fn resolve_ifnames(t: &Topology, obs: &Observed) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for sb in t.sandboxes.values() {
        let netns = naming::netns_name(&t.name, &sb.name);
        let eps: Vec<&Endpoint> = t
            .endpoints_of_sandbox(&sb.name)
            .filter(|e| t.networks[&e.network].caps.interfaces)
            .collect();
        let mut used = foreign_names(t, obs, &sb.name);
        let mut pending = Vec::new();
        for e in &eps {
            let seen = match obs.state.endpoints.get(&e.name) {
                Some(v) => Some((&v.netns, &v.ifname)),
                // Not in the kernel: what was recorded (a reboot).
                None => obs
                    .host
                    .allocated
                    .endpoints
                    .get(&e.name)
                    .map(|a| (&a.netns, &a.ifname)),
            };
            let kept = seen
                .filter(|(ns, name)| {
                    **ns == netns && name.starts_with("eth") && name[3..].parse::<u32>().is_ok()
                })
                .map(|(_, name)| name.clone());
            match kept {
                Some(k) if used.insert(k.clone()) => {
                    out.insert(e.name.clone(), k);
                }
                _ => pending.push(e.name.clone()),
            }
        }
        let mut n = 0;
        for e in pending {
            while used.contains(&format!("eth{n}")) {
                n += 1;
            }
            used.insert(format!("eth{n}"));
            out.insert(e, format!("eth{n}"));
        }
    }
    out
}

/// The interface names in sandbox `sandbox`'s borrowed namespace that are
/// not this topology's (none for a namespace of cnm's own).
fn foreign_names(t: &Topology, obs: &Observed, sandbox: &str) -> BTreeSet<String> {
    let Some(Ok(found)) = obs.host.borrowed.get(sandbox) else {
        return BTreeSet::new();
    };
    found
        .links
        .iter()
        .filter(|(_, alias)| {
            !alias
                .as_deref()
                .and_then(naming::parse_mark)
                .is_some_and(|m| m.topology == t.name && m.kind == naming::MarkKind::Endpoint)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// A MAC derived from an address may collide with one given explicitly.
pub(super) fn check_derived_macs(t: &Topology, state: &State) -> Result<(), (Loc, String)> {
    let mut seen: BTreeMap<[u8; 6], &str> = BTreeMap::new();
    for v in state.endpoints.values() {
        if let Some(m) = v.mac {
            if let Some(first) = seen.insert(m, &v.endpoint) {
                let loc = t
                    .endpoints
                    .get(&v.endpoint)
                    .map(|e| e.loc)
                    .unwrap_or_default();
                return Err((
                    loc,
                    format!(
                        "endpoint {}: mac {} is also used by endpoint {first}",
                        v.endpoint,
                        naming_mac(&m)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn naming_mac(m: &[u8; 6]) -> String {
    crate::model::fmt_mac(m)
}
