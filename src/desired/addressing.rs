//! IPAM: subnets, addresses and interface names. Pure: given the file and
//! what exists, the same answer every time. A network that exists keeps its
//! subnet, an endpoint keeps its address and its `ethN` (what the kernel
//! has, else what the records say was allocated); new ones take the
//! lowest free values in name order, so `plan` shows exactly what `apply`
//! will do. Networks whose driver addresses by hash get a pure function of
//! the file instead (every host derives the same).

use super::EndpointAddr;
use crate::drivers::{Addressing, Ipam};
use crate::ipam;
use crate::model::Observed;
use crate::topology::{Endpoint, Loc, Network, Topology};
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
        if let Some(gw) = a.gateway_v4 {
            for (e, ip) in addresses_v4(net, &eps, gw, obs)? {
                out.entry(e).or_default().v4 = Some(ip);
            }
        }
        if let (Some(gw), Some(_)) = (a.gateway_v6, &net.ipv6) {
            for (e, ip) in addresses_v6(net, &eps, gw, obs)? {
                out.entry(e).or_default().v6 = Some(ip);
            }
        }
    }
    Ok(out)
}

/// The addresses endpoint `e` has on `net` now: in the kernel, else as
/// recorded (a reboot).
fn observed_addrs(obs: &Observed, net: &Network, e: &Endpoint) -> BTreeSet<IpNetwork> {
    match obs.state.endpoints.get(&e.name) {
        Some(v) if v.network == net.name => v.addrs.clone(),
        Some(_) => Default::default(),
        None => obs
            .host
            .allocated
            .endpoints
            .get(&e.name)
            .filter(|a| a.network == net.name)
            .map(|a| a.addrs.clone())
            .unwrap_or_default(),
    }
}

/// IPv4 addresses of `net`'s endpoints.
fn addresses_v4(
    net: &Network,
    eps: &[&Endpoint],
    gw: Ipv4Network,
    obs: &Observed,
) -> Result<Vec<(String, Ipv4Network)>, (Loc, String)> {
    let subnet =
        Ipv4Network::new(gw.network(), gw.prefix()).map_err(|e| (net.loc, e.to_string()))?;
    let range = net.ip_range.unwrap_or(subnet);
    let kept = |e: &Endpoint| {
        observed_addrs(obs, net, e)
            .into_iter()
            .find_map(|a| match a {
                IpNetwork::V4(v) if v.prefix() == subnet.prefix() => Some(v.ip()),
                _ => None,
            })
    };
    let usable =
        |ip: Ipv4Addr| subnet.contains(ip) && ip != subnet.network() && ip != subnet.broadcast();
    let chosen = assign(
        eps,
        gw.ip(),
        net.aux_addresses.values().filter_map(|a| match a {
            std::net::IpAddr::V4(v) => Some(*v),
            _ => None,
        }),
        |e| e.address,
        kept,
        usable,
        |used, after| ipam::lowest_free_v4(subnet, range, used, after),
    )
    .map_err(|e| no_free(e, &net.name, "IPv4", &range.to_string()))?;
    Ok(chosen
        .into_iter()
        .filter_map(|(e, ip)| Some((e.name.clone(), Ipv4Network::new(ip, subnet.prefix()).ok()?)))
        .collect())
}

/// IPv6 addresses of `net`'s endpoints.
fn addresses_v6(
    net: &Network,
    eps: &[&Endpoint],
    gw: Ipv6Network,
    obs: &Observed,
) -> Result<Vec<(String, Ipv6Network)>, (Loc, String)> {
    let Some(cfg) = &net.ipv6 else {
        return Ok(Vec::new());
    };
    let subnet = cfg.subnet;
    let range = cfg.ip_range.unwrap_or(subnet);
    let kept = |e: &Endpoint| {
        observed_addrs(obs, net, e)
            .into_iter()
            .find_map(|a| match a {
                IpNetwork::V6(v) if v.prefix() == subnet.prefix() => Some(v.ip()),
                _ => None,
            })
    };
    let usable = |ip: Ipv6Addr| subnet.contains(ip) && ip != subnet.network();
    let chosen = assign(
        eps,
        gw.ip(),
        net.aux_addresses.values().filter_map(|a| match a {
            std::net::IpAddr::V6(v) => Some(*v),
            _ => None,
        }),
        |e| e.ipv6_address,
        kept,
        usable,
        |used, after| ipam::lowest_free_v6(subnet, range, used, after),
    )
    .map_err(|e| no_free(e, &net.name, "IPv6", &range.to_string()))?;
    Ok(chosen
        .into_iter()
        .filter_map(|(e, ip)| Some((e.name.clone(), Ipv6Network::new(ip, subnet.prefix()).ok()?)))
        .collect())
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
    next_free: impl Fn(&BTreeSet<A>, Option<A>) -> Option<A>,
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
    // Each address handed out here is the lowest free one: the next search
    // starts above it.
    let mut after = None;
    for e in pending {
        let a = next_free(&used, after).ok_or(e)?;
        after = Some(a);
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
