//! Links in the host namespace and their entries: bridges, veth pairs,
//! VXLAN devices, FDB and neighbour entries, sandbox default routes.
//!
//! Every link is created down under the unique temporary name the journal
//! recorded, marked (IFLA_IFALIAS; the kernel ignores it in a create
//! request), and only then renamed to its real name and brought up: a link
//! under a name someone else could have chosen is always marked.

use super::{kernel, Executor, R};
use crate::model::{BridgeRes, FdbRes, NeighRes, RouteRes, VethRes, VxlanRes};
use crate::naming::{self, MarkKind};
use crate::netlink;
use crate::plan::Resource;
use futures::future::join_all;
use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressHeaderFlags;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan,
    RouteMessageBuilder,
};
use std::collections::BTreeSet;
use std::net::IpAddr;

impl Executor {
    pub(super) async fn create_bridge(&self, b: &BridgeRes) -> R {
        let what = format!("create bridge {}", b.ifname);
        let k = kernel(&what);
        let tmp = self.temp_name(&b.ifname)?;
        let msg = LinkBridge::new(&tmp).mtu(b.mtu).down().build();
        let mark = naming::mark(&self.topology, MarkKind::Network, &b.network);
        let idx = self
            .add_then_name(msg, &tmp, &b.ifname, mark, b.up)
            .await
            .map_err(&k)?;
        sync_addrs(&self.host, idx, &BTreeSet::new(), &b.addrs)
            .await
            .map_err(&k)
    }

    /// One request creates both ends: the peer is born inside the sandbox,
    /// named, addressed (MAC) and sized; the host end is enslaved. Then both
    /// ends are marked, the host end renamed, and both brought up.
    pub(super) async fn create_veth(&self, v: &VethRes) -> R {
        let what = format!("create endpoint {}", v.endpoint);
        let k = kernel(&what);
        let tmp = self.temp_name(&v.host_ifname)?;
        let ns = crate::netns::open(&v.netns)
            .map_err(super::io(format!("cannot open namespace {}", v.netns)))?
            .ok_or_else(|| super::missing_ns(&v.netns))?;
        let bridge = index_of(&self.host, &v.bridge).await.map_err(&k)?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(v.ifname.clone())
            .mtu(v.mtu)
            .setns_by_fd(std::os::fd::AsRawFd::as_raw_fd(&ns));
        if let Some(mac) = v.mac {
            peer = peer.address(mac.to_vec());
        }
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(tmp.clone())
            .mtu(v.mtu)
            .controller(bridge)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        self.host.link().add(msg).execute().await.map_err(&k)?;
        drop(ns);
        let mark = naming::mark(&self.topology, MarkKind::Endpoint, &v.endpoint);
        let idx = index_of(&self.host, &tmp).await.map_err(&k)?;
        // The kernel refuses (ENOTCONN) a peer that asks to be up in the
        // create request: the sandbox end is marked and brought up now.
        let h = self.sandbox(&v.netns)?;
        let (a, b) = futures::join!(
            self.host
                .link()
                .set(LinkUnspec::new_with_index(idx).alias(mark.clone()).build())
                .execute(),
            h.link()
                .set(
                    LinkUnspec::new_with_name(&v.ifname)
                        .alias(mark)
                        .up()
                        .build()
                )
                .execute()
        );
        a.map_err(&k)?;
        b.map_err(&k)?;
        self.host
            .link()
            .set(
                LinkUnspec::new_with_index(idx)
                    .name(v.host_ifname.clone())
                    .up()
                    .build(),
            )
            .execute()
            .await
            .map_err(&k)?;
        if v.hairpin {
            self.set_hairpin(idx, true).await.map_err(&k)?;
        }
        let pidx = index_of(&h, &v.ifname).await.map_err(&k)?;
        sync_addrs(&h, pidx, &BTreeSet::new(), &v.addrs)
            .await
            .map_err(&k)
    }

    /// Hairpin mode of a bridge port (`ip link set PORT type bridge_slave
    /// hairpin on`).
    async fn set_hairpin(&self, index: u32, on: bool) -> Result<(), rtnetlink::Error> {
        self.host
            .link()
            .change(LinkBridgePort::new(index).hairpin(on).build())
            .execute()
            .await
    }

    /// The VXLAN device, created as a port of its bridge.
    pub(super) async fn create_vxlan(&self, x: &VxlanRes) -> R {
        let what = format!("create vxlan {}", x.ifname);
        let k = kernel(&what);
        let tmp = self.temp_name(&x.ifname)?;
        let bridge = index_of(&self.host, &x.bridge).await.map_err(&k)?;
        let mut msg = LinkVxlan::new(&tmp, x.vni)
            .port(x.port)
            .learning(x.learning)
            .proxy(x.proxy)
            .mtu(x.mtu)
            .controller(bridge)
            .down();
        msg = match x.local {
            IpAddr::V4(a) => msg.local(a),
            IpAddr::V6(a) => msg.local6(a),
        };
        let mark = naming::mark(&self.topology, MarkKind::Vtep, &x.network);
        self.add_then_name(msg.build(), &tmp, &x.ifname, mark, x.up)
            .await
            .map(|_| ())
            .map_err(&k)
    }

    /// Create a host link under its temporary name, mark it, then give it
    /// its real name (and bring it up). Returns its index.
    async fn add_then_name(
        &self,
        msg: netlink_packet_route::link::LinkMessage,
        tmp: &str,
        name: &str,
        mark: String,
        up: bool,
    ) -> Result<u32, rtnetlink::Error> {
        self.host.link().add(msg).execute().await?;
        let idx = index_of(&self.host, tmp).await?;
        self.host
            .link()
            .set(LinkUnspec::new_with_index(idx).alias(mark).build())
            .execute()
            .await?;
        let mut rename = LinkUnspec::new_with_index(idx).name(name.to_string());
        if up {
            rename = rename.up();
        }
        self.host.link().set(rename.build()).execute().await?;
        Ok(idx)
    }

    pub(super) async fn update_bridge(&self, o: &BridgeRes, b: &BridgeRes) -> R {
        let what = Resource::Bridge(b.clone()).label();
        let k = kernel(&what);
        let mut msg = LinkUnspec::new_with_name(&b.ifname).mtu(b.mtu);
        if b.up {
            msg = msg.up();
        }
        self.host
            .link()
            .set(msg.build())
            .execute()
            .await
            .map_err(&k)?;
        let idx = index_of(&self.host, &b.ifname).await.map_err(&k)?;
        sync_addrs(&self.host, idx, &o.addrs, &b.addrs)
            .await
            .map_err(&k)
    }

    pub(super) async fn update_veth(&self, o: &VethRes, v: &VethRes) -> R {
        let what = Resource::Veth(v.clone()).label();
        let k = kernel(&what);
        let mut host_msg = LinkUnspec::new_with_name(&v.host_ifname).mtu(v.mtu);
        if o.bridge != v.bridge {
            let br = index_of(&self.host, &v.bridge).await.map_err(&k)?;
            host_msg = host_msg.controller(br);
        }
        self.host
            .link()
            .set(host_msg.up().build())
            .execute()
            .await
            .map_err(&k)?;
        if o.hairpin != v.hairpin || o.bridge != v.bridge {
            let idx = index_of(&self.host, &v.host_ifname).await.map_err(&k)?;
            self.set_hairpin(idx, v.hairpin).await.map_err(&k)?;
        }
        let h = self.sandbox(&v.netns)?;
        let bounced = v.mac.is_some_and(|m| o.mac != Some(m));
        if let Some(mac) = v.mac.filter(|m| o.mac != Some(*m)) {
            // A veth's MAC changes only while it is down.
            h.link()
                .set(LinkUnspec::new_with_name(&v.ifname).down().build())
                .execute()
                .await
                .map_err(&k)?;
            h.link()
                .set(
                    LinkUnspec::new_with_name(&v.ifname)
                        .address(mac.to_vec())
                        .build(),
                )
                .execute()
                .await
                .map_err(&k)?;
        }
        h.link()
            .set(LinkUnspec::new_with_name(&v.ifname).mtu(v.mtu).up().build())
            .execute()
            .await
            .map_err(&k)?;
        let idx = index_of(&h, &v.ifname).await.map_err(&k)?;
        sync_addrs(&h, idx, &o.addrs, &v.addrs).await.map_err(&k)?;
        if bounced {
            // The bounce dropped its IPv6 addresses: add them all again.
            sync_addrs(&h, idx, &BTreeSet::new(), &v.addrs)
                .await
                .map_err(&k)?;
        }
        Ok(())
    }

    pub(super) async fn update_vxlan(&self, o: &VxlanRes, x: &VxlanRes) -> R {
        let what = Resource::Vxlan(x.clone()).label();
        let k = kernel(&what);
        let mut msg = LinkUnspec::new_with_name(&x.ifname).mtu(x.mtu);
        if o.bridge != x.bridge {
            let br = index_of(&self.host, &x.bridge).await.map_err(&k)?;
            msg = msg.controller(br);
        }
        if x.up {
            msg = msg.up();
        }
        self.host.link().set(msg.build()).execute().await.map_err(k)
    }

    /// `bridge fdb append MAC dev VXLAN dst VTEP self permanent`. Append, so
    /// several flood entries (all-zero MAC) coexist, one per remote VTEP;
    /// rtnetlink's builder cannot set NLM_F_APPEND, so the request is sent
    /// by hand.
    pub(super) async fn add_fdb(&self, f: &FdbRes) -> R {
        let what = Resource::Fdb(f.clone()).label();
        let k = kernel(&what);
        let idx = index_of(&self.host, &f.dev).await.map_err(&k)?;
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(fdb_message(idx, f)));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        let mut h = self.host.clone();
        let mut resp = h.request(req).map_err(&k)?;
        while let Some(m) = futures::StreamExt::next(&mut resp).await {
            if let NetlinkPayload::Error(e) = m.payload {
                return Err(k(rtnetlink::Error::NetlinkError(e)));
            }
        }
        Ok(())
    }

    pub(super) async fn del_fdb(&self, f: &FdbRes) -> R {
        let what = format!("delete {}", Resource::Fdb(f.clone()).label());
        let Ok(idx) = index_of(&self.host, &f.dev).await else {
            return Ok(()); // the device is gone, and its entries with it
        };
        match self
            .host
            .neighbours()
            .del(fdb_message(idx, f))
            .execute()
            .await
        {
            Err(e) if !netlink::is_gone(&e) => Err(kernel(&what)(e)),
            _ => Ok(()),
        }
    }

    /// `ip neigh replace IP lladdr MAC dev VXLAN nud permanent`.
    pub(super) async fn set_neigh(&self, n: &NeighRes) -> R {
        let what = Resource::Neigh(n.clone()).label();
        let k = kernel(&what);
        let idx = index_of(&self.host, &n.dev).await.map_err(&k)?;
        self.host
            .neighbours()
            .add(idx, n.ip)
            .link_layer_address(&n.mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(k)
    }

    pub(super) async fn del_neigh(&self, n: &NeighRes) -> R {
        let what = format!("delete {}", Resource::Neigh(n.clone()).label());
        let Ok(idx) = index_of(&self.host, &n.dev).await else {
            return Ok(());
        };
        let mut msg = NeighbourMessage::default();
        msg.header.family = match n.ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.header.ifindex = idx;
        msg.attributes
            .push(NeighbourAttribute::Destination(neigh_addr(n.ip)));
        match self.host.neighbours().del(msg).execute().await {
            Err(e) if !netlink::is_gone(&e) => Err(kernel(&what)(e)),
            _ => Ok(()),
        }
    }

    pub(super) async fn set_route(&self, r: &RouteRes) -> R {
        let what = format!("route in sandbox {}", r.sandbox);
        let k = kernel(&what);
        let h = self.sandbox(&r.netns)?;
        let dev = index_of(&h, &r.dev).await.map_err(&k)?;
        h.route()
            .add(route_message(r, Some(dev)))
            .replace()
            .execute()
            .await
            .map_err(k)
    }

    pub(super) async fn delete_route(&self, r: &RouteRes) -> R {
        let Ok(h) = self.sandbox(&r.netns) else {
            return Ok(());
        };
        let dev = index_of(&h, &r.dev).await.ok();
        // Match whoever added it, whatever its scope.
        let mut msg = route_message(r, dev);
        msg.header.protocol = netlink_packet_route::route::RouteProtocol::Unspec;
        msg.header.scope = netlink_packet_route::route::RouteScope::NoWhere;
        match h.route().del(msg).execute().await {
            Err(e) if !netlink::is_gone(&e) => {
                Err(kernel(&format!("delete route in sandbox {}", r.sandbox))(e))
            }
            _ => Ok(()),
        }
    }
}

/// A main-table route: destination, next hop (if any), device (if known).
fn route_message(r: &RouteRes, dev: Option<u32>) -> netlink_packet_route::route::RouteMessage {
    match (r.dst, r.gateway) {
        (IpNetwork::V4(d), gw) => {
            let mut b = RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .destination_prefix(d.ip(), d.prefix());
            if let Some(IpAddr::V4(g)) = gw {
                b = b.gateway(g);
            }
            if let Some(i) = dev {
                b = b.output_interface(i);
            }
            b.build()
        }
        (IpNetwork::V6(d), gw) => {
            let mut b = RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(d.ip(), d.prefix());
            if let Some(IpAddr::V6(g)) = gw {
                b = b.gateway(g);
            }
            if let Some(i) = dev {
                b = b.output_interface(i);
            }
            b.build()
        }
    }
}

/// A static FDB entry of a VXLAN device (NTF_SELF: the device's own table).
fn fdb_message(ifindex: u32, f: &FdbRes) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = ifindex;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(f.mac.to_vec()));
    msg.attributes
        .push(NeighbourAttribute::Destination(neigh_addr(f.dst)));
    msg
}

fn neigh_addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

pub(super) async fn index_of(h: &Handle, name: &str) -> Result<u32, rtnetlink::Error> {
    let msg = h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await?;
    msg.map(|m| m.header.index)
        .ok_or(rtnetlink::Error::RequestFailed)
}

/// Delete the host link `name` if it still carries `mark` (any mark, or
/// none, when `mark` is `None`: a journaled temporary name). A link that
/// is gone, or that is no longer cnm's, is left alone.
pub(super) async fn delete_marked(
    h: &Handle,
    name: &str,
    mark: Option<&str>,
) -> Result<(), rtnetlink::Error> {
    let found = match h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
    {
        Ok(m) => m,
        Err(e) if netlink::is_gone(&e) => None,
        Err(e) => return Err(e),
    };
    let Some(msg) = found else {
        return Ok(());
    };
    let alias = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(s) => Some(s.as_str()),
        _ => None,
    });
    if let Some(want) = mark {
        if alias != Some(want) {
            tracing::warn!(link = name, "not deleted: it no longer carries cnm's mark");
            return Ok(());
        }
    }
    match h.link().del(msg.header.index).execute().await {
        Err(e) if !netlink::is_gone(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Bring a link's addresses from `old` to `new`: removals first (an address
/// may move between links), then additions, IPv6 without duplicate address
/// detection (the file already guarantees uniqueness).
pub(super) async fn sync_addrs(
    h: &Handle,
    index: u32,
    old: &BTreeSet<IpNetwork>,
    new: &BTreeSet<IpNetwork>,
) -> Result<(), rtnetlink::Error> {
    let gone: Vec<&IpNetwork> = old.difference(new).collect();
    if !gone.is_empty() {
        let present: Vec<_> = h
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await?;
        let dels = present.into_iter().filter(|m| {
            netlink::addr_ip(m)
                .and_then(|ip| IpNetwork::new(ip, m.header.prefix_len).ok())
                .is_some_and(|n| gone.contains(&&n))
        });
        for r in join_all(dels.map(|m| h.address().del(m).execute())).await {
            match r {
                Err(e) if !netlink::is_gone(&e) => return Err(e),
                _ => {}
            }
        }
    }
    let adds = new.difference(old).map(|n| {
        let mut req = h.address().add(index, n.ip(), n.prefix()).replace();
        if n.is_ipv6() {
            req.message_mut().header.flags = AddressHeaderFlags::Nodad;
        }
        if n.ip().is_loopback() {
            // As the kernel (and `ip addr add`) give loopback addresses.
            req.message_mut().header.scope = netlink_packet_route::address::AddressScope::Host;
        }
        req.execute()
    });
    join_all(adds).await.into_iter().collect()
}
