//! Links of networks, endpoints from both ends, strays, host facts, other topologies.

use super::*;

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
