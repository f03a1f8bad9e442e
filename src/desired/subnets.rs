//! Subnets of networks cnm addresses: the file's, else the one a network
//! has (kernel, then records), else the next free one of Docker's default
//! pools, skipping what the host routes.

use crate::drivers::{Addressing, Gateway, Ipam};
use crate::ipam;
use crate::model::Observed;
use crate::topology::{Loc, Network, Topology};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use std::collections::BTreeMap;

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
        let subnet = subnet_of(net, t, obs, &mut taken)?;
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

/// A network's IPv4 subnet: the file's; else the one it has in the kernel
/// (or the records) while nothing else takes it; else the next free one
/// of the default pools (`taken` gains it).
fn subnet_of(
    net: &Network,
    t: &Topology,
    obs: &Observed,
    taken: &mut Vec<IpNetwork>,
) -> Result<Ipv4Network, (Loc, String)> {
    if let Some(s) = net.subnet {
        return Ok(s);
    }
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
    match keep.or_else(|| ipam::allocate_subnet(taken)) {
            Some(s) => {
                taken.push(IpNetwork::V4(s));
                Ok(s)
            }
            None => Err((net.loc, format!(
                "network {}: no free subnet left in the default pools (172.17.0.0/16 … 192.168.240.0/20); give it a subnet:",
                net.name
            ))),
        }
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
