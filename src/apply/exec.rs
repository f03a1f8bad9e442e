//! Executes a plan's actions over netlink: one connection per namespace,
//! the actions of one step (same kind, same phase) sent together so their
//! requests are pipelined on each connection.

use super::ApplyError;
use crate::files;
use crate::model::{
    BridgeRes, Family, FdbRes, FileRes, NamespaceRes, NeighRes, RouteRes, VethRes, VxlanRes,
};
use crate::naming::{self, MarkKind};
use crate::netlink;
use crate::netns;
use crate::plan::{Action, Op, Plan, Resource};
use futures::future::join_all;
use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressHeaderFlags;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;

pub struct Executor {
    topology: String,
    host: Handle,
    sandboxes: Mutex<BTreeMap<String, Handle>>,
}

type R = Result<(), ApplyError>;

fn kernel(action: &str) -> impl Fn(rtnetlink::Error) -> ApplyError + '_ {
    move |source| ApplyError::Kernel {
        action: action.to_string(),
        source,
    }
}

fn io(context: String) -> impl Fn(std::io::Error) -> ApplyError {
    move |source| ApplyError::Io {
        context: context.clone(),
        source,
    }
}

impl Executor {
    pub fn new(topology: &str, conns: crate::observe::Connections) -> Self {
        Executor {
            topology: topology.to_string(),
            host: conns.host,
            sandboxes: Mutex::new(conns.sandboxes),
        }
    }

    /// Run every action, step by step. A step is a run of actions of the
    /// same kind and phase; its actions go out concurrently.
    pub async fn run(&self, plan: &Plan) -> R {
        let mut i = 0;
        while i < plan.actions.len() {
            let key = step_key(&plan.actions[i]);
            let mut j = i;
            while j < plan.actions.len() && step_key(&plan.actions[j]) == key {
                j += 1;
            }
            let step = &plan.actions[i..j];
            self.journal(step)?;
            // Replaced objects go first, so a name they free can be reused.
            let olds = join_all(
                step.iter()
                    .filter(|a| a.op == Op::Replace)
                    .map(|a| self.remove(a.before.as_ref().unwrap_or(&a.resource))),
            )
            .await;
            olds.into_iter().collect::<R>()?;
            let results = join_all(step.iter().map(|a| self.one(a))).await;
            results.into_iter().collect::<R>()?;
            i = j;
        }
        let _ = std::fs::remove_file(naming::journal_path(&self.topology));
        Ok(())
    }

    async fn one(&self, a: &Action) -> R {
        match a.op {
            Op::Delete => self.remove(&a.resource).await,
            Op::Create | Op::Replace => self.create(&a.resource).await,
            Op::Update => {
                self.update(a.before.as_ref().unwrap_or(&a.resource), &a.resource)
                    .await
            }
        }
    }

    /// Record the links this step creates before creating them (see
    /// `naming::journal_path`).
    fn journal(&self, step: &[Action]) -> R {
        let mut lines = String::new();
        for a in step
            .iter()
            .filter(|a| matches!(a.op, Op::Create | Op::Replace))
        {
            match &a.resource {
                Resource::Bridge(b) => lines.push_str(&format!(
                    "{}\t{}\n",
                    b.ifname,
                    naming::mark(&self.topology, MarkKind::Network, &b.network)
                )),
                Resource::Veth(v) => lines.push_str(&format!(
                    "{}\t{}\n",
                    v.host_ifname,
                    naming::mark(&self.topology, MarkKind::Endpoint, &v.endpoint)
                )),
                Resource::Vxlan(x) => lines.push_str(&format!(
                    "{}\t{}\n",
                    x.ifname,
                    naming::mark(&self.topology, MarkKind::Vtep, &x.network)
                )),
                _ => {}
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        let path = naming::journal_path(&self.topology);
        let err = io(format!("cannot write {path}"));
        std::fs::create_dir_all(naming::topology_dir(&self.topology)).map_err(&err)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(&err)?;
        f.write_all(lines.as_bytes()).map_err(&err)?;
        f.sync_data().map_err(&err)
    }

    fn sandbox(&self, netns: &str) -> Result<Handle, ApplyError> {
        if let Some(h) = self
            .sandboxes
            .lock()
            .map_err(|_| ApplyError::Internal("lock poisoned".into()))?
            .get(netns)
        {
            return Ok(h.clone());
        }
        let file = netns::open(netns).map_err(io(format!("cannot open namespace {netns}")))?;
        let h =
            netlink::connect_in(&file).map_err(io(format!("cannot enter namespace {netns}")))?;
        self.sandboxes
            .lock()
            .map_err(|_| ApplyError::Internal("lock poisoned".into()))?
            .insert(netns.to_string(), h.clone());
        Ok(h)
    }

    async fn create(&self, r: &Resource) -> R {
        match r {
            Resource::Namespace(n) => self.create_namespace(n).await,
            Resource::Bridge(b) => self.create_bridge(b).await,
            Resource::Veth(v) => self.create_veth(v).await,
            Resource::Vxlan(x) => self.create_vxlan(x).await,
            Resource::Fdb(f) => self.add_fdb(f).await,
            Resource::Neigh(n) => self.set_neigh(n).await,
            Resource::Route(rt) => self.set_route(rt).await,
            Resource::File(f) => write_file(f),
            Resource::Firewall(f) => self.set_firewall(Some(f)).await,
            Resource::Sysctl(s) => write_sysctl(s),
        }
    }

    async fn remove(&self, r: &Resource) -> R {
        match r {
            Resource::Namespace(n) => self.delete_namespace(n),
            Resource::Bridge(b) => delete_link(&self.host, &b.ifname)
                .await
                .map_err(kernel(&r.label())),
            Resource::Veth(v) => delete_link(&self.host, &v.host_ifname)
                .await
                .map_err(kernel(&r.label())),
            Resource::Vxlan(x) => delete_link(&self.host, &x.ifname)
                .await
                .map_err(kernel(&r.label())),
            Resource::Fdb(f) => self.del_fdb(f).await,
            Resource::Neigh(n) => self.del_neigh(n).await,
            Resource::Route(rt) => self.delete_route(rt).await,
            Resource::File(f) => match std::fs::remove_file(&f.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io(format!("cannot remove {}", f.path))(e))
                }
                _ => Ok(()),
            },
            Resource::Firewall(_) => self.set_firewall(None).await,
            Resource::Sysctl(_) => Ok(()),
        }
    }

    async fn update(&self, old: &Resource, new: &Resource) -> R {
        let what = new.label();
        let k = kernel(&what);
        match (old, new) {
            (Resource::Namespace(_), Resource::Namespace(n)) => {
                let h = self.sandbox(&n.netns)?;
                h.link()
                    .set(LinkUnspec::new_with_name("lo").up().build())
                    .execute()
                    .await
                    .map_err(k)
            }
            (Resource::Bridge(o), Resource::Bridge(b)) => {
                let mut msg = LinkUnspec::new_with_name(&b.ifname).mtu(b.mtu);
                if b.up {
                    msg = msg.up();
                }
                if !o.marked {
                    msg = msg.alias(naming::mark(&self.topology, MarkKind::Network, &b.network));
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
            (Resource::Veth(o), Resource::Veth(v)) => {
                let mut host_msg = LinkUnspec::new_with_name(&v.host_ifname).mtu(v.mtu);
                if o.bridge != v.bridge {
                    let br = index_of(&self.host, &v.bridge).await.map_err(&k)?;
                    host_msg = host_msg.controller(br);
                }
                if !o.marked {
                    host_msg = host_msg.alias(naming::mark(
                        &self.topology,
                        MarkKind::Endpoint,
                        &v.endpoint,
                    ));
                }
                self.host
                    .link()
                    .set(host_msg.up().build())
                    .execute()
                    .await
                    .map_err(&k)?;
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
            (Resource::Vxlan(o), Resource::Vxlan(x)) => {
                let mut msg = LinkUnspec::new_with_name(&x.ifname).mtu(x.mtu);
                if o.bridge != x.bridge {
                    let br = index_of(&self.host, &x.bridge).await.map_err(&k)?;
                    msg = msg.controller(br);
                }
                if !o.marked {
                    msg = msg.alias(naming::mark(&self.topology, MarkKind::Vtep, &x.network));
                }
                if x.up {
                    msg = msg.up();
                }
                self.host.link().set(msg.build()).execute().await.map_err(k)
            }
            (Resource::Neigh(_), Resource::Neigh(n)) => self.set_neigh(n).await,
            (Resource::Fdb(_), Resource::Fdb(f)) => self.add_fdb(f).await,
            (Resource::Route(_), Resource::Route(rt)) => self.set_route(rt).await,
            (Resource::File(_), Resource::File(f)) => write_file(f),
            (Resource::Firewall(_), Resource::Firewall(f)) => self.set_firewall(Some(f)).await,
            (Resource::Sysctl(_), Resource::Sysctl(s)) => write_sysctl(s),
            _ => Err(ApplyError::Internal(format!(
                "update changes the kind of {what}"
            ))),
        }
    }

    /// Replace the topology's tables in one nft transaction, then record
    /// their fingerprint. `nft` is a process: run it off the runtime.
    async fn set_firewall(&self, fw: Option<&crate::model::FirewallRes>) -> R {
        let topology = self.topology.clone();
        let doc = crate::firewall::nft::document(&crate::firewall::table_name(&topology), fw);
        let rules = fw.map_or(0, |f| f.rules.len());
        tokio::task::spawn_blocking(move || {
            let start = std::time::Instant::now();
            crate::firewall::nft::apply(&doc)?;
            tracing::debug!(
                rules,
                us = start.elapsed().as_micros() as u64,
                "nft transaction"
            );
            crate::firewall::nft::record(&topology)
        })
        .await
        .map_err(|e| ApplyError::Internal(e.to_string()))?
        .map_err(ApplyError::Firewall)
    }

    async fn create_namespace(&self, n: &NamespaceRes) -> R {
        // The record comes first: a crash after it leaves a namespace cnm
        // still recognizes as its own.
        let record = naming::sandbox_record(&self.topology, &n.sandbox);
        let err = io(format!("cannot write {record}"));
        std::fs::create_dir_all(
            std::path::Path::new(&record)
                .parent()
                .unwrap_or(std::path::Path::new("/")),
        )
        .map_err(&err)?;
        std::fs::write(&record, format!("{}\n", n.netns)).map_err(&err)?;
        if !netns::is_namespace(&n.netns) {
            netns::create(&n.netns).map_err(io(format!("cannot create namespace {}", n.netns)))?;
        }
        let h = self.sandbox(&n.netns)?;
        h.link()
            .set(LinkUnspec::new_with_name("lo").up().build())
            .execute()
            .await
            .map_err(kernel(&format!("loopback up in {}", n.netns)))
    }

    fn delete_namespace(&self, n: &NamespaceRes) -> R {
        if let Ok(mut s) = self.sandboxes.lock() {
            s.remove(&n.netns);
        }
        netns::delete(&n.netns).map_err(io(format!("cannot delete namespace {}", n.netns)))?;
        let dir = format!("{}/{}", naming::ETC_NETNS_DIR, n.netns);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("cannot remove {dir}"))(e))
            }
            _ => {}
        }
        match std::fs::remove_file(naming::sandbox_record(&self.topology, &n.sandbox)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io("cannot remove a sandbox record".into())(e))
            }
            _ => Ok(()),
        }
    }

    async fn create_bridge(&self, b: &BridgeRes) -> R {
        let what = format!("create bridge {}", b.ifname);
        let k = kernel(&what);
        let mut msg = LinkBridge::new(&b.ifname).mtu(b.mtu);
        if !b.up {
            msg = msg.down();
        }
        let mark = naming::mark(&self.topology, MarkKind::Network, &b.network);
        self.add_marked(msg.build(), &b.ifname, mark)
            .await
            .map_err(&k)?;
        let idx = index_of(&self.host, &b.ifname).await.map_err(&k)?;
        sync_addrs(&self.host, idx, &BTreeSet::new(), &b.addrs)
            .await
            .map_err(&k)
    }

    /// One request creates both ends: the peer is born inside the sandbox,
    /// named, addressed (MAC), sized and up; the host end is enslaved and up.
    async fn create_veth(&self, v: &VethRes) -> R {
        let what = format!("create endpoint {}", v.endpoint);
        let k = kernel(&what);
        let ns = netns::open(&v.netns).map_err(io(format!("cannot open namespace {}", v.netns)))?;
        let bridge = index_of(&self.host, &v.bridge).await.map_err(&k)?;
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(v.ifname.clone())
            .mtu(v.mtu)
            .setns_by_fd(std::os::fd::AsRawFd::as_raw_fd(&ns));
        if let Some(mac) = v.mac {
            peer = peer.address(mac.to_vec());
        }
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(v.host_ifname.clone())
            .mtu(v.mtu)
            .controller(bridge)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        self.host.link().add(msg).execute().await.map_err(&k)?;
        drop(ns);
        let mark = naming::mark(&self.topology, MarkKind::Endpoint, &v.endpoint);
        // The kernel ignores IFLA_IFALIAS in a create request, and refuses
        // (ENOTCONN) a peer that asks to be up: mark both ends and bring the
        // sandbox end up now.
        let h = self.sandbox(&v.netns)?;
        let (a, b) = futures::join!(
            self.host
                .link()
                .set(
                    LinkUnspec::new_with_name(&v.host_ifname)
                        .alias(mark.clone())
                        .build()
                )
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
        let idx = index_of(&h, &v.ifname).await.map_err(&k)?;
        sync_addrs(&h, idx, &BTreeSet::new(), &v.addrs)
            .await
            .map_err(&k)
    }

    /// The VXLAN device, created as a port of its bridge, up, then marked.
    async fn create_vxlan(&self, x: &VxlanRes) -> R {
        let what = format!("create vxlan {}", x.ifname);
        let k = kernel(&what);
        let bridge = index_of(&self.host, &x.bridge).await.map_err(&k)?;
        let mut msg = LinkVxlan::new(&x.ifname, x.vni)
            .port(x.port)
            .learning(x.learning)
            .proxy(x.proxy)
            .mtu(x.mtu)
            .controller(bridge);
        msg = match x.local {
            IpAddr::V4(a) => msg.local(a),
            IpAddr::V6(a) => msg.local6(a),
        };
        if x.up {
            msg = msg.up();
        }
        let mark = naming::mark(&self.topology, MarkKind::Vtep, &x.network);
        self.add_marked(msg.build(), &x.ifname, mark)
            .await
            .map_err(&k)
    }

    /// Create a host link, then mark it: the kernel ignores IFLA_IFALIAS in
    /// a create request (the journal covers the moment in between).
    async fn add_marked(
        &self,
        msg: netlink_packet_route::link::LinkMessage,
        ifname: &str,
        mark: String,
    ) -> Result<(), rtnetlink::Error> {
        self.host.link().add(msg).execute().await?;
        self.host
            .link()
            .set(LinkUnspec::new_with_name(ifname).alias(mark).build())
            .execute()
            .await
    }

    /// `bridge fdb append MAC dev VXLAN dst VTEP self permanent`. Append, so
    /// several flood entries (all-zero MAC) coexist, one per remote VTEP;
    /// rtnetlink's builder cannot set NLM_F_APPEND, so the request is sent
    /// by hand.
    async fn add_fdb(&self, f: &FdbRes) -> R {
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

    async fn del_fdb(&self, f: &FdbRes) -> R {
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
    async fn set_neigh(&self, n: &NeighRes) -> R {
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

    async fn del_neigh(&self, n: &NeighRes) -> R {
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

    async fn set_route(&self, r: &RouteRes) -> R {
        let what = format!("route in sandbox {}", r.sandbox);
        let k = kernel(&what);
        let h = self.sandbox(&r.netns)?;
        let dev = index_of(&h, &r.dev).await.map_err(&k)?;
        let msg = match r.gateway {
            IpAddr::V4(gw) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(dev)
                .build(),
            IpAddr::V6(gw) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .gateway(gw)
                .output_interface(dev)
                .build(),
        };
        h.route().add(msg).replace().execute().await.map_err(k)
    }

    async fn delete_route(&self, r: &RouteRes) -> R {
        let Ok(h) = self.sandbox(&r.netns) else {
            return Ok(());
        };
        let msg = match Family::of(&r.gateway) {
            Family::V4 => RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            Family::V6 => RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        };
        match h.route().del(msg).execute().await {
            Err(e) if !netlink::is_gone(&e) => {
                Err(kernel(&format!("delete route in sandbox {}", r.sandbox))(e))
            }
            _ => Ok(()),
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

/// Deletes of one kind run before creates; kinds keep their order.
fn step_key(a: &Action) -> (bool, u8) {
    (a.op == Op::Delete, a.resource.rank())
}

fn write_sysctl(s: &crate::model::SysctlRes) -> R {
    let path = format!("/proc/sys/{}", s.key);
    std::fs::write(&path, &s.value).map_err(io(format!("cannot set {path}")))
}

fn write_file(f: &FileRes) -> R {
    files::write_atomic(std::path::Path::new(&f.path), &f.content)
        .map_err(io(format!("cannot write {}", f.path)))
}

async fn index_of(h: &Handle, name: &str) -> Result<u32, rtnetlink::Error> {
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

async fn delete_link(h: &Handle, name: &str) -> Result<(), rtnetlink::Error> {
    match h
        .link()
        .del_with_message(LinkUnspec::new_with_name(name).build())
        .execute()
        .await
    {
        Err(e) if !netlink::is_gone(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Bring a link's addresses from `old` to `new`: removals first (an address
/// may move between links), then additions, IPv6 without duplicate address
/// detection (the file already guarantees uniqueness).
async fn sync_addrs(
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
        req.execute()
    });
    join_all(adds).await.into_iter().collect()
}
