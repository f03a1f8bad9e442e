//! Golden plan snapshots (tests/golden/*.snap): the examples planned against
//! an empty host and against partly converged states. Pure: no kernel, no root.
//! Review changes with `cargo insta review` (or INSTA_UPDATE=always).

use cnm::model::{default_dst, Family, HostFacts, Observed};
use cnm::naming::MarkKind;
use cnm::spec::{self, Topology};
use cnm::{desired, diff};
use std::path::Path;

fn example(name: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/topologies")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    spec::parse(&format!("examples/topologies/{name}"), &text).unwrap()
}

/// A host with a LAN route and one nameserver, nothing of cnm's.
fn empty_host() -> Observed {
    Observed {
        state: Default::default(),
        host: HostFacts {
            routed: vec![
                "172.17.0.0/16".parse().unwrap(),
                "192.0.2.0/24".parse().unwrap(),
            ],
            nameservers: vec!["192.0.2.53".parse().unwrap(), "127.0.0.53".parse().unwrap()],
            search: vec!["lab.example".into()],
            ..Default::default()
        },
    }
}

fn plan_text(t: &Topology, obs: &Observed) -> String {
    let want = desired::build(t, obs).unwrap();
    diff::diff(&t.name, &t.file, &want, obs)
        .unwrap()
        .render_text(&t.file, false)
}

/// The observed state after a successful apply: the desired state itself.
fn converged(t: &Topology, host: &Observed) -> Observed {
    let state = desired::build(t, host).unwrap();
    let mut obs = host.clone();
    obs.host.owned_netns = state.namespaces.values().map(|n| n.netns.clone()).collect();
    obs.host.netns = obs.host.owned_netns.clone();
    obs.state = state;
    obs
}

/// The key of a network's own link (its bridge).
fn net(name: &str) -> (String, MarkKind) {
    (name.to_string(), MarkKind::Network)
}

/// The key of a network's tunnel device.
fn vtep_of(name: &str) -> (String, MarkKind) {
    (name.to_string(), MarkKind::Vtep)
}

fn setting(l: &cnm::model::LinkRes, key: &str) -> String {
    l.settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"));
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn examples_on_an_empty_host() {
    settings().bind(|| {
        for name in [
            "quickstart.yaml",
            "two-tier.yaml",
            "null-host.yaml",
            "macvlan.yaml",
            "ipvlan.yaml",
            "cni.yaml",
        ] {
            let t = example(name);
            insta::assert_snapshot!(
                format!("empty-{}", name.trim_end_matches(".yaml")),
                plan_text(&t, &empty_host())
            );
        }
    });
}

#[test]
fn converged_examples_plan_nothing() {
    for name in [
        "quickstart.yaml",
        "two-tier.yaml",
        "null-host.yaml",
        "macvlan.yaml",
        "ipvlan.yaml",
        "cni.yaml",
    ] {
        let t = example(name);
        let obs = converged(&t, &empty_host());
        assert_eq!(
            plan_text(&t, &obs),
            format!("No changes. The kernel matches {}.\n", t.file)
        );
    }
}

#[test]
fn two_tier_partly_converged() {
    let t = example("two-tier.yaml");
    let mut obs = converged(&t, &empty_host());
    // Drift: the db namespace is gone with its veth, web's route was
    // deleted, an address was flushed, the bridge MTU changed, a hosts file
    // was edited, and a leftover endpoint of an older file remains.
    obs.state.namespaces.remove("db");
    let mut old = obs.state.endpoints.remove("db-back").unwrap();
    obs.state
        .routes
        .remove(&("web".to_string(), default_dst(Family::V4)));
    obs.state
        .endpoints
        .get_mut("api-back")
        .unwrap()
        .addrs
        .clear();
    obs.state.links.get_mut(&net("front")).unwrap().mtu = 1400;
    obs.state
        .files
        .get_mut("/etc/netns/shop-web/hosts")
        .unwrap()
        .content
        .push_str("6.6.6.6 evil\n");
    old.endpoint = "legacy-back".into();
    old.host.as_mut().unwrap().ifname = "ve-000000000000".into();
    obs.state.endpoints.insert("legacy-back".into(), old);
    settings().bind(|| insta::assert_snapshot!("partial-two-tier", plan_text(&t, &obs)));
}

#[test]
fn edit_after_apply_keeps_dynamic_addresses() {
    // Converge the quickstart, then add an endpoint whose name sorts first:
    // existing endpoints keep their addresses and interface names; the new
    // one takes the lowest free address.
    let t = example("quickstart.yaml");
    let obs = converged(&t, &empty_host());
    let edited = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/quickstart.yaml"),
    )
    .unwrap()
    .replace("  beta: {}\n", "  beta: {}\n  aardvark: {}\n")
        + "  aardvark-lan: { network: lan, sandbox: aardvark }\n";
    let t2 = spec::parse("quickstart.yaml (edited)", &edited).unwrap();
    settings()
        .bind(|| insta::assert_snapshot!("edit-quickstart-add-sandbox", plan_text(&t2, &obs)));
    let plan = {
        let want = desired::build(&t2, &obs).unwrap();
        diff::diff(&t2.name, &t2.file, &want, &obs).unwrap()
    };
    assert!(plan.actions.iter().all(|a| a.op != cnm::plan::Op::Replace));
}

#[test]
fn plan_json_is_stable() {
    let t = example("quickstart.yaml");
    let want = desired::build(&t, &empty_host()).unwrap();
    let plan = diff::diff(&t.name, &t.file, &want, &empty_host()).unwrap();
    settings().bind(|| insta::assert_snapshot!("json-quickstart", plan.to_json()));
}

#[test]
fn default_pools_skip_routed_subnets() {
    let t = example("null-host.yaml");
    let want = desired::build(&t, &empty_host()).unwrap();
    // 172.17.0.0/16 is routed on the host, so the first pool is skipped.
    assert_eq!(
        want.links[&net("auto")]
            .addrs
            .iter()
            .next()
            .unwrap()
            .to_string(),
        "172.18.0.1/16"
    );
    // An existing network keeps its subnet even when pools would choose another.
    let obs = converged(&t, &empty_host());
    let mut host = obs.clone();
    host.host.routed.clear();
    assert_eq!(
        desired::build(&t, &host).unwrap().links[&net("auto")].addrs,
        want.links[&net("auto")].addrs
    );
}

#[test]
fn pool_exhaustion_is_a_located_plan_error() {
    let t = example("null-host.yaml");
    let mut host = empty_host();
    host.host.routed = vec![
        "172.16.0.0/12".parse().unwrap(),
        "192.168.0.0/16".parse().unwrap(),
    ];
    let err = desired::build(&t, &host).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "examples/topologies/null-host.yaml:10:9: network auto: no free subnet left"
        ),
        "{err}"
    );
}

#[test]
fn foreign_name_clash_is_a_plan_error() {
    let t = example("quickstart.yaml");
    let mut host = empty_host();
    host.host.links.insert("br-quick-lan".into(), None);
    let want = desired::build(&t, &host).unwrap();
    let err = diff::diff(&t.name, &t.file, &want, &host)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("interface br-quick-lan already exists and cnm does not own it"),
        "{err}"
    );
    host.host.links.clear();
    host.host.netns.insert("quick-alpha".into());
    let err = diff::diff(&t.name, &t.file, &want, &host)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/run/netns/quick-alpha already exists and cnm does not own it"),
        "{err}"
    );
}

/// Host `name` of the overlay example: its underlay address on eth0.
fn overlay_host(t: &Topology, name: &str) -> Observed {
    let mut obs = empty_host();
    obs.host
        .local_addrs
        .insert(t.hosts[name].address, ("eth0".into(), 1500));
    obs
}

#[test]
fn overlay_plan_on_one_host() {
    let t = example("overlay.yaml");
    settings().bind(|| {
        insta::assert_snapshot!("empty-overlay-h1", plan_text(&t, &overlay_host(&t, "h1")));
    });
    let obs = converged(&t, &overlay_host(&t, "h1"));
    assert_eq!(
        plan_text(&t, &obs),
        format!("No changes. The kernel matches {}.\n", t.file)
    );
}

#[test]
fn overlay_hosts_agree_without_talking() {
    let t = example("overlay.yaml");
    let states: Vec<_> = t
        .hosts
        .keys()
        .map(|h| desired::build(&t, &overlay_host(&t, h)).unwrap())
        .collect();
    // What one host realizes is exactly what every other host points at.
    for (i, mine) in states.iter().enumerate() {
        let vtep: std::net::IpAddr = setting(&mine.links[&vtep_of("ov")], "local")
            .parse()
            .unwrap();
        for v in mine.endpoints.values().filter(|v| v.network == "ov") {
            let mac = v.mac.expect("overlay MACs are derived");
            for (j, other) in states.iter().enumerate().filter(|(j, _)| *j != i) {
                let fdb = other.fdb.values().find(|f| f.mac == mac);
                assert_eq!(
                    fdb.map(|f| f.dst),
                    Some(vtep),
                    "host {j}: fdb for {}",
                    v.endpoint
                );
                for a in &v.addrs {
                    let n = other.neighs.get(&("ov".to_string(), a.ip()));
                    assert_eq!(n.map(|n| n.mac), Some(mac), "host {j}: neighbour {a}");
                }
                assert!(other.fdb.values().any(|f| f.is_flood() && f.dst == vtep));
            }
        }
    }
    // The same VNI everywhere; no host realizes another's sandbox.
    let vnis: std::collections::BTreeSet<String> = states
        .iter()
        .map(|s| setting(&s.links[&vtep_of("ov")], "vni"))
        .collect();
    assert_eq!(vnis.len(), 1);
    assert_eq!(states.iter().map(|s| s.namespaces.len()).sum::<usize>(), 3);
}

#[test]
fn overlay_addresses_stay_when_endpoints_come_and_go() {
    let base = example("overlay.yaml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/overlay.yaml"),
    )
    .unwrap();
    let more = text
        .replace(
            "endpoints:\n",
            "endpoints:\n  cache-ov: { network: ov, sandbox: cache }\n",
        )
        .replace("sandboxes:\n", "sandboxes:\n  cache: { host: h2 }\n");
    let grown = spec::parse("overlay.yaml", &more).unwrap();
    let addrs = |t: &Topology| {
        let s = desired::build(t, &overlay_host(t, "h2")).unwrap();
        let mut out: std::collections::BTreeMap<String, String> = s
            .endpoints
            .values()
            .map(|v| (v.endpoint.clone(), format!("{:?}", v.addrs)))
            .collect();
        out.extend(
            s.neighs
                .values()
                .map(|n| (n.ip.to_string(), cnm::model::fmt_mac(&n.mac))),
        );
        out
    };
    let (a, b) = (addrs(&base), addrs(&grown));
    for (k, v) in &a {
        assert_eq!(b.get(k), Some(v), "{k} moved when cache-ov was added");
    }
    assert!(b.contains_key("cache-ov"));
}

#[test]
fn overlay_host_selection() {
    let mut t = example("overlay.yaml");
    // No --host and no local address of any host: a clear error.
    let err = desired::build(&t, &empty_host()).unwrap_err().to_string();
    assert!(err.contains("--host"), "{err}");
    // --host h2 on a machine that lacks h2's address: the VTEP is missing.
    t.select_host(Some("h2")).unwrap();
    let err = desired::build(&t, &overlay_host(&t, "h1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("192.168.100.12"), "{err}");
    assert!(t
        .select_host(Some("h9"))
        .unwrap_err()
        .contains("h1, h2, h3"));
}

#[test]
fn macvlan_passthru_takes_one_endpoint() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/macvlan.yaml");
    let text = std::fs::read_to_string(path).unwrap().replace(
        "{ parent: lan0 }",
        "{ parent: lan0, macvlan_mode: passthru }",
    );
    let t = spec::parse("mv.yaml", &text).unwrap();
    let err = desired::build(&t, &empty_host()).unwrap_err().to_string();
    assert!(
        err.starts_with("mv.yaml:18:12: endpoint web-lan: network lan is in passthru mode, which gives parent lan0 to one endpoint only"),
        "{err}"
    );
}

#[test]
fn macvlan_children_follow_their_parent_mtu() {
    let t = example("macvlan.yaml");
    let mut host = empty_host();
    host.host.link_mtu.insert("lan0".into(), 9000);
    let want = desired::build(&t, &host).unwrap();
    assert!(want
        .endpoints
        .values()
        .all(|e| e.mtu == 9000 && e.host.is_none()));
}

#[test]
fn macvlan_passthru_endpoints_have_the_parents_mac() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/macvlan.yaml");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace(
            "{ parent: lan0 }",
            "{ parent: lan0, macvlan_mode: passthru }",
        )
        .replace("  web-lan: { network: lan, sandbox: web }\n", "");
    let t = spec::parse("mv.yaml", &text).unwrap();
    let want = desired::build(&t, &empty_host()).unwrap();
    assert_eq!(want.endpoints["db-lan"].mac, None);
    let with_mac = text.replace("address: 10.77.0.20", "mac: \"02:00:00:00:00:01\"");
    let t = spec::parse("mv.yaml", &with_mac).unwrap();
    let err = desired::build(&t, &empty_host()).unwrap_err().to_string();
    assert!(
        err.contains(
            "is in passthru mode, where the endpoint has the MAC of parent lan0; remove mac:"
        ),
        "{err}"
    );
}

/// The remote example before its first apply, with the plugin known but
/// not reached (what a plan from records gives): what only the plugin
/// decides is known after apply; the network cnm addresses is exact.
#[test]
fn remote_example_before_its_first_apply() {
    use cnm::drivers::{remote::RemoteDriver, Registry};
    let t = example("remote.yaml");
    let reg = Registry::builtin()
        .with(RemoteDriver::new("cnmp", None, "local"))
        .with_plugin("cnmp", None);
    let host = empty_host();
    let want = desired::build_with(&reg, &t, &host, &Default::default()).unwrap();
    let text = diff::diff(&t.name, &t.file, &want, &host)
        .unwrap()
        .render_text(&t.file, false);
    settings().bind(|| insta::assert_snapshot!("empty-remote", text));
}

/// What an IPAM plugin answered is checked before anything uses it: a
/// pool in a reserved range, or a gateway outside the pool, is a plan
/// error naming the plugin (and nothing is built from it).
#[test]
fn ipam_plugin_answers_are_checked() {
    use cnm::drivers::{remote::RemoteDriver, Registry};
    use cnm::model::{PluginCall, PluginRes};
    let t = example("remote.yaml");
    let reg = Registry::builtin()
        .with(RemoteDriver::new("cnmp", None, "local"))
        .with_plugin("cnmp", None);
    // The requests the plan would send, answered as a hostile plugin might.
    let first = desired::build_with(&reg, &t, &empty_host(), &Default::default()).unwrap();
    let answered = |pool: &str, gateway: &str| {
        let mut host = empty_host();
        for (key, obj) in &first.plugins {
            let returned = match obj.call {
                PluginCall::Pool => serde_json::json!({ "PoolID": "p1", "Pool": pool }),
                _ => continue,
            };
            host.state.plugins.insert(
                key.clone(),
                PluginRes {
                    returned,
                    ..obj.clone()
                },
            );
        }
        // The gateway is asked of the pool just answered.
        let next = desired::build_with(&reg, &t, &host, &Default::default());
        if let Ok(next) = &next {
            if let Some((key, obj)) = next
                .plugins
                .iter()
                .find(|(_, o)| o.call == PluginCall::Gateway)
            {
                host.state.plugins.insert(
                    key.clone(),
                    PluginRes {
                        returned: serde_json::json!({ "Address": gateway }),
                        ..obj.clone()
                    },
                );
            }
        }
        desired::build_with(&reg, &t, &host, &Default::default()).map(|_| ())
    };
    let loopback = answered("127.0.0.0/24", "127.0.0.1/24")
        .unwrap_err()
        .to_string();
    assert!(
        loopback.contains(
            "network back: IPAM plugin cnmp gave pool 127.0.0.0/24, which is in the loopback range"
        ),
        "{loopback}"
    );
    let outside = answered("10.199.0.0/24", "10.198.0.1/24")
        .unwrap_err()
        .to_string();
    assert!(
        outside.contains(
            "gave gateway 10.198.0.1/24, which is not a usable address of its pool 10.199.0.0/24"
        ),
        "{outside}"
    );
    let overlap = answered("10.60.0.0/24", "10.60.0.1/24")
        .unwrap_err()
        .to_string();
    assert!(outside.contains("IPAM plugin cnmp"), "{outside}");
    assert!(
        overlap.contains("which overlaps network front (10.60.0.0/24)"),
        "{overlap}"
    );
    answered("10.199.0.0/24", "10.199.0.1/24").expect("a sound answer is used");
}

#[test]
fn ipvlan_endpoints_have_their_parents_mac() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/ipvlan.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let t = spec::parse("ipv.yaml", &text).unwrap();
    let want = desired::build(&t, &empty_host()).unwrap();
    assert!(want.endpoints.values().all(|e| e.mac.is_none()));
    let with_mac = text.replace("address: 10.79.0.20", "mac: \"02:00:00:00:00:01\"");
    let t = spec::parse("ipv.yaml", &with_mac).unwrap();
    let err = desired::build(&t, &empty_host()).unwrap_err().to_string();
    assert!(
        err.starts_with("ipv.yaml:24:")
            && err.contains("endpoint db-routed: ipvlan endpoints have the MAC of their parent (lan1); remove mac:"),
        "{err}"
    );
}

/// `ifname:` names the interface in the sandbox; the sandbox's other
/// endpoints still take the lowest free `ethN`, and its route uses it.
#[test]
fn an_endpoint_named_by_the_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/two-tier.yaml");
    let text = std::fs::read_to_string(path).unwrap().replace(
        "  web-back: { network: back, sandbox: web }",
        "  web-back: { network: back, sandbox: web, ifname: data0 }",
    );
    let t = spec::parse("shop.yaml", &text).unwrap();
    let want = desired::build(&t, &empty_host()).unwrap();
    assert_eq!(want.endpoints["web-back"].ifname, "data0");
    assert_eq!(want.endpoints["web-front"].ifname, "eth0");
    assert_eq!(want.endpoints["api-back"].ifname, "eth0");
    let text = plan_text(&t, &empty_host());
    assert!(text.contains("+ endpoint web-back (web data0 ↔ "), "{text}");
}

/// A plugin names the interfaces of its networks: `ifname:` there is a
/// plan error, located at the endpoint.
#[test]
fn a_plugin_network_takes_no_ifname() {
    use cnm::drivers::{remote::RemoteDriver, Registry};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/remote.yaml");
    let text = std::fs::read_to_string(path).unwrap().replace(
        "  db-front: { network: front, sandbox: db }",
        "  db-front: { network: front, sandbox: db, ifname: data0 }",
    );
    let t = spec::parse("r.yaml", &text).unwrap();
    let reg = Registry::builtin()
        .with(RemoteDriver::new("cnmp", None, "local"))
        .with_plugin("cnmp", None);
    let err = desired::build_with(&reg, &t, &empty_host(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("r.yaml:22:")
            && err.contains("endpoint db-front: ifname does not apply to a network of plugin cnmp"),
        "{err}"
    );
}
