//! Changing links and endpoints drivers made (their MTU, master, addresses,
//! ...), deleting them only while they carry cnm's mark, and the entries
//! and routes cnm keeps: FDB and neighbour entries on tunnel devices,
//! routes in sandboxes.

use super::{Executor, R};
use crate::errors::ApplyError;
use crate::model::{EndpointRes, FdbRes, LinkRes, NeighRes, RouteRes};
use crate::netlink::{self, has_ipv6, index_of, ipv6_link_local, set_hairpin, sync_addrs};
use crate::plan::Resource;
use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use std::collections::BTreeSet;
use std::net::IpAddr;

impl Executor {
    /// MTU, master, up and addresses of a network's link.
    pub(super) async fn update_link(&self, o: &LinkRes, l: &LinkRes) -> R {
        let what = Resource::Link(l.clone()).label();
        let k = ApplyError::kernel(&what);
        let mut msg = LinkUnspec::new_with_name(&l.ifname).mtu(l.mtu);
        if o.master != l.master && !l.master.is_empty() {
            let m = index_of(&self.host, &l.master).await.map_err(&k)?;
            msg = msg.controller(m);
        }
        if l.up {
            msg = msg.up();
        }
        self.host
            .link()
            .set(msg.build())
            .execute()
            .await
            .map_err(&k)?;
        if o.addrs != l.addrs {
            let idx = index_of(&self.host, &l.ifname).await.map_err(&k)?;
            sync_addrs(&self.host, idx, &o.addrs, &l.addrs)
                .await
                .map_err(&k)?;
        }
        Ok(())
    }

    /// An endpoint's host end (MTU, master, hairpin, up) and sandbox
    /// interface (MAC, MTU, up, addresses).
    pub(super) async fn update_endpoint(&self, o: &EndpointRes, v: &EndpointRes) -> R {
        let what = Resource::Endpoint(v.clone()).label();
        let k = ApplyError::kernel(&what);
        if let Some(end) = &v.host {
            let mut host_msg = LinkUnspec::new_with_name(&end.ifname).mtu(v.mtu);
            if o.master() != end.master {
                let br = index_of(&self.host, &end.master).await.map_err(&k)?;
                host_msg = host_msg.controller(br);
            }
            self.host
                .link()
                .set(ipv6_link_local(host_msg.up().build(), false))
                .execute()
                .await
                .map_err(&k)?;
            let hairpin = o.host.as_ref().is_some_and(|h| h.hairpin);
            if hairpin != end.hairpin || o.master() != end.master {
                let idx = index_of(&self.host, &end.ifname).await.map_err(&k)?;
                set_hairpin(&self.host, idx, end.hairpin)
                    .await
                    .map_err(&k)?;
            }
        }
        let h = self.sandbox_handle(&v.netns)?;
        let bounced = v.mac.is_some_and(|m| o.mac != Some(m));
        if let Some(mac) = v.mac.filter(|m| o.mac != Some(*m)) {
            // An interface's MAC changes only while it is down.
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
            .set(ipv6_link_local(
                LinkUnspec::new_with_name(&v.ifname).mtu(v.mtu).up().build(),
                has_ipv6(&v.addrs),
            ))
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

    /// `bridge fdb append MAC dev VXLAN dst VTEP self permanent`. Append, so
    /// several flood entries (all-zero MAC) coexist, one per remote VTEP;
    /// rtnetlink's builder cannot set NLM_F_APPEND, so the request is sent
    /// by hand.
    pub(super) async fn add_fdb(&self, f: &FdbRes) -> R {
        let what = Resource::Fdb(f.clone()).label();
        let k = ApplyError::kernel(&what);
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
            Err(e) if !netlink::is_gone(&e) => Err(ApplyError::kernel(&what)(e)),
            _ => Ok(()),
        }
    }

    /// `ip neigh replace IP lladdr MAC dev VXLAN nud permanent`.
    pub(super) async fn set_neigh(&self, n: &NeighRes) -> R {
        let what = Resource::Neigh(n.clone()).label();
        let k = ApplyError::kernel(&what);
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
            Err(e) if !netlink::is_gone(&e) => Err(ApplyError::kernel(&what)(e)),
            _ => Ok(()),
        }
    }

    pub(super) async fn set_route(&self, r: &RouteRes) -> R {
        let what = format!("route in sandbox {}", r.sandbox);
        let k = ApplyError::kernel(&what);
        let h = self.sandbox_handle(&r.netns)?;
        let dev = index_of(&h, &r.dev).await.map_err(&k)?;
        h.route()
            .add(route_message(r, Some(dev)))
            .replace()
            .execute()
            .await
            .map_err(k)
    }

    pub(super) async fn delete_route(&self, r: &RouteRes) -> R {
        let Ok(h) = self.sandbox_handle(&r.netns) else {
            return Ok(());
        };
        let dev = index_of(&h, &r.dev).await.ok();
        // Match whoever added it, whatever its scope.
        let mut msg = route_message(r, dev);
        msg.header.protocol = netlink_packet_route::route::RouteProtocol::Unspec;
        msg.header.scope = netlink_packet_route::route::RouteScope::NoWhere;
        match h.route().del(msg).execute().await {
            Err(e) if !netlink::is_gone(&e) => Err(ApplyError::kernel(&format!(
                "delete route in sandbox {}",
                r.sandbox
            ))(e)),
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
            match gw {
                Some(IpAddr::V4(g)) => b = b.gateway(g),
                // No next hop: on the link (as `ip route add … dev` makes it).
                _ => b = b.scope(netlink_packet_route::route::RouteScope::Link),
            }
            if let Some(i) = dev {
                b = b.output_interface(i);
            }
            b.build()
        }
        (IpNetwork::V6(d), gw) => {
            let mut b = RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .destination_prefix(d.ip(), d.prefix());
            match gw {
                Some(IpAddr::V6(g)) => b = b.gateway(g),
                // No next hop: on the link (as `ip route add … dev` makes it).
                _ => b = b.scope(netlink_packet_route::route::RouteScope::Link),
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
