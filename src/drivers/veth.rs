//! What the bridge and overlay drivers share: a network's own bridge link,
//! and endpoints as veth pairs, one end a port of that bridge in the host,
//! the other `ethN` in the sandbox.

use super::{Effect, Kernel, Learned, NetworkCtx};
use crate::errors::ApplyError;
use crate::model::{EndpointRes, HostEnd, LinkRes, State};
use crate::naming::{self, MarkKind};
use crate::netlink::{add_marked, has_ipv6, index_of, ipv6_link_local, set_hairpin, sync_addrs};
use ipnetwork::IpNetwork;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};
use std::collections::BTreeSet;

/// A network's bridge in the host namespace.
pub fn bridge_link(
    driver: &str,
    network: &str,
    ifname: &str,
    mtu: u32,
    addrs: BTreeSet<IpNetwork>,
) -> LinkRes {
    LinkRes {
        network: network.to_string(),
        role: MarkKind::Network,
        ifname: ifname.to_string(),
        kind: "bridge".into(),
        mtu,
        addrs,
        up: true,
        master: String::new(),
        settings: Vec::new(),
        driver: driver.to_string(),
    }
}

/// Make a bridge link: down under its temporary name, marked, renamed,
/// up; then its addresses.
pub fn create_bridge<'a>(l: &'a LinkRes, k: &'a dyn Kernel) -> Effect<'a, ()> {
    Box::pin(async move {
        let what = format!("create bridge {}", l.ifname);
        let err = ApplyError::kernel(&what);
        let tmp = k.temp_name(&l.ifname)?;
        let msg = LinkBridge::new(&tmp).mtu(l.mtu).down().build();
        let mark = naming::mark(k.topology(), l.role, &l.network);
        let idx = add_marked(k.host(), msg, &tmp, &l.ifname, mark, l.up)
            .await
            .map_err(&err)?;
        sync_addrs(k.host(), idx, &BTreeSet::new(), &l.addrs)
            .await
            .map_err(&err)
    })
}

/// One veth pair per endpoint of the network: host end a port of `master`.
pub fn endpoints(
    ctx: &NetworkCtx<'_>,
    driver: &str,
    master: &str,
    mtu: u32,
    hairpin: bool,
    out: &mut State,
) {
    for ep in &ctx.endpoints {
        let mut addrs = BTreeSet::new();
        if let Some(a) = ep.ipv4 {
            addrs.insert(IpNetwork::V4(a));
        }
        if let Some(a) = ep.ipv6 {
            addrs.insert(IpNetwork::V6(a));
        }
        out.endpoints.insert(
            ep.spec.name.clone(),
            EndpointRes {
                endpoint: ep.spec.name.clone(),
                network: ctx.network.name.clone(),
                sandbox: ep.spec.sandbox.clone(),
                netns: ep.netns.clone(),
                kind: "veth".into(),
                ifname: ep.ifname.clone(),
                mac: ep.mac,
                mtu,
                addrs,
                up: true,
                host: Some(HostEnd {
                    ifname: naming::host_veth_name(ctx.topology, &ep.spec.name),
                    master: master.to_string(),
                    hairpin,
                }),
                settings: Vec::new(),
                unknown: Vec::new(),
                made_with: String::new(),
                driver: driver.to_string(),
            },
        );
    }
}

/// One request creates both ends: the peer is born inside the sandbox,
/// named, addressed (MAC) and sized; the host end, under its temporary
/// name, is a port of its bridge. Then both ends are marked and brought
/// up (the host end renamed in the same request), and the sandbox end
/// addressed.
pub fn create<'a>(e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, Learned> {
    Box::pin(async move {
        let what = format!("create endpoint {}", e.endpoint);
        let err = ApplyError::kernel(&what);
        let host_end = e.host.as_ref().ok_or_else(|| {
            ApplyError::Internal(format!("endpoint {} has no host end", e.endpoint))
        })?;
        let tmp = k.temp_name(&e.endpoint)?;
        let ns = k.netns_file(&e.netns)?;
        let master = k.host_index(&host_end.master).await.map_err(&err)?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(e.ifname.clone())
            .mtu(e.mtu)
            .setns_by_fd(std::os::fd::AsRawFd::as_raw_fd(&ns));
        if let Some(mac) = e.mac {
            peer = peer.address(mac.to_vec());
        }
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(tmp.clone())
            .mtu(e.mtu)
            .controller(master)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        k.host().link().add(msg).execute().await.map_err(&err)?;
        drop(ns);
        let mark = naming::mark(k.topology(), MarkKind::Endpoint, &e.endpoint);
        let idx = index_of(k.host(), &tmp).await.map_err(&err)?;
        // The kernel refuses (ENOTCONN) a peer that asks to be up in the
        // create request: the sandbox end is marked and brought up now.
        let h = k.sandbox(&e.netns)?;
        // The host end is marked, renamed and brought up in one request
        // (the kernel applies a request whole or not at all).
        let (a, b) = futures::join!(
            k.host()
                .link()
                .set(ipv6_link_local(
                    LinkUnspec::new_with_index(idx)
                        .alias(mark.clone())
                        .name(host_end.ifname.clone())
                        .up()
                        .build(),
                    false,
                ))
                .execute(),
            h.link()
                .set(ipv6_link_local(
                    LinkUnspec::new_with_name(&e.ifname)
                        .alias(mark)
                        .up()
                        .build(),
                    has_ipv6(&e.addrs)
                ))
                .execute()
        );
        a.map_err(&err)?;
        b.map_err(&err)?;
        if host_end.hairpin {
            set_hairpin(k.host(), idx, true).await.map_err(&err)?;
        }
        let pidx = index_of(&h, &e.ifname).await.map_err(&err)?;
        sync_addrs(&h, pidx, &BTreeSet::new(), &e.addrs)
            .await
            .map_err(&err)?;
        Ok(Learned::new())
    })
}
