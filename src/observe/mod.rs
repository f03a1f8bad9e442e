//! The kernel → [`Observed`]: netlink dumps of the host namespace and of every
//! namespace the topology owns, plus the files cnm wrote. Builds the same
//! model the desired state uses, so the diff can compare them.

mod links;

use crate::files;
use crate::model::{
    BridgeRes, Family, FdbRes, FileRes, HostFacts, NamespaceRes, NeighRes, Observed, RouteRes,
    State, SysctlRes, VethRes, VxlanRes,
};
use crate::naming::{self, MarkKind};
use crate::netlink;
use crate::netns;
use links::{Link, LinkTable};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("cannot read the kernel's {what} over netlink{}: {source}", ns_suffix(.netns))]
    Netlink {
        what: &'static str,
        netns: Option<String>,
        source: rtnetlink::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Firewall(#[from] crate::firewall::nft::NftError),
}

fn ns_suffix(ns: &Option<String>) -> String {
    ns.as_ref()
        .map(|n| format!(" in namespace {n}"))
        .unwrap_or_default()
}

/// Open netlink connections, reused by `apply` so each namespace gets one.
pub struct Connections {
    pub host: rtnetlink::Handle,
    pub sandboxes: BTreeMap<String, rtnetlink::Handle>,
}

/// Topologies that have records under the state directory.
pub fn recorded_topologies() -> Vec<String> {
    let dir = format!("{}/topologies", naming::STATE_DIR);
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sandbox records of a topology: sandbox name → netns name.
pub fn sandbox_records(topology: &str) -> BTreeMap<String, String> {
    let dir = format!("{}/sandboxes", naming::topology_dir(topology));
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let (Ok(name), Ok(ns)) = (
                e.file_name().into_string(),
                std::fs::read_to_string(e.path()),
            ) {
                out.insert(name, ns.trim().to_string());
            }
        }
    }
    out
}

/// Links named in the journal of interrupted creates: ifname → mark.
pub fn journal(topology: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(naming::journal_path(topology))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub async fn observe(topology: &str) -> Result<(Observed, Connections), ObserveError> {
    let host_handle = netlink::connect_here().map_err(|e| ObserveError::Io {
        context: "cannot open a netlink socket".into(),
        source: e,
    })?;
    let host = LinkTable::dump(&host_handle, None).await?;
    let pending = journal(topology);
    let owned = |l: &Link| -> Option<naming::Mark> {
        let alias = l.alias.clone().or_else(|| pending.get(&l.name).cloned())?;
        naming::parse_mark(&alias).filter(|m| m.topology == topology)
    };

    let mut state = State::default();
    let mut facts = HostFacts::default();
    for l in host.links.values() {
        facts.links.insert(l.name.clone(), l.alias.clone());
        for a in host.addrs_of(l.index) {
            facts.local_addrs.insert(a.ip(), (l.name.clone(), l.mtu));
        }
    }

    // Bridges.
    let mut bridge_network: BTreeMap<u32, String> = BTreeMap::new();
    for l in host
        .links
        .values()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
    {
        if let Some(m) = owned(l).filter(|m| m.kind == MarkKind::Network) {
            bridge_network.insert(l.index, m.name.clone());
            state.bridges.insert(
                m.name.clone(),
                BridgeRes {
                    network: m.name.clone(),
                    ifname: l.name.clone(),
                    mtu: l.mtu,
                    addrs: host.addrs_of(l.index),
                    up: l.up,
                    marked: l.alias.is_some(),
                },
            );
        }
    }

    // VXLAN devices of overlay networks, and their FDB and neighbour entries.
    let mut vxlan_network: BTreeMap<u32, (String, String)> = BTreeMap::new(); // index → (network, ifname)
    for l in host
        .links
        .values()
        .filter(|l| l.kind.as_deref() == Some("vxlan"))
    {
        let Some(m) = owned(l).filter(|m| m.kind == MarkKind::Vtep) else {
            continue;
        };
        let v = l.vxlan.clone().unwrap_or_default();
        vxlan_network.insert(l.index, (m.name.clone(), l.name.clone()));
        state.vxlans.insert(
            m.name.clone(),
            VxlanRes {
                network: m.name.clone(),
                ifname: l.name.clone(),
                vni: v.vni,
                local: v
                    .local
                    .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
                port: v.port,
                learning: v.learning,
                proxy: v.proxy,
                mtu: l.mtu,
                bridge: l
                    .master
                    .and_then(|i| host.links.get(&i))
                    .map(|b| b.name.clone())
                    .unwrap_or_default(),
                up: l.up,
                marked: l.alias.is_some(),
            },
        );
    }
    if !vxlan_network.is_empty() {
        observe_vxlan_entries(&host_handle, &vxlan_network, &mut state).await?;
    }

    // Routed subnets, except those on links this topology owns.
    let owned_idx: Vec<u32> = host
        .links
        .values()
        .filter(|l| owned(l).is_some())
        .map(|l| l.index)
        .collect();
    let routes =
        netlink::dump_routes(&host_handle)
            .await
            .map_err(|source| ObserveError::Netlink {
                what: "routes",
                netns: None,
                source,
            })?;
    for r in routes {
        if r.header.destination_prefix_length == 0 {
            continue;
        }
        let oif = r.attributes.iter().find_map(|a| {
            if let RouteAttribute::Oif(i) = a {
                Some(*i)
            } else {
                None
            }
        });
        if oif.is_some_and(|i| owned_idx.contains(&i)) {
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
                facts.routed.push(net);
            }
        }
    }

    // Sandbox namespaces.
    facts.netns = netns::list().map_err(|e| ObserveError::Io {
        context: format!("cannot list {}", naming::NETNS_DIR),
        source: e,
    })?;
    let conns = Connections {
        host: host_handle,
        sandboxes: BTreeMap::new(),
    };
    let mut inside: BTreeMap<String, (String, LinkTable)> = BTreeMap::new(); // sandbox → (netns, links)
                                                                             // Connect to every live owned namespace, then dump them all at once:
                                                                             // the requests of all namespaces are in flight together.
    let mut live = Vec::new();
    let mut files = Vec::new();
    for (sandbox, ns) in sandbox_records(topology) {
        facts.owned_netns.insert(ns.clone());
        if !facts.netns.contains(&ns) || !netns::is_namespace(&ns) {
            continue; // missing, or a placeholder of an interrupted create
        }
        files.push(netns::open(&ns).map_err(|e| ObserveError::Io {
            context: format!("cannot open namespace {ns}"),
            source: e,
        })?);
        live.push((sandbox, ns));
    }
    let handles = netlink::connect_in_each(files).map_err(|e| ObserveError::Io {
        context: "cannot enter the sandbox namespaces".into(),
        source: e,
    })?;
    let live: Vec<_> = live
        .into_iter()
        .zip(handles)
        .map(|((s, n), h)| (s, n, h))
        .collect();
    let dumps =
        futures::future::join_all(live.into_iter().map(|(sandbox, ns, handle)| async move {
            let table = LinkTable::dump(&handle, Some(&ns)).await;
            let routes =
                netlink::dump_routes(&handle)
                    .await
                    .map_err(|source| ObserveError::Netlink {
                        what: "routes",
                        netns: Some(ns.clone()),
                        source,
                    });
            (sandbox, ns, handle, table, routes)
        }))
        .await;
    for (sandbox, ns, handle, table, routes) in dumps {
        let (table, routes) = (table?, routes?);
        let lo_up = table.links.values().any(|l| l.name == "lo" && l.up);
        state.namespaces.insert(
            sandbox.clone(),
            NamespaceRes {
                sandbox: sandbox.clone(),
                netns: ns.clone(),
                lo_up,
            },
        );

        for r in routes
            .iter()
            .filter(|r| r.header.destination_prefix_length == 0)
        {
            let gw = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
                RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
                _ => None,
            });
            let oif = r.attributes.iter().find_map(|a| {
                if let RouteAttribute::Oif(i) = a {
                    Some(*i)
                } else {
                    None
                }
            });
            if let Some(gateway) = gw {
                let dev = oif
                    .and_then(|i| table.links.get(&i))
                    .map(|l| l.name.clone())
                    .unwrap_or_default();
                state
                    .routes
                    .entry((sandbox.clone(), Family::of(&gateway)))
                    .or_insert(RouteRes {
                        sandbox: sandbox.clone(),
                        netns: ns.clone(),
                        gateway,
                        dev,
                    });
            }
        }
        for path in [naming::hosts_path(&ns), naming::resolv_path(&ns)] {
            if let Ok(content) = std::fs::read_to_string(&path) {
                state.files.insert(
                    path.clone(),
                    FileRes {
                        path,
                        sandbox: sandbox.clone(),
                        content,
                    },
                );
            }
        }
        // Not kept: apply reconnects to the few namespaces it changes, so N
        // idle sockets (and their buffers) do not outlive the observation.
        drop(handle);
        inside.insert(sandbox, (ns, table));
    }

    // Veths: the host end carries the mark; the sandbox end carries it too.
    for l in host
        .links
        .values()
        .filter(|l| l.kind.as_deref() == Some("veth"))
    {
        let Some(m) = owned(l).filter(|m| m.kind == MarkKind::Endpoint) else {
            continue;
        };
        let mark = naming::mark(topology, MarkKind::Endpoint, &m.name);
        let peer = inside.iter().find_map(|(sb, (ns, table))| {
            table
                .links
                .values()
                .find(|p| p.alias.as_deref() == Some(mark.as_str()))
                .map(|p| (sb, ns, table, p))
        });
        let bridge = l
            .master
            .and_then(|i| host.links.get(&i))
            .map(|b| b.name.clone())
            .unwrap_or_default();
        let network = l
            .master
            .and_then(|i| bridge_network.get(&i))
            .cloned()
            .unwrap_or_default();
        let mut v = VethRes {
            endpoint: m.name.clone(),
            network,
            sandbox: String::new(),
            netns: String::new(),
            host_ifname: l.name.clone(),
            bridge,
            ifname: String::new(),
            mac: None,
            mtu: l.mtu,
            addrs: Default::default(),
            up: l.up,
            marked: l.alias.is_some(),
        };
        if let Some((sb, ns, table, p)) = peer {
            v.sandbox = sb.clone();
            v.netns = ns.clone();
            v.ifname = p.name.clone();
            v.mac = p.mac;
            v.mtu = if p.mtu == l.mtu {
                l.mtu
            } else {
                p.mtu.min(l.mtu)
            };
            v.addrs = table.addrs_of(p.index);
            v.up = l.up && p.up;
        }
        state.veths.insert(m.name.clone(), v);
    }

    state.firewall = crate::firewall::nft::observe(topology)?;
    let mut keys = vec![
        "net/ipv4/ip_forward".to_string(),
        "net/ipv6/conf/all/forwarding".to_string(),
    ];
    keys.extend(
        state
            .bridges
            .values()
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

    let resolv =
        files::parse_resolv(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    facts.nameservers = resolv.nameservers;
    facts.search = resolv.search;
    facts.resolv_options = resolv.options;

    Ok((Observed { state, host: facts }, conns))
}

/// The static FDB entries (the device's own table, NTF_SELF) and permanent
/// neighbour entries of the topology's VXLAN devices. Everything there is
/// cnm's: the devices learn nothing.
async fn observe_vxlan_entries(
    h: &rtnetlink::Handle,
    devices: &BTreeMap<u32, (String, String)>,
    state: &mut State,
) -> Result<(), ObserveError> {
    use netlink_packet_route::neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourState,
    };
    use netlink_packet_route::AddressFamily;
    let err = |what: &'static str| {
        move |source| ObserveError::Netlink {
            what,
            netns: None,
            source,
        }
    };
    let ip_of = |attrs: &[NeighbourAttribute]| {
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
        if let (Some(mac), Some(dst)) = (mac_of(&m.attributes), ip_of(&m.attributes)) {
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
        if let (Some(ip), Some(mac)) = (ip_of(&m.attributes), mac_of(&m.attributes)) {
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
