//! Routes in sandboxes, routed subnets on the host, FDB and neighbour entries.

use super::*;

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
