//! A simulated kernel for the property test: the namespaces, links,
//! addresses and routes cnm's bridge- and ipvlan-network plans touch (the
//! machines this project's CI runs on have no ipvlan), with the side
//! effects the real kernel has and the engine must live with:
//!
//! - deleting a namespace deletes its interfaces, and a veth's peer with
//!   them (a host end in the host namespace);
//! - deleting either end of a veth deletes the other;
//! - deleting a bridge detaches its ports (they stay, without a master);
//! - deleting a link deletes the routes through it;
//! - an interface left without IPv4 addresses loses its IPv4 routes;
//! - taking an interface down drops its IPv4 routes and IPv6 addresses;
//! - bringing loopback up gives it 127.0.0.1/8 and ::1/128.
//!
//! Plans are applied action by action, as the executor does; what is not a
//! netlink object (files, firewall tables, sysctls) is kept as planned.
//! The simulated view is read back through cnm's own (pure) classifier,
//! so the second plan sees exactly what observe would.

#![allow(dead_code)]

use cnm::drivers::Registry;
use cnm::model::{EndpointRes, FirewallRes, LinkRes, Observed, RouteRes, State};
use cnm::naming::{self, MarkKind};
use cnm::observe::classify::{self, Inputs, TempLinks};
use cnm::observe::kernel::{KernelView, Link, NsView, Route};
use cnm::plan::{Op, Plan, Resource};
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, BTreeSet};

/// Where a link lives: the host (`None`) or a named namespace.
type Ns = Option<String>;

#[derive(Debug, Default, Clone)]
pub struct Sim {
    pub topology: String,
    host: NsView,
    namespaces: BTreeMap<String, NsView>,
    /// veth peers, both ways: (namespace, index).
    peers: BTreeMap<(Ns, u32), (Ns, u32)>,
    next_index: u32,
    files: BTreeMap<String, cnm::model::FileRes>,
    firewall: Option<FirewallRes>,
    resolver: Option<cnm::model::ResolverRes>,
    sysctls: BTreeMap<String, cnm::model::SysctlRes>,
}

fn v4(a: &IpNetwork) -> bool {
    a.is_ipv4()
}

impl Sim {
    pub fn new(topology: &str) -> Sim {
        let mut s = Sim {
            topology: topology.to_string(),
            next_index: 1,
            ..Sim::default()
        };
        let lo = s.link("lo", "loopback");
        s.host.table.links.insert(lo.index, lo);
        s
    }

    fn link(&mut self, name: &str, kind: &str) -> Link {
        let index = self.next_index;
        self.next_index += 1;
        Link {
            index,
            name: name.to_string(),
            alias: None,
            kind: (kind != "loopback").then(|| kind.to_string()),
            mtu: 1500,
            up: false,
            carrier: false,
            master: None,
            mac: None,
            hairpin: false,
            info: Vec::new(),
            lower: None,
            lower_elsewhere: false,
        }
    }

    fn ns_mut(&mut self, ns: &Ns) -> &mut NsView {
        match ns {
            None => &mut self.host,
            Some(n) => self
                .namespaces
                .get_mut(n)
                .unwrap_or_else(|| panic!("namespace {n} does not exist")),
        }
    }

    fn ns(&self, ns: &Ns) -> Option<&NsView> {
        match ns {
            None => Some(&self.host),
            Some(n) => self.namespaces.get(n),
        }
    }

    fn index_of(&self, ns: &Ns, name: &str) -> Option<u32> {
        self.ns(ns)?
            .table
            .links
            .values()
            .find(|l| l.name == name)
            .map(|l| l.index)
    }

    fn require(&self, ns: &Ns, name: &str) -> u32 {
        self.index_of(ns, name)
            .unwrap_or_else(|| panic!("no link {name} in {ns:?}: the real kernel would fail here"))
    }

    /// The view cnm's observe reads, classified as observe would.
    pub fn observe(&self, reg: &Registry) -> Observed {
        let view = KernelView {
            host: self.host.clone(),
            names: self.namespaces.keys().cloned().collect(),
            candidates: self
                .namespaces
                .iter()
                .map(|(n, v)| cnm::observe::kernel::Candidate {
                    netns: n.clone(),
                    ino: 1,
                    view: v.clone(),
                })
                .collect(),
            ..KernelView::default()
        };
        let inputs = Inputs {
            topology: &self.topology,
            reg,
            records: &BTreeMap::new(),
            temp: &TempLinks::default(),
            journaled: &BTreeSet::new(),
        };
        let c = classify::kernel(&inputs, view);
        let mut state = c.state;
        state.files = self.files.clone();
        state.resolver = self.resolver.clone();
        state.firewall = self.firewall.clone();
        state.sysctls = self.sysctls.clone();
        Observed {
            state,
            host: c.facts,
        }
    }

    /// Apply a plan's actions in order, as the executor does.
    pub fn apply(&mut self, plan: &Plan) {
        for a in &plan.actions {
            match a.op {
                Op::Create => self.create(&a.resource),
                Op::Delete => self.remove(&a.resource),
                Op::Replace => {
                    self.remove(a.before.as_ref().unwrap_or(&a.resource));
                    self.create(&a.resource);
                }
                Op::Update => self.update(a.before.as_ref().unwrap_or(&a.resource), &a.resource),
            }
        }
    }

    fn create(&mut self, r: &Resource) {
        match r {
            Resource::Namespace(n) => {
                let mut lo = self.link("lo", "loopback");
                lo.alias = Some(naming::mark(&self.topology, MarkKind::Sandbox, &n.sandbox));
                let idx = lo.index;
                let mut v = NsView::default();
                v.table.links.insert(idx, lo);
                self.namespaces.insert(n.netns.clone(), v);
                let ns = Some(n.netns.clone());
                if n.lo_up {
                    self.set_up(&ns, idx, true);
                }
                self.sync_addrs(&ns, idx, &n.lo_addrs);
            }
            Resource::Link(l) => self.create_link(l),
            Resource::Endpoint(e) => self.create_endpoint(e),
            Resource::Route(rt) => self.set_route(rt),
            Resource::File(f) => {
                self.files.insert(f.path.clone(), f.clone());
            }
            Resource::Firewall(f) => {
                self.firewall = Some(FirewallRes {
                    intact: true,
                    ..f.clone()
                })
            }
            Resource::Sysctl(s) => {
                self.sysctls.insert(s.key.clone(), s.clone());
            }
            Resource::Fdb(_) | Resource::Neigh(_) => panic!("the simulation has no tunnels"),
            Resource::Plugin(_) => panic!("the simulation has no plugins"),
            Resource::Stray(_) => {}
            // The resolver serves what it was given.
            Resource::Resolver(r) => self.resolver = Some(r.clone()),
            Resource::Dns(d) => self.set_dns(d),
        }
    }

    /// The sandbox's `cnm-dns` table, as cnm writes it.
    fn set_dns(&mut self, d: &cnm::model::DnsRes) {
        let mark = naming::mark(&self.topology, MarkKind::Sandbox, &d.sandbox);
        if let Some(v) = self.namespaces.get_mut(&d.netns) {
            v.dns = Some(cnm::resolver::redirect::Found {
                mark: Some(mark),
                port: Some(d.port),
                intact: true,
            });
        }
    }

    fn remove(&mut self, r: &Resource) {
        match r {
            Resource::Namespace(n) => {
                if let Some(v) = self.namespaces.remove(&n.netns) {
                    let ns = Some(n.netns.clone());
                    for idx in v.table.links.keys() {
                        if let Some((pns, pidx)) = self.peers.remove(&(ns.clone(), *idx)) {
                            self.peers.remove(&(pns.clone(), pidx));
                            self.delete_link(&pns, pidx);
                        }
                    }
                }
            }
            Resource::Link(l) => {
                if let Some(idx) = self.index_of(&None, &l.ifname) {
                    self.delete_link(&None, idx);
                }
            }
            Resource::Endpoint(e) => {
                let ns = Some(e.netns.clone());
                match (&e.host, self.index_of(&ns, &e.ifname)) {
                    (_, Some(idx)) => self.delete_link(&ns, idx),
                    (Some(h), None) => {
                        if let Some(idx) = self.index_of(&None, &h.ifname) {
                            self.delete_link(&None, idx);
                        }
                    }
                    (None, None) => {}
                }
            }
            Resource::Route(rt) => {
                let ns = Some(rt.netns.clone());
                if self.namespaces.contains_key(&rt.netns) {
                    self.ns_mut(&ns)
                        .routes
                        .retain(|r| r.dst != rt.dst || r.by_kernel);
                }
            }
            Resource::File(f) => {
                self.files.remove(&f.path);
            }
            Resource::Firewall(_) => self.firewall = None,
            Resource::Sysctl(_) => {}
            Resource::Fdb(_) | Resource::Neigh(_) | Resource::Stray(_) | Resource::Plugin(_) => {}
            Resource::Resolver(_) => self.resolver = None,
            Resource::Dns(d) => {
                if let Some(v) = self.namespaces.get_mut(&d.netns) {
                    v.dns = None;
                }
            }
        }
    }

    fn update(&mut self, old: &Resource, new: &Resource) {
        match (old, new) {
            (Resource::Namespace(_), Resource::Namespace(n)) => {
                let ns = Some(n.netns.clone());
                let lo = self.require(&ns, "lo");
                if n.lo_up {
                    self.set_up(&ns, lo, true);
                }
                self.sync_addrs(&ns, lo, &n.lo_addrs);
            }
            (Resource::Link(_), Resource::Link(l)) => {
                let idx = self.require(&None, &l.ifname);
                let master = (!l.master.is_empty()).then(|| self.require(&None, &l.master));
                let link = self.host.table.links.get_mut(&idx).expect("link");
                link.mtu = l.mtu;
                if master.is_some() {
                    link.master = master;
                }
                if l.up {
                    self.set_up(&None, idx, true);
                }
                self.sync_addrs(&None, idx, &l.addrs);
            }
            (Resource::Endpoint(o), Resource::Endpoint(e)) => self.update_endpoint(o, e),
            (Resource::Route(_), Resource::Route(rt)) => self.set_route(rt),
            (_, other) => self.create(other),
        }
    }

    fn create_link(&mut self, l: &LinkRes) {
        assert_eq!(l.kind, "bridge", "the simulation makes bridges only");
        assert!(
            self.index_of(&None, &l.ifname).is_none(),
            "{} exists: the real kernel would refuse",
            l.ifname
        );
        let mut link = self.link(&l.ifname, "bridge");
        link.alias = Some(naming::mark(&self.topology, l.role, &l.network));
        link.mtu = l.mtu;
        let idx = link.index;
        self.host.table.links.insert(idx, link);
        if l.up {
            self.set_up(&None, idx, true);
        }
        self.sync_addrs(&None, idx, &l.addrs);
    }

    /// A host interface cnm does not own (a parent for ipvlan), up.
    pub fn add_host_link(&mut self, name: &str, mac: [u8; 6]) {
        let mut l = self.link(name, "veth");
        l.mac = Some(mac);
        let idx = l.index;
        self.host.table.links.insert(idx, l);
        self.set_up(&None, idx, true);
    }

    /// An ipvlan endpoint: born in its sandbox on its parent, with the
    /// parent's MAC and the mode and flag its settings ask for (what the
    /// kernel reports back in the link's info).
    fn create_ipvlan(&mut self, e: &EndpointRes) {
        use netlink_packet_route::link::{
            InfoData, InfoIpVlan, InfoKind, IpVlanFlags, IpVlanMode, LinkInfo,
        };
        let setting = |k: &str| {
            e.settings
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let parent = self.require(&None, &setting("parent"));
        let mode = match setting("mode").as_str() {
            "l3" => IpVlanMode::L3,
            "l3s" => IpVlanMode::L3S,
            _ => IpVlanMode::L2,
        };
        let flags = match setting("flag").as_str() {
            "private" => IpVlanFlags::Private,
            "vepa" => IpVlanFlags::Vepa,
            _ => IpVlanFlags::empty(),
        };
        let ns = Some(e.netns.clone());
        let mut child = self.link(&e.ifname, "ipvlan");
        child.alias = Some(naming::mark(
            &self.topology,
            MarkKind::Endpoint,
            &e.endpoint,
        ));
        child.mtu = e.mtu;
        child.mac = self.host.table.links[&parent].mac;
        child.lower = Some(parent);
        child.lower_elsewhere = true;
        child.info = vec![
            LinkInfo::Kind(InfoKind::IpVlan),
            LinkInfo::Data(InfoData::IpVlan(vec![
                InfoIpVlan::Mode(mode),
                InfoIpVlan::Flags(flags),
            ])),
        ];
        let idx = child.index;
        self.ns_mut(&ns).table.links.insert(idx, child);
        self.set_up(&ns, idx, e.up);
        self.sync_addrs(&ns, idx, &e.addrs);
    }

    fn create_endpoint(&mut self, e: &EndpointRes) {
        if e.kind == "ipvlan" {
            return self.create_ipvlan(e);
        }
        assert_eq!(
            e.kind, "veth",
            "the simulation makes veth and ipvlan endpoints only"
        );
        let h = e.host.as_ref().expect("a veth endpoint has a host end");
        let ns = Some(e.netns.clone());
        assert!(
            self.namespaces.contains_key(&e.netns),
            "namespace {} missing",
            e.netns
        );
        let master = self.require(&None, &h.master);
        let mark = naming::mark(&self.topology, MarkKind::Endpoint, &e.endpoint);
        let mut host_end = self.link(&h.ifname, "veth");
        host_end.alias = Some(mark.clone());
        host_end.mtu = e.mtu;
        host_end.master = Some(master);
        host_end.hairpin = h.hairpin;
        let mut inner = self.link(&e.ifname, "veth");
        inner.alias = Some(mark);
        inner.mtu = e.mtu;
        inner.mac = e.mac;
        let (hi, ii) = (host_end.index, inner.index);
        self.host.table.links.insert(hi, host_end);
        self.ns_mut(&ns).table.links.insert(ii, inner);
        self.peers.insert((None, hi), (ns.clone(), ii));
        self.peers.insert((ns.clone(), ii), (None, hi));
        self.set_up(&None, hi, true);
        self.set_up(&ns, ii, e.up);
        self.sync_addrs(&ns, ii, &e.addrs);
    }

    /// As `update_endpoint`: the host end's MTU, master, hairpin and state;
    /// the sandbox end's MAC (down and up again), MTU, state, addresses.
    fn update_endpoint(&mut self, o: &EndpointRes, e: &EndpointRes) {
        if let Some(h) = &e.host {
            let idx = self.require(&None, &h.ifname);
            let master = self.require(&None, &h.master);
            let l = self.host.table.links.get_mut(&idx).expect("host end");
            l.mtu = e.mtu;
            l.master = Some(master);
            l.hairpin = h.hairpin;
            self.set_up(&None, idx, true);
        }
        let ns = Some(e.netns.clone());
        let idx = self.require(&ns, &e.ifname);
        let bounced = e.mac.is_some() && o.mac != e.mac;
        if bounced {
            self.set_up(&ns, idx, false);
            self.ns_mut(&ns)
                .table
                .links
                .get_mut(&idx)
                .expect("iface")
                .mac = e.mac;
        }
        self.ns_mut(&ns)
            .table
            .links
            .get_mut(&idx)
            .expect("iface")
            .mtu = e.mtu;
        self.set_up(&ns, idx, true);
        self.sync_addrs(&ns, idx, &e.addrs);
    }

    fn set_route(&mut self, rt: &RouteRes) {
        let ns = Some(rt.netns.clone());
        let oif = self.require(&ns, &rt.dev);
        let v = self.ns_mut(&ns);
        let reachable = rt.gateway.is_none_or(|g| {
            v.table
                .addrs_of(oif)
                .iter()
                .any(|a| a.contains(g) && a.is_ipv4() == g.is_ipv4())
        });
        assert!(
            reachable,
            "route {} via {:?}: the gateway is not on {}: the real kernel would refuse",
            rt.dst, rt.gateway, rt.dev
        );
        v.routes.retain(|r| r.dst != rt.dst || r.by_kernel);
        v.routes.push(Route {
            dst: rt.dst,
            gateway: rt.gateway,
            oif: Some(oif),
            by_kernel: false,
        });
    }

    fn set_up(&mut self, ns: &Ns, idx: u32, up: bool) {
        let v = self.ns_mut(ns);
        let l = v.table.links.get_mut(&idx).expect("link");
        let was = l.up;
        l.up = up;
        l.carrier = up;
        let is_lo = l.name == "lo";
        if up && !was && is_lo {
            let addrs = v.table.addrs.entry(idx).or_default();
            addrs.insert("127.0.0.1/8".parse().expect("prefix"));
            addrs.insert("::1/128".parse().expect("prefix"));
        }
        if !up && was {
            // Down: IPv4 routes through it go, and its IPv6 addresses.
            v.routes
                .retain(|r| r.oif != Some(idx) || !r.dst.is_ipv4() || r.by_kernel);
            if let Some(a) = v.table.addrs.get_mut(&idx) {
                a.retain(v4);
            }
        }
    }

    /// Addresses to exactly `want`, deletions first (as `sync_addrs`); an
    /// interface whose last IPv4 address goes loses its IPv4 routes.
    fn sync_addrs(&mut self, ns: &Ns, idx: u32, want: &BTreeSet<IpNetwork>) {
        let v = self.ns_mut(ns);
        let have = v.table.addrs.entry(idx).or_default();
        let lost_v4 = have.iter().any(|a| a.is_ipv4() && !want.contains(a));
        have.retain(|a| want.contains(a));
        if lost_v4 && !have.iter().any(v4) {
            v.routes
                .retain(|r| r.oif != Some(idx) || !r.dst.is_ipv4() || r.by_kernel);
        }
        let have = v.table.addrs.entry(idx).or_default();
        have.extend(want.iter().copied());
    }

    fn delete_link(&mut self, ns: &Ns, idx: u32) {
        let Some(v) = self.ns(ns) else {
            return;
        };
        if !v.table.links.contains_key(&idx) {
            return;
        }
        let v = self.ns_mut(ns);
        v.table.links.remove(&idx);
        v.table.addrs.remove(&idx);
        v.routes.retain(|r| r.oif != Some(idx));
        // A bridge's ports stay, detached.
        for l in v.table.links.values_mut() {
            if l.master == Some(idx) {
                l.master = None;
            }
        }
        if let Some((pns, pidx)) = self.peers.remove(&(ns.clone(), idx)) {
            self.peers.remove(&(pns.clone(), pidx));
            self.delete_link(&pns, pidx);
        }
    }

    /// Links, endpoints, routes and namespaces of a state: what the replay
    /// compares with the real kernel.
    /// (Namespace identities are the kernel's and left out.)
    pub fn network_part(s: &State) -> String {
        let namespaces: Vec<_> = s
            .namespaces
            .values()
            .map(|n| (&n.sandbox, &n.netns, n.lo_up, &n.lo_addrs))
            .collect();
        // The driver of an observed endpoint comes from the records, which
        // the simulation does not keep.
        let endpoints: std::collections::BTreeMap<_, _> = s
            .endpoints
            .iter()
            .map(|(k, e)| {
                let mut e = e.clone();
                e.driver.clear();
                (k.clone(), e)
            })
            .collect();
        format!(
            "{namespaces:#?}\n{:#?}\n{:#?}\n{:#?}",
            s.links, endpoints, s.routes
        )
    }
}
