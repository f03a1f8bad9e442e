//! The host namespace: the topology's links and endpoints (owned through
//! their IFLA_IFALIAS mark), leftovers of an interrupted
//! apply (links still under a journaled temporary name), the routes that
//! decide free subnets, sysctls and the host's resolv.conf.

use super::links::{Link, LinkTable};
use super::namespaces::Scan;
use super::ObserveError;
use crate::drivers::{LinkView, Registry};
use crate::files;
use crate::model::{
    default_dst, EndpointRes, Family, FdbRes, HostEnd, HostFacts, LinkRes, NeighRes, RouteRes,
    State, StrayKind, StrayRes, SysctlRes,
};
use crate::naming::{self, MarkKind};
use crate::netlink;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Observe the host namespace into `state` and `facts`; the sandbox ends
/// of endpoints come from the namespace scan.
/// Links the journal says were created under a temporary name: on the host
/// (temp name → mark) and inside sandboxes ((netns, temp name) → mark).
#[derive(Default)]
pub struct TempLinks {
    pub host: BTreeMap<String, String>,
    pub inside: BTreeMap<(String, String), String>,
}

pub async fn observe_host(
    h: &rtnetlink::Handle,
    reg: &Registry,
    topology: &str,
    temp: &TempLinks,
    scan: &Scan,
    state: &mut State,
    facts: &mut HostFacts,
) -> Result<(), ObserveError> {
    let host = LinkTable::dump(h, None).await?;
    let owned = |l: &Link| -> Option<naming::Mark> {
        let alias = l.alias.as_deref()?;
        naming::parse_mark(alias).filter(|m| m.topology == topology)
    };
    for l in host.links.values() {
        facts.links.insert(l.name.clone(), l.alias.clone());
        facts.link_mtu.insert(l.name.clone(), l.mtu);
        for a in host.addrs_of(l.index) {
            facts.local_addrs.insert(a.ip(), (l.name.clone(), l.mtu));
        }
        if let Some(mark) = temp.host.get(&l.name) {
            // Created under its temporary name and never finished.
            state.strays.insert(
                l.name.clone(),
                StrayRes {
                    what: StrayKind::Link {
                        ifname: l.name.clone(),
                        mark: mark.clone(),
                        netns: None,
                    },
                },
            );
        }
    }
    let is_temp = |l: &Link| temp.host.contains_key(&l.name);
    let ours: Vec<(&Link, naming::Mark)> = host
        .links
        .values()
        .filter(|l| !is_temp(l))
        .filter_map(|l| owned(l).map(|m| (l, m)))
        .collect();
    links(&host, reg, &ours, state);
    let tunnels: BTreeMap<u32, (String, String)> = ours
        .iter()
        .filter(|(_, m)| m.kind == MarkKind::Vtep)
        .map(|(l, m)| (l.index, (m.name.clone(), l.name.clone())))
        .collect();
    if !tunnels.is_empty() {
        fdb_and_neighbours(h, &tunnels, state).await?;
    }
    endpoints(&host, reg, topology, &ours, scan, &temp.inside, state);
    for ns in scan.owned.values() {
        routes_in(ns, topology, state);
    }
    let owned_idx: Vec<u32> = host
        .links
        .values()
        .filter(|l| owned(l).is_some() || is_temp(l))
        .map(|l| l.index)
        .collect();
    let routes = netlink::dump_routes(h)
        .await
        .map_err(|source| ObserveError::Netlink {
            what: "routes",
            netns: None,
            source,
        })?;
    facts.routed = routed_subnets(&routes, &owned_idx);
    Ok(())
}

/// The topology's links of networks (marks `network`, `vtep`).
fn links(host: &LinkTable, reg: &Registry, ours: &[(&Link, naming::Mark)], state: &mut State) {
    for (l, m) in ours {
        if !matches!(m.kind, MarkKind::Network | MarkKind::Vtep) {
            continue;
        }
        let kind = l.kind.clone().unwrap_or_default();
        let link = LinkRes {
            network: m.name.clone(),
            role: m.kind,
            ifname: l.name.clone(),
            settings: reg.settings(&LinkView {
                kind: &kind,
                info: &l.info,
                lower: lower_name(host, host, l),
            }),
            kind,
            mtu: l.mtu,
            addrs: host.addrs_of(l.index),
            up: l.up,
            master: master_name(host, l),
            driver: String::new(),
        };
        state.links.insert(link.key(), link);
    }
}

fn master_name(host: &LinkTable, l: &Link) -> String {
    l.master
        .and_then(|i| host.links.get(&i))
        .map(|b| b.name.clone())
        .unwrap_or_default()
}

/// Endpoints: the sandbox interface carries the endpoint's mark, and so
/// does a veth's host end. Each sandbox's marked links are indexed once.
fn endpoints(
    host: &LinkTable,
    reg: &Registry,
    topology: &str,
    ours: &[(&Link, naming::Mark)],
    scan: &Scan,
    temp_inside: &BTreeMap<(String, String), String>,
    state: &mut State,
) {
    let prefix = format!("cnm:{topology}:endpoint:");
    for ns in scan.owned.values() {
        for p in ns.table.links.values() {
            let key = (ns.netns.clone(), p.name.clone());
            if let Some(mark) = temp_inside.get(&key) {
                // Made in the sandbox under its temporary name, never finished.
                state.strays.insert(
                    format!("{}/{}", ns.netns, p.name),
                    StrayRes {
                        what: StrayKind::Link {
                            ifname: p.name.clone(),
                            mark: mark.clone(),
                            netns: Some(ns.netns.clone()),
                        },
                    },
                );
                continue;
            }
            let Some(name) = p.alias.as_deref().and_then(|a| a.strip_prefix(&prefix)) else {
                continue;
            };
            let kind = p.kind.clone().unwrap_or_default();
            state.endpoints.insert(
                name.to_string(),
                EndpointRes {
                    endpoint: name.to_string(),
                    network: String::new(),
                    sandbox: ns.sandbox.clone(),
                    netns: ns.netns.clone(),
                    settings: reg.settings(&LinkView {
                        kind: &kind,
                        info: &p.info,
                        lower: lower_name(host, &ns.table, p),
                    }),
                    kind,
                    ifname: p.name.clone(),
                    mac: p.mac,
                    mtu: p.mtu,
                    addrs: ns.table.addrs_of(p.index),
                    up: p.up,
                    host: None,
                    unknown: Vec::new(),
                    driver: String::new(),
                },
            );
        }
    }
    let network_of: BTreeMap<&str, &str> = state
        .links
        .values()
        .map(|l| (l.ifname.as_str(), l.network.as_str()))
        .collect();
    for (l, m) in ours.iter().filter(|(_, m)| m.kind == MarkKind::Endpoint) {
        let end = HostEnd {
            ifname: l.name.clone(),
            master: master_name(host, l),
            hairpin: l.hairpin,
        };
        let e = state
            .endpoints
            .entry(m.name.clone())
            .or_insert_with(|| EndpointRes {
                endpoint: m.name.clone(),
                network: String::new(),
                sandbox: String::new(),
                netns: String::new(),
                kind: l.kind.clone().unwrap_or_default(),
                ifname: String::new(),
                mac: None,
                mtu: l.mtu,
                addrs: Default::default(),
                up: l.up,
                host: None,
                settings: Vec::new(),
                unknown: Vec::new(),
                driver: String::new(),
            });
        e.network = network_of
            .get(end.master.as_str())
            .map(|n| n.to_string())
            .unwrap_or_default();
        if e.mtu != l.mtu {
            e.mtu = e.mtu.min(l.mtu);
        }
        e.up = e.up && l.up;
        e.host = Some(end);
    }
}

/// Routes of the namespace's main table on cnm's interfaces (loopback and
/// marked veth ends), except what the kernel makes itself (connected
/// routes, IPv6 link-local and multicast, router advertisements). Routes on
/// interfaces someone else added to the namespace are theirs.
fn routes_in(ns: &super::namespaces::OwnedNs, topology: &str, state: &mut State) {
    use netlink_packet_route::route::RouteProtocol;
    let prefix = format!("cnm:{topology}:endpoint:");
    let ours = |i: u32| {
        ns.table.links.get(&i).is_some_and(|l| {
            l.name == "lo" || l.alias.as_deref().is_some_and(|a| a.starts_with(&prefix))
        })
    };
    for r in &ns.routes {
        if matches!(r.header.protocol, RouteProtocol::Kernel | RouteProtocol::Ra) {
            continue;
        }
        let Some(idx) = oif(r).filter(|i| ours(*i)) else {
            continue;
        };
        let len = r.header.destination_prefix_length;
        let dst = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
            _ => None,
        });
        let dst = match (dst, r.header.address_family) {
            (Some(ip), _) => ipnetwork::IpNetwork::new(ip, len).ok(),
            (None, netlink_packet_route::AddressFamily::Inet6) => Some(default_dst(Family::V6)),
            (None, _) => Some(default_dst(Family::V4)),
        };
        let Some(dst) = dst.filter(|d| !kernel_made(d)) else {
            continue;
        };
        let gateway = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
            RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
            _ => None,
        });
        let dev = ns
            .table
            .links
            .get(&idx)
            .map(|l| l.name.clone())
            .unwrap_or_default();
        state
            .routes
            .entry((ns.sandbox.clone(), dst))
            .or_insert(RouteRes {
                sandbox: ns.sandbox.clone(),
                netns: ns.netns.clone(),
                dst,
                gateway,
                dev,
            });
    }
}

/// IPv6 link-local and multicast destinations: the kernel's own.
fn kernel_made(dst: &ipnetwork::IpNetwork) -> bool {
    match dst {
        ipnetwork::IpNetwork::V6(n) => {
            let first = n.ip().segments()[0];
            first & 0xffc0 == 0xfe80 || first & 0xff00 == 0xff00
        }
        ipnetwork::IpNetwork::V4(n) => n.ip().is_multicast(),
    }
}

fn oif(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// Destinations routed on the host, except through links the topology
/// owns (default routes and IPv6 link-local left out).
fn routed_subnets(routes: &[RouteMessage], owned_idx: &[u32]) -> Vec<ipnetwork::IpNetwork> {
    let mut out = Vec::new();
    for r in routes {
        if r.header.destination_prefix_length == 0 || oif(r).is_some_and(|i| owned_idx.contains(&i))
        {
            continue;
        }
        let dst = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
            _ => None,
        });
        if let Some(net) =
            dst.and_then(|d| ipnetwork::IpNetwork::new(d, r.header.destination_prefix_length).ok())
        {
            if !matches!(net, ipnetwork::IpNetwork::V6(n) if n.ip().segments()[0] & 0xffc0 == 0xfe80)
            {
                out.push(net);
            }
        }
    }
    out
}

/// The sysctls cnm may set, as they are now.
pub fn observe_sysctls(state: &mut State) {
    let mut keys = vec![
        "net/ipv4/ip_forward".to_string(),
        "net/ipv6/conf/all/forwarding".to_string(),
    ];
    keys.extend(
        state
            .links
            .values()
            .filter(|l| l.role == MarkKind::Network)
            .map(|b| crate::firewall::route_localnet(&b.ifname)),
    );
    for key in keys {
        if let Ok(v) = std::fs::read_to_string(format!("/proc/sys/{key}")) {
            state.sysctls.insert(
                key.clone(),
                SysctlRes {
                    key,
                    value: v.trim().to_string(),
                },
            );
        }
    }
}

/// The host's nameservers, for sandboxes without `dns:`. The host's
/// resolv.conf is an input, not cnm's file: read through links as usual.
pub fn observe_resolv(facts: &mut HostFacts) {
    let resolv =
        files::parse_resolv(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    facts.nameservers = resolv.nameservers;
    facts.search = resolv.search;
    facts.resolv_options = resolv.options;
}

/// The static FDB entries (the device's own table, NTF_SELF) and permanent
/// neighbour entries of the topology's tunnel devices (mark `vtep`).
/// Everything there is cnm's: the devices learn nothing.
async fn fdb_and_neighbours(
    h: &rtnetlink::Handle,
    devices: &BTreeMap<u32, (String, String)>,
    state: &mut State,
) -> Result<(), ObserveError> {
    use netlink_packet_route::neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourState};
    use netlink_packet_route::AddressFamily;
    let err = |what: &'static str| {
        move |source| ObserveError::Netlink {
            what,
            netns: None,
            source,
        }
    };
    let mac_of = |attrs: &[NeighbourAttribute]| {
        attrs.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
            _ => None,
        })
    };
    // One dump at a time per socket.
    let fdb = netlink::dump_neighbours(h, AddressFamily::Bridge)
        .await
        .map_err(err("FDB entries"))?;
    for m in fdb {
        let Some((network, dev)) = devices.get(&m.header.ifindex) else {
            continue;
        };
        if !m.header.flags.contains(NeighbourFlags::Own) {
            continue; // the bridge's table, not the device's
        }
        if let (Some(mac), Some(dst)) = (mac_of(&m.attributes), neigh_ip(&m.attributes)) {
            state.fdb.insert(
                (network.clone(), mac, dst),
                FdbRes {
                    network: network.clone(),
                    dev: dev.clone(),
                    mac,
                    dst,
                },
            );
        }
    }
    let neighs = netlink::dump_neighbours(h, AddressFamily::Unspec)
        .await
        .map_err(err("neighbour entries"))?;
    for m in neighs {
        let Some((network, dev)) = devices.get(&m.header.ifindex) else {
            continue;
        };
        if m.header.state != NeighbourState::Permanent {
            continue;
        }
        if let (Some(ip), Some(mac)) = (neigh_ip(&m.attributes), mac_of(&m.attributes)) {
            state.neighs.insert(
                (network.clone(), ip),
                NeighRes {
                    network: network.clone(),
                    dev: dev.clone(),
                    ip,
                    mac,
                },
            );
        }
    }
    Ok(())
}

fn neigh_ip(attrs: &[netlink_packet_route::neighbour::NeighbourAttribute]) -> Option<IpAddr> {
    use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
    attrs.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        // FDB messages (family bridge) carry the VTEP as raw bytes.
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => match b.len() {
            4 => <[u8; 4]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            _ => None,
        },
        _ => None,
    })
}

/// The name of a link's lower link: in `here` (its own namespace) or, when
/// the kernel says it is elsewhere, in the host's table.
fn lower_name<'a>(host: &'a LinkTable, here: &'a LinkTable, l: &Link) -> Option<&'a str> {
    let table = if l.lower_elsewhere { host } else { here };
    // A link names itself as its lower link when it has none; an index in
    // another namespace may equal its own by chance.
    let i = l.lower.filter(|&i| l.lower_elsewhere || i != l.index)?;
    table.links.get(&i).map(|p| p.name.as_str())
}
