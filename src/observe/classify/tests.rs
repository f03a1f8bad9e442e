//! Classification of hand-built kernel views: ownership of namespaces (mark
//! under the derived name, or a record with the same inode), links of
//! networks, endpoints from both ends, strays under journaled temporary
//! names, routes, host facts, FDB and neighbour entries. Pure.

use super::{kernel, Classified, Inputs, TempLinks};
use crate::drivers::Registry;
use crate::model::{default_dst, Family, HostEnd, StrayKind};
use crate::naming::{self, MarkKind};
use crate::observe::kernel::{Candidate, Entry, KernelView, Link, NsView, Route};
use crate::store::safe::FileId;
use crate::store::NsRecord;
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, BTreeSet};

const T: &str = "t";

/// What classification reads besides the view.
#[derive(Default)]
struct Fixture {
    records: BTreeMap<String, NsRecord>,
    temp: TempLinks,
    journaled: BTreeSet<String>,
}

impl Fixture {
    fn run(&self, view: KernelView) -> Classified {
        self.run_as(T, view)
    }

    fn run_as(&self, topology: &str, view: KernelView) -> Classified {
        let inp = Inputs {
            topology,
            reg: Registry::builtin(),
            records: &self.records,
            temp: &self.temp,
            journaled: &self.journaled,
        };
        kernel(&inp, view)
    }
}

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn net(s: &str) -> TestResult<IpNetwork> {
    Ok(s.parse()?)
}

fn link(index: u32, name: &str, kind: Option<&str>, alias: Option<String>) -> Link {
    Link {
        index,
        name: name.to_string(),
        alias,
        kind: kind.map(str::to_string),
        mtu: 1500,
        up: true,
        master: None,
        mac: None,
        hairpin: false,
        info: Vec::new(),
        lower: None,
        lower_elsewhere: false,
    }
}

fn mark(kind: MarkKind, name: &str) -> Option<String> {
    Some(naming::mark(T, kind, name))
}

fn add(view: &mut NsView, l: Link, addrs: &[&str]) -> TestResult {
    if !addrs.is_empty() {
        let addrs = addrs.iter().map(|a| net(a)).collect::<TestResult<_>>()?;
        view.table.addrs.insert(l.index, addrs);
    }
    view.table.links.insert(l.index, l);
    Ok(())
}

/// A namespace whose loopback carries `lo_alias`.
fn ns_with_lo(lo_alias: Option<String>) -> TestResult<NsView> {
    let mut v = NsView::default();
    add(
        &mut v,
        link(1, "lo", None, lo_alias),
        &["127.0.0.1/8", "::1/128"],
    )?;
    Ok(v)
}

fn candidate(netns: &str, ino: u64, view: NsView) -> Candidate {
    Candidate {
        netns: netns.to_string(),
        ino,
        view,
    }
}

fn view_with(candidates: Vec<Candidate>) -> KernelView {
    KernelView {
        names: candidates.iter().map(|c| c.netns.clone()).collect(),
        candidates,
        ..KernelView::default()
    }
}

fn record(netns: &str, ino: Option<u64>) -> NsRecord {
    NsRecord {
        version: 1,
        netns: netns.to_string(),
        ino,
    }
}

// ---- namespaces ----

#[test]
fn loopback_mark_owns_the_namespace_under_its_derived_name() -> TestResult {
    let netns = naming::netns_name(T, "alpha");
    let c = Fixture::default().run(view_with(vec![candidate(
        &netns,
        42,
        ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?,
    )]));
    let o = c
        .owned
        .get("alpha")
        .ok_or("alpha is not owned by its mark")?;
    assert_eq!((o.netns.as_str(), o.ino, o.legacy), ("t-alpha", 42, false));
    let ns = &c.state.namespaces["alpha"];
    assert_eq!(ns.netns, "t-alpha");
    assert_eq!(ns.ino, Some(42));
    assert!(ns.lo_up);
    assert_eq!(ns.lo_addrs, crate::model::loopback_addrs());
    assert!(c.facts.owned_netns.contains("t-alpha"));
    assert!(c.facts.netns.contains("t-alpha"));
    Ok(())
}

#[test]
fn a_mark_under_another_name_does_not_own() -> TestResult {
    // The mark says sandbox alpha, whose namespace is t-alpha: a namespace
    // of any other name carrying it (a copy, a rename) is not alpha's.
    let c = Fixture::default().run(view_with(vec![
        candidate("t-beta", 1, ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?),
        candidate("alpha", 2, ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?),
    ]));
    assert!(c.owned.is_empty(), "{:?}", c.owned.keys());
    assert!(c.state.namespaces.is_empty());
    assert!(c.facts.owned_netns.is_empty());
    // Both names are still known to exist (so a plan cannot take them).
    assert!(c.facts.netns.contains("t-beta") && c.facts.netns.contains("alpha"));
    Ok(())
}

#[test]
fn a_loopback_mark_of_another_kind_does_not_own() -> TestResult {
    let c = Fixture::default().run(view_with(vec![candidate(
        "t-alpha",
        1,
        ns_with_lo(mark(MarkKind::Endpoint, "alpha"))?,
    )]));
    assert!(c.owned.is_empty());
    Ok(())
}

#[test]
fn the_right_name_alone_does_not_own() -> TestResult {
    let c = Fixture::default().run(view_with(vec![candidate("t-alpha", 9, ns_with_lo(None)?)]));
    assert!(c.owned.is_empty());
    assert!(c.state.namespaces.is_empty());
    assert!(!c.facts.owned_netns.contains("t-alpha"));
    assert!(c.facts.netns.contains("t-alpha"));
    Ok(())
}

#[test]
fn a_record_owns_only_the_namespace_with_its_inode() -> TestResult {
    let mut f = Fixture::default();
    f.records.insert("alpha".into(), record("t-alpha", Some(7)));
    let same = f.run(view_with(vec![candidate("t-alpha", 7, ns_with_lo(None)?)]));
    let o = same
        .owned
        .get("alpha")
        .ok_or("the recorded inode does not own alpha")?;
    assert!(!o.legacy);
    assert_eq!(same.state.namespaces["alpha"].ino, Some(7));

    // The same name, another namespace (deleted and made again by someone).
    let other = f.run(view_with(vec![candidate("t-alpha", 8, ns_with_lo(None)?)]));
    assert!(other.owned.is_empty());
    assert!(other.state.namespaces.is_empty());
    Ok(())
}

#[test]
fn a_record_without_inode_owns_as_legacy() -> TestResult {
    let mut f = Fixture::default();
    f.records.insert("alpha".into(), record("t-alpha", None));
    let c = f.run(view_with(vec![candidate("t-alpha", 3, ns_with_lo(None)?)]));
    assert!(c.owned["alpha"].legacy);
    Ok(())
}

#[test]
fn a_mark_wins_over_a_stale_record() -> TestResult {
    // The record names another inode, the loopback mark is there: owned
    // through the mark.
    let mut f = Fixture::default();
    f.records
        .insert("alpha".into(), record("t-alpha", Some(100)));
    let c = f.run(view_with(vec![candidate(
        "t-alpha",
        5,
        ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?,
    )]));
    let o = &c.owned["alpha"];
    assert_eq!((o.ino, o.legacy), (5, false));
    Ok(())
}

#[test]
fn journaled_placeholders_are_stray_mount_points() -> TestResult {
    let mut f = Fixture::default();
    f.journaled.insert("t-beta".into());
    let id = FileId { dev: 1, ino: 77 };
    let mut view = KernelView::default();
    view.placeholders.insert("t-beta".into(), id);
    view.placeholders
        .insert("t-gamma".into(), FileId { dev: 1, ino: 78 });
    let c = f.run(view);
    assert_eq!(
        c.state.strays["t-beta"].what,
        StrayKind::Mountpoint {
            netns: "t-beta".into(),
            id: Some(id)
        }
    );
    // Not journaled: someone else's empty file, left alone.
    assert!(!c.state.strays.contains_key("t-gamma"));
    assert!(c.facts.owned_netns.contains("t-beta"));
    assert!(!c.facts.owned_netns.contains("t-gamma"));
    Ok(())
}

// ---- links ----

#[test]
fn a_marked_bridge_is_the_networks_link() -> TestResult {
    let mut view = KernelView::default();
    let mut br = link(
        10,
        "br-t-lan",
        Some("bridge"),
        mark(MarkKind::Network, "lan"),
    );
    br.mtu = 1400;
    add(&mut view.host, br, &["10.88.0.1/24", "fd00:88::1/64"])?;
    add(&mut view.host, link(2, "eth0", Some("veth"), None), &[])?;
    let c = Fixture::default().run(view);
    assert_eq!(c.state.links.len(), 1, "{:?}", c.state.links.keys());
    let l = &c.state.links[&("lan".to_string(), MarkKind::Network)];
    assert_eq!(l.network, "lan");
    assert_eq!(l.role, MarkKind::Network);
    assert_eq!(l.ifname, "br-t-lan");
    assert_eq!(l.kind, "bridge");
    assert_eq!(l.mtu, 1400);
    assert!(l.up);
    assert_eq!(l.master, "");
    assert_eq!(
        l.addrs,
        [net("10.88.0.1/24")?, net("fd00:88::1/64")?]
            .into_iter()
            .collect()
    );
    Ok(())
}

#[test]
fn a_link_names_its_master() -> TestResult {
    // An overlay's tunnel device is a port of the network's bridge.
    let mut view = KernelView::default();
    add(
        &mut view.host,
        link(10, "br-t-ov", Some("bridge"), mark(MarkKind::Network, "ov")),
        &[],
    )?;
    let mut vx = link(11, "vx-t-ov", Some("vxlan"), mark(MarkKind::Vtep, "ov"));
    vx.master = Some(10);
    vx.mtu = 1450;
    vx.up = false;
    add(&mut view.host, vx, &[])?;
    let c = Fixture::default().run(view);
    let v = &c.state.links[&("ov".to_string(), MarkKind::Vtep)];
    assert_eq!(v.master, "br-t-ov");
    assert_eq!((v.kind.as_str(), v.mtu, v.up), ("vxlan", 1450, false));
    assert_eq!(v.role, MarkKind::Vtep);
    assert_eq!(
        c.state.links[&("ov".to_string(), MarkKind::Network)].master,
        ""
    );
    Ok(())
}

/// Host: bridge br-t-lan (10) and the host end (11) of alpha-lan; sandbox
/// t-alpha: loopback (marked) and eth0 (marked as the endpoint).
fn endpoint_view() -> TestResult<KernelView> {
    let mut view = KernelView::default();
    add(
        &mut view.host,
        link(
            10,
            "br-t-lan",
            Some("bridge"),
            mark(MarkKind::Network, "lan"),
        ),
        &["10.88.0.1/24"],
    )?;
    let host_end = naming::host_veth_name(T, "alpha-lan");
    let mut h = link(
        11,
        &host_end,
        Some("veth"),
        mark(MarkKind::Endpoint, "alpha-lan"),
    );
    h.master = Some(10);
    h.hairpin = true;
    add(&mut view.host, h, &[])?;
    let mut ns = ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?;
    let mut eth0 = link(
        2,
        "eth0",
        Some("veth"),
        mark(MarkKind::Endpoint, "alpha-lan"),
    );
    eth0.mac = Some([0x02, 0x42, 10, 88, 0, 2]);
    add(&mut ns, eth0, &["10.88.0.2/24"])?;
    view.names.insert("t-alpha".into());
    view.candidates.push(candidate("t-alpha", 1, ns));
    Ok(view)
}

#[test]
fn both_ends_of_a_veth_are_one_endpoint() -> TestResult {
    let c = Fixture::default().run(endpoint_view()?);
    assert_eq!(c.state.endpoints.len(), 1, "{:?}", c.state.endpoints.keys());
    let e = &c.state.endpoints["alpha-lan"];
    assert_eq!(e.endpoint, "alpha-lan");
    assert_eq!(e.network, "lan", "the network comes from the bridge");
    assert_eq!((e.sandbox.as_str(), e.netns.as_str()), ("alpha", "t-alpha"));
    assert_eq!((e.kind.as_str(), e.ifname.as_str()), ("veth", "eth0"));
    assert_eq!(e.mac, Some([0x02, 0x42, 10, 88, 0, 2]));
    assert_eq!(e.addrs, [net("10.88.0.2/24")?].into_iter().collect());
    assert_eq!(e.mtu, 1500);
    assert!(e.up);
    assert_eq!(
        e.host,
        Some(HostEnd {
            ifname: naming::host_veth_name(T, "alpha-lan"),
            master: "br-t-lan".into(),
            hairpin: true,
        })
    );
    // The host end is no link of a network.
    assert_eq!(c.state.links.len(), 1);
    Ok(())
}

#[test]
fn an_endpoint_is_as_small_and_as_down_as_its_weakest_end() -> TestResult {
    let mut view = endpoint_view()?;
    let h = view
        .host
        .table
        .links
        .get_mut(&11)
        .ok_or("no link 11 in the view")?;
    h.mtu = 1400;
    h.up = false;
    let c = Fixture::default().run(view);
    let e = &c.state.endpoints["alpha-lan"];
    assert_eq!(e.mtu, 1400);
    assert!(!e.up);
    Ok(())
}

#[test]
fn a_host_end_without_its_sandbox_end_is_an_endpoint_without_sandbox() -> TestResult {
    let mut view = endpoint_view()?;
    view.candidates.clear();
    let c = Fixture::default().run(view);
    let e = &c.state.endpoints["alpha-lan"];
    assert_eq!((e.netns.as_str(), e.ifname.as_str()), ("", ""));
    assert_eq!(e.network, "lan");
    assert_eq!(e.host.as_ref().map(|h| h.master.as_str()), Some("br-t-lan"));
    Ok(())
}

#[test]
fn a_host_end_off_any_bridge_has_no_network() -> TestResult {
    let mut view = endpoint_view()?;
    view.host
        .table
        .links
        .get_mut(&11)
        .ok_or("no link 11 in the view")?
        .master = None;
    let c = Fixture::default().run(view);
    let e = &c.state.endpoints["alpha-lan"];
    assert_eq!(e.network, "");
    assert_eq!(e.host.as_ref().map(|h| h.master.as_str()), Some(""));
    Ok(())
}

#[test]
fn links_under_journaled_temporary_names_are_strays() -> TestResult {
    let mut view = endpoint_view()?;
    let m = naming::mark(T, MarkKind::Network, "db");
    add(
        &mut view.host,
        link(20, "cnt0123456789ab", Some("bridge"), Some(m.clone())),
        &["10.99.0.1/24"],
    )?;
    view.host.routes.push(Route {
        dst: net("10.99.0.0/24")?,
        gateway: None,
        oif: Some(20),
        by_kernel: true,
    });
    let inside_mark = naming::mark(T, MarkKind::Endpoint, "alpha-db");
    add(
        &mut view.candidates[0].view,
        link(
            3,
            "cntfedcba987654",
            Some("veth"),
            Some(inside_mark.clone()),
        ),
        &[],
    )?;
    let mut f = Fixture::default();
    f.temp.host.insert("cnt0123456789ab".into(), m.clone());
    f.temp.inside.insert(
        ("t-alpha".into(), "cntfedcba987654".into()),
        inside_mark.clone(),
    );
    let c = f.run(view);
    assert_eq!(
        c.state.strays["cnt0123456789ab"].what,
        StrayKind::Link {
            ifname: "cnt0123456789ab".into(),
            mark: m,
            netns: None
        }
    );
    assert_eq!(
        c.state.strays["t-alpha/cntfedcba987654"].what,
        StrayKind::Link {
            ifname: "cntfedcba987654".into(),
            mark: inside_mark,
            netns: Some("t-alpha".into())
        }
    );
    // Neither is a link of network db nor endpoint alpha-db.
    assert!(!c
        .state
        .links
        .contains_key(&("db".to_string(), MarkKind::Network)));
    assert!(!c.state.endpoints.contains_key("alpha-db"));
    assert_eq!(c.state.endpoints.len(), 1);
    // Nor is its route something a new subnet must avoid.
    assert!(!c.facts.routed.contains(&net("10.99.0.0/24")?));
    Ok(())
}

#[test]
fn another_topologys_marks_are_ignored() -> TestResult {
    let mut view = KernelView::default();
    add(
        &mut view.host,
        link(
            10,
            "br-u-lan",
            Some("bridge"),
            Some(naming::mark("u", MarkKind::Network, "lan")),
        ),
        &["10.77.0.1/24"],
    )?;
    add(
        &mut view.host,
        link(
            11,
            "ve-u",
            Some("veth"),
            Some(naming::mark("u", MarkKind::Endpoint, "alpha-lan")),
        ),
        &[],
    )?;
    view.host
        .table
        .links
        .get_mut(&11)
        .ok_or("no link 11 in the view")?
        .master = Some(10);
    add(
        &mut view.host,
        link(
            12,
            "vx-u-ov",
            Some("vxlan"),
            Some(naming::mark("u", MarkKind::Vtep, "ov")),
        ),
        &[],
    )?;
    view.host.routes.push(Route {
        dst: net("10.77.0.0/24")?,
        gateway: None,
        oif: Some(10),
        by_kernel: true,
    });
    view.fdb.push(Entry {
        ifindex: 12,
        mac: [0; 6],
        ip: "192.0.2.2".parse()?,
        own: true,
        permanent: true,
    });
    // u's sandbox alpha, under both u's name for it and t's.
    let u_lo = || ns_with_lo(Some(naming::mark("u", MarkKind::Sandbox, "alpha")));
    view.candidates.push(candidate("u-alpha", 1, u_lo()?));
    view.candidates.push(candidate("t-alpha", 2, u_lo()?));
    let c = Fixture::default().run(view.clone());
    assert!(c.owned.is_empty());
    assert!(c.state.links.is_empty());
    assert!(c.state.endpoints.is_empty());
    assert!(c.state.fdb.is_empty());
    assert!(c.state.owns_nothing());
    // Its subnet is routed on the host: t's pools must avoid it.
    assert!(c.facts.routed.contains(&net("10.77.0.0/24")?));
    // The same view, seen as topology u: all of it is u's.
    let u = Fixture::default().run_as("u", view);
    assert_eq!(u.owned.keys().collect::<Vec<_>>(), ["alpha"]);
    assert_eq!(u.owned["alpha"].netns, "u-alpha");
    assert_eq!(u.state.links.len(), 2);
    assert_eq!(u.state.endpoints["alpha-lan"].network, "lan");
    assert_eq!(u.state.fdb.len(), 1);
    assert!(!u.facts.routed.contains(&net("10.77.0.0/24")?));
    Ok(())
}

#[test]
fn host_facts_list_every_link() -> TestResult {
    let mut view = KernelView::default();
    let mut eth0 = link(2, "eth0", Some("veth"), None);
    eth0.mtu = 9000;
    add(&mut view.host, eth0, &["192.0.2.10/24"])?;
    add(
        &mut view.host,
        link(
            10,
            "br-t-lan",
            Some("bridge"),
            mark(MarkKind::Network, "lan"),
        ),
        &["10.88.0.1/24"],
    )?;
    let c = Fixture::default().run(view);
    assert_eq!(c.facts.links["eth0"], None);
    assert_eq!(
        c.facts.links["br-t-lan"],
        Some(naming::mark(T, MarkKind::Network, "lan"))
    );
    assert_eq!(c.facts.link_mtu["eth0"], 9000);
    let eth0_addr: std::net::IpAddr = "192.0.2.10".parse()?;
    assert_eq!(c.facts.local_addrs[&eth0_addr], ("eth0".to_string(), 9000));
    let bridge_addr: std::net::IpAddr = "10.88.0.1".parse()?;
    assert!(c.facts.local_addrs.contains_key(&bridge_addr));
    Ok(())
}

// ---- routes ----

#[test]
fn sandbox_routes_are_cnms_on_its_interfaces_only() -> TestResult {
    let mut view = endpoint_view()?;
    let ns = &mut view.candidates[0].view;
    // Someone else's interface in the sandbox.
    add(
        ns,
        link(4, "wg0", Some("wireguard"), None),
        &["10.200.0.2/24"],
    )?;
    let r = |dst: &str, gateway: Option<&str>, oif: Option<u32>, by_kernel: bool| {
        Ok(Route {
            dst: net(dst)?,
            gateway: gateway.map(str::parse).transpose()?,
            oif,
            by_kernel,
        })
    };
    ns.routes = [
        // The connected route of eth0: the kernel's.
        r("10.88.0.0/24", None, Some(2), true),
        // cnm's default route.
        r("0.0.0.0/0", Some("10.88.0.1"), Some(2), false),
        // On an interface cnm did not make: not cnm's.
        r("10.201.0.0/16", Some("10.200.0.1"), Some(4), false),
        r("::/0", Some("fd00:200::1"), Some(4), false),
        // IPv6 link-local and multicast on eth0: the kernel's own.
        r("fe80::/64", None, Some(2), false),
        r("ff00::/8", None, Some(2), false),
        r("224.0.0.0/4", None, Some(2), false),
        // No output interface.
        r("10.202.0.0/16", Some("10.88.0.1"), None, false),
    ]
    .into_iter()
    .collect::<TestResult<_>>()?;
    let c = Fixture::default().run(view);
    let keys: Vec<_> = c.state.routes.keys().cloned().collect();
    let default = ("alpha".to_string(), default_dst(Family::V4));
    assert_eq!(keys, vec![default.clone()]);
    let d = &c.state.routes[&default];
    assert_eq!(d.gateway, Some("10.88.0.1".parse()?));
    assert_eq!(d.dev, "eth0");
    assert_eq!((d.sandbox.as_str(), d.netns.as_str()), ("alpha", "t-alpha"));
    assert!(d.is_default());
    Ok(())
}

#[test]
fn routes_on_loopback_are_kept() -> TestResult {
    let mut view = endpoint_view()?;
    view.candidates[0].view.routes.push(Route {
        dst: net("10.123.0.0/16")?,
        gateway: None,
        oif: Some(1),
        by_kernel: false,
    });
    let c = Fixture::default().run(view);
    let r = &c.state.routes[&("alpha".to_string(), net("10.123.0.0/16")?)];
    assert_eq!((r.dev.as_str(), r.gateway), ("lo", None));
    Ok(())
}

#[test]
fn routed_subnets_leave_out_owned_links_and_default_routes() -> TestResult {
    let mut view = endpoint_view()?;
    add(
        &mut view.host,
        link(2, "eth0", Some("veth"), None),
        &["192.0.2.10/24"],
    )?;
    let r = |dst: &str, oif: u32| {
        Ok(Route {
            dst: net(dst)?,
            gateway: None,
            oif: Some(oif),
            by_kernel: true,
        })
    };
    view.host.routes = [
        r("192.0.2.0/24", 2),
        r("198.51.100.0/24", 2),
        r("10.88.0.0/24", 10),
        r("0.0.0.0/0", 2),
        r("::/0", 2),
        r("fe80::/64", 2),
        r("2001:db8::/64", 2),
    ]
    .into_iter()
    .collect::<TestResult<_>>()?;
    let c = Fixture::default().run(view);
    assert_eq!(
        c.facts.routed,
        vec![
            net("192.0.2.0/24")?,
            net("198.51.100.0/24")?,
            net("2001:db8::/64")?
        ]
    );
    Ok(())
}

// ---- FDB and neighbour entries ----

#[test]
fn fdb_and_neighbour_entries_of_a_vtep() -> TestResult {
    let mut view = KernelView::default();
    add(
        &mut view.host,
        link(20, "vx-t-ov", Some("vxlan"), mark(MarkKind::Vtep, "ov")),
        &[],
    )?;
    // A bridge of the topology: marked, but no tunnel device.
    add(
        &mut view.host,
        link(21, "br-t-ov", Some("bridge"), mark(MarkKind::Network, "ov")),
        &[],
    )?;
    add(&mut view.host, link(22, "vxlan0", Some("vxlan"), None), &[])?;
    let e = |ifindex: u32, last: u8, ip: &str, own: bool, permanent: bool| {
        Ok(Entry {
            ifindex,
            mac: [0x02, 0x42, 10, 0, 0, last],
            ip: ip.parse()?,
            own,
            permanent,
        })
    };
    view.fdb = [
        e(20, 2, "192.168.100.12", true, true),
        // In the bridge's table, learned: not the device's own.
        e(20, 3, "192.168.100.13", false, false),
        e(21, 4, "192.168.100.14", true, true),
        e(22, 5, "192.168.100.15", true, true),
    ]
    .into_iter()
    .collect::<TestResult<_>>()?;
    view.neighs = [
        e(20, 2, "10.0.0.2", false, true),
        // Learned (reachable, stale…): not cnm's.
        e(20, 3, "10.0.0.3", true, false),
        e(21, 4, "10.0.0.4", true, true),
        e(22, 5, "10.0.0.5", true, true),
    ]
    .into_iter()
    .collect::<TestResult<_>>()?;
    let c = Fixture::default().run(view);

    assert_eq!(c.state.fdb.len(), 1, "{:?}", c.state.fdb.keys());
    let mac2 = [0x02, 0x42, 10, 0, 0, 2];
    let dst2: std::net::IpAddr = "192.168.100.12".parse()?;
    let f = &c.state.fdb[&("ov".to_string(), mac2, dst2)];
    assert_eq!((f.network.as_str(), f.dev.as_str()), ("ov", "vx-t-ov"));
    assert_eq!((f.mac, f.dst), (mac2, dst2));

    assert_eq!(c.state.neighs.len(), 1, "{:?}", c.state.neighs.keys());
    let ip2: std::net::IpAddr = "10.0.0.2".parse()?;
    let n = &c.state.neighs[&("ov".to_string(), ip2)];
    assert_eq!((n.network.as_str(), n.dev.as_str()), ("ov", "vx-t-ov"));
    assert_eq!(n.mac, mac2);
    Ok(())
}
