//! The engine through its public API, without a kernel: desired state
//! (addresses, MACs, default routes, hosts files), diff (updates, replaces,
//! delete order, routes set again, foreign names) and the bridge driver's
//! firewall rules. Pure: no root.

use cnm::desired;
use cnm::diff;
use cnm::firewall::rules;
use cnm::model::{default_dst, Family, FwRule, HostFacts, Observed, State};
use cnm::naming::{self, MarkKind};
use cnm::plan::{Action, Op, Plan, Resource};
use cnm::spec::{self, Topology};
use ipnetwork::IpNetwork;
use std::collections::BTreeSet;

fn topo(text: &str) -> Topology {
    spec::parse("engine.yaml", text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A host with nothing of cnm's.
fn empty_host() -> Observed {
    Observed {
        state: Default::default(),
        host: HostFacts {
            nameservers: vec!["192.0.2.53".parse().unwrap()],
            ..Default::default()
        },
    }
}

/// The observed state after a successful apply: the desired state itself.
fn converged(t: &Topology) -> Observed {
    let host = empty_host();
    let state = desired::build(t, &host).unwrap();
    let mut obs = host;
    obs.host.owned_netns = state.namespaces.values().map(|n| n.netns.clone()).collect();
    obs.host.netns = obs.host.owned_netns.clone();
    obs.state = state;
    obs
}

fn build(t: &Topology, obs: &Observed) -> State {
    desired::build(t, obs).unwrap_or_else(|e| panic!("{e}"))
}

fn plan(t: &Topology, obs: &Observed) -> Plan {
    let want = build(t, obs);
    diff::diff(&t.name, &t.file, &want, obs).unwrap_or_else(|e| panic!("{e}"))
}

/// An endpoint's addresses, as text.
fn addrs(s: &State, endpoint: &str) -> Vec<String> {
    s.endpoints[endpoint]
        .addrs
        .iter()
        .map(|a| a.to_string())
        .collect()
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

fn ops(p: &Plan) -> Vec<(Op, String)> {
    p.actions
        .iter()
        .map(|a| (a.op, a.resource.label()))
        .collect()
}

/// Two sandboxes on one bridge network.
const BASE: &str = "\
version: 1
name: eng
networks:
  lan: { subnet: 10.50.0.0/24 }
sandboxes:
  alpha: {}
  beta: {}
endpoints:
  alpha-lan: { network: lan, sandbox: alpha }
  beta-lan: { network: lan, sandbox: beta }
";

// ---- desired ----

#[test]
fn addresses_are_the_lowest_free_in_endpoint_name_order() {
    // Written out of order: the order of the file does not matter.
    let t = topo(
        "\
version: 1
name: eng
networks:
  lan: { subnet: 10.50.0.0/24 }
sandboxes: { c: {}, a: {}, b: {} }
endpoints:
  c-lan: { network: lan, sandbox: c }
  a-lan: { network: lan, sandbox: a }
  b-lan: { network: lan, sandbox: b }
",
    );
    let s = build(&t, &empty_host());
    assert_eq!(addrs(&s, "a-lan"), ["10.50.0.2/24"]);
    assert_eq!(addrs(&s, "b-lan"), ["10.50.0.3/24"]);
    assert_eq!(addrs(&s, "c-lan"), ["10.50.0.4/24"]);
    let br = &s.links[&("lan".to_string(), MarkKind::Network)];
    assert_eq!(br.ifname, "br-eng-lan");
    assert_eq!(
        br.addrs,
        [net("10.50.0.1/24")].into_iter().collect::<BTreeSet<_>>()
    );
}

#[test]
fn kept_addresses_survive_a_new_endpoint_that_sorts_first() {
    let t = topo(BASE);
    let obs = converged(&t);
    assert_eq!(addrs(&obs.state, "alpha-lan"), ["10.50.0.2/24"]);
    let grown = topo(
        &BASE
            .replace("  beta: {}\n", "  beta: {}\n  aaa: {}\n")
            .replace(
                "endpoints:\n",
                "endpoints:\n  aaa-lan: { network: lan, sandbox: aaa }\n",
            ),
    );
    let s = build(&grown, &obs);
    assert_eq!(addrs(&s, "alpha-lan"), ["10.50.0.2/24"]);
    assert_eq!(addrs(&s, "beta-lan"), ["10.50.0.3/24"]);
    assert_eq!(addrs(&s, "aaa-lan"), ["10.50.0.4/24"]);
    // On an empty host, the same file numbers by name.
    let fresh = build(&grown, &empty_host());
    assert_eq!(addrs(&fresh, "aaa-lan"), ["10.50.0.2/24"]);
    // Nothing that exists is made again.
    let p = plan(&grown, &obs);
    assert!(
        p.actions.iter().all(|a| a.op != Op::Replace),
        "{:?}",
        ops(&p)
    );
}

#[test]
fn an_observed_address_is_kept_even_when_not_the_lowest() {
    let t = topo(BASE);
    let mut obs = converged(&t);
    let b = obs.state.endpoints.get_mut("beta-lan").unwrap();
    b.addrs = [net("10.50.0.20/24")].into_iter().collect();
    let s = build(&t, &obs);
    assert_eq!(addrs(&s, "beta-lan"), ["10.50.0.20/24"]);
    assert_eq!(addrs(&s, "alpha-lan"), ["10.50.0.2/24"]);
}

/// Three endpoints on a network whose gateway is not its first address.
const GW_TEXT: &str = "\
version: 1
name: eng
networks:
  lan: { subnet: 10.50.0.0/24, gateway: 10.50.0.2 }
sandboxes: { a: {}, b: {}, c: {} }
endpoints:
  a-lan: { network: lan, sandbox: a }
  b-lan: { network: lan, sandbox: b }
  c-lan: { network: lan, sandbox: c }
";

#[test]
fn the_gateway_address_is_never_an_endpoints() {
    let t = topo(GW_TEXT);
    let s = build(&t, &empty_host());
    assert_eq!(addrs(&s, "a-lan"), ["10.50.0.1/24"]);
    assert_eq!(addrs(&s, "b-lan"), ["10.50.0.3/24"]);
    assert_eq!(addrs(&s, "c-lan"), ["10.50.0.4/24"]);
    assert_eq!(
        s.links[&("lan".to_string(), MarkKind::Network)].addrs,
        [net("10.50.0.2/24")].into_iter().collect::<BTreeSet<_>>()
    );
    // An endpoint holding what becomes the gateway gives it up; the others
    // keep theirs.
    let obs = converged(&topo(&GW_TEXT.replace(", gateway: 10.50.0.2", "")));
    assert_eq!(addrs(&obs.state, "b-lan"), ["10.50.0.3/24"]);
    let moved = topo(&GW_TEXT.replace("10.50.0.2", "10.50.0.3"));
    let s = build(&moved, &obs);
    assert_eq!(addrs(&s, "a-lan"), ["10.50.0.2/24"]);
    assert_eq!(addrs(&s, "c-lan"), ["10.50.0.4/24"]);
    assert_eq!(addrs(&s, "b-lan"), ["10.50.0.1/24"]);
}

#[test]
fn a_static_address_is_honoured_before_dynamic_ones() {
    // b asks for .2; a, sorting first, takes the next free one.
    let t = topo(&BASE.replace(
        "beta-lan: { network: lan, sandbox: beta }",
        "beta-lan: { network: lan, sandbox: beta, address: 10.50.0.2 }",
    ));
    let s = build(&t, &empty_host());
    assert_eq!(addrs(&s, "beta-lan"), ["10.50.0.2/24"]);
    assert_eq!(addrs(&s, "alpha-lan"), ["10.50.0.3/24"]);
    // A static address wins over an observed one.
    let obs = converged(&topo(BASE));
    assert_eq!(addrs(&obs.state, "beta-lan"), ["10.50.0.3/24"]);
    let s = build(&t, &obs);
    assert_eq!(addrs(&s, "beta-lan"), ["10.50.0.2/24"]);
}

#[test]
fn the_mac_comes_from_the_ipv4_address_unless_given() {
    let t = topo(&BASE.replace(
        "beta-lan: { network: lan, sandbox: beta }",
        "beta-lan: { network: lan, sandbox: beta, mac: \"02:00:00:00:be:ef\" }",
    ));
    let s = build(&t, &empty_host());
    assert_eq!(
        s.endpoints["alpha-lan"].mac,
        Some([0x02, 0x42, 10, 50, 0, 2])
    );
    assert_eq!(
        s.endpoints["beta-lan"].mac,
        Some([0x02, 0x00, 0x00, 0x00, 0xbe, 0xef])
    );
    // The derived MAC follows the address.
    let moved = topo(&BASE.replace(
        "alpha-lan: { network: lan, sandbox: alpha }",
        "alpha-lan: { network: lan, sandbox: alpha, address: 10.50.0.77 }",
    ));
    assert_eq!(
        build(&moved, &empty_host()).endpoints["alpha-lan"].mac,
        Some([0x02, 0x42, 10, 50, 0, 77])
    );
}

/// s1: three networks, `gateway: true` on the last; s2: an internal one
/// first by name, then two others; s3: internal only.
const ROUTES: &str = "\
version: 1
name: gw
networks:
  a: { subnet: 10.1.0.0/24, internal: true }
  b: { subnet: 10.2.0.0/24 }
  c: { subnet: 10.3.0.0/24 }
sandboxes: { s1: {}, s2: {}, s3: {} }
endpoints:
  s1-a: { network: a, sandbox: s1 }
  s1-b: { network: b, sandbox: s1 }
  s1-c: { network: c, sandbox: s1, gateway: true }
  s2-a: { network: a, sandbox: s2 }
  s2-b: { network: b, sandbox: s2 }
  s2-c: { network: c, sandbox: s2 }
  s3-a: { network: a, sandbox: s3 }
";

#[test]
fn default_routes_follow_the_gateway_endpoint() {
    let t = topo(ROUTES);
    let s = build(&t, &empty_host());
    let default = |sb: &str| s.routes.get(&(sb.to_string(), default_dst(Family::V4)));

    let r1 = default("s1").expect("s1 has a default route");
    assert_eq!(r1.gateway, Some("10.3.0.1".parse().unwrap()));
    assert_eq!(r1.dev, s.endpoints["s1-c"].ifname);
    assert_eq!(r1.dev, "eth2");
    assert_eq!(r1.netns, "gw-s1");

    // No `gateway: true`: the first endpoint by name on a network that is
    // not internal.
    let r2 = default("s2").expect("s2 has a default route");
    assert_eq!(r2.gateway, Some("10.2.0.1".parse().unwrap()));
    assert_eq!(r2.dev, s.endpoints["s2-b"].ifname);
    assert_eq!(r2.dev, "eth1");

    // Internal networks only: no way out, no default route.
    assert!(default("s3").is_none());
    assert!(!s.routes.keys().any(|(sb, _)| sb == "s3"));
    // One route per sandbox that has one, and only default routes.
    assert_eq!(s.routes.len(), 2);
    assert!(s.routes.values().all(|r| r.is_default()));

    // The public function agrees.
    assert_eq!(
        desired::gateway_endpoint(&t, "s1").map(|e| e.name.as_str()),
        Some("s1-c")
    );
    assert_eq!(
        desired::gateway_endpoint(&t, "s2").map(|e| e.name.as_str()),
        Some("s2-b")
    );
    assert!(desired::gateway_endpoint(&t, "s3").is_none());
}

#[test]
fn hosts_files_list_peers_on_shared_networks_only() {
    let t = topo(
        "\
version: 1
name: hf
dns: { embedded: false }
networks:
  n1: { subnet: 10.1.0.0/24 }
  n2: { subnet: 10.2.0.0/24 }
sandboxes: { x: {}, y: {}, z: {} }
endpoints:
  x-n1: { network: n1, sandbox: x }
  y-n1: { network: n1, sandbox: y }
  y-n2: { network: n2, sandbox: y }
  z-n2: { network: n2, sandbox: z }
",
    );
    let s = build(&t, &empty_host());
    let hosts = |sb: &str| {
        let path = naming::hosts_path(&naming::netns_name("hf", sb));
        let f = s.files.get(&path).unwrap_or_else(|| panic!("no {path}"));
        assert_eq!(f.sandbox, sb);
        f.content.clone()
    };
    let lines = |sb: &str| -> Vec<String> { hosts(sb).lines().map(str::to_string).collect() };
    let has = |sb: &str, line: &str| lines(sb).iter().any(|l| l == line);

    // x (n1) sees y on n1, not y's n2 address, not z.
    assert!(has("x", "10.1.0.2\tx"), "{}", hosts("x"));
    assert!(has("x", "10.1.0.3\ty"), "{}", hosts("x"));
    assert!(!hosts("x").contains("10.2.0."), "{}", hosts("x"));
    assert!(
        !lines("x").iter().any(|l| l.ends_with("\tz")),
        "{}",
        hosts("x")
    );
    // y (n1, n2) sees both.
    assert!(has("y", "10.1.0.2\tx"), "{}", hosts("y"));
    assert!(has("y", "10.2.0.3\tz"), "{}", hosts("y"));
    // z (n2) sees y on n2 only, not x.
    assert!(has("z", "10.2.0.2\ty"), "{}", hosts("z"));
    assert!(!has("z", "10.1.0.3\ty"), "{}", hosts("z"));
    assert!(
        !lines("z").iter().any(|l| l.ends_with("\tx")),
        "{}",
        hosts("z")
    );
}

// ---- diff ----

/// The only action on `label`, else a panic naming the plan.
fn only<'p>(p: &'p Plan, label: &str) -> &'p Action {
    let found: Vec<&Action> = p
        .actions
        .iter()
        .filter(|a| a.resource.label() == label)
        .collect();
    match found.as_slice() {
        [a] => a,
        _ => panic!("{} actions on {label}: {:#?}", found.len(), ops(p)),
    }
}

#[test]
fn converged_plans_nothing() {
    let t = topo(BASE);
    assert!(plan(&t, &converged(&t)).actions.is_empty());
}

#[test]
fn an_mtu_change_is_an_update_naming_the_field() {
    let t = topo(BASE);
    let mut obs = converged(&t);
    let key = ("lan".to_string(), MarkKind::Network);
    obs.state.links.get_mut(&key).unwrap().mtu = 1400;
    let p = plan(&t, &obs);
    assert_eq!(p.actions.len(), 1, "{:#?}", ops(&p));
    let a = &p.actions[0];
    assert_eq!(a.op, Op::Update);
    assert!(matches!(&a.resource, Resource::Link(l) if l.ifname == "br-eng-lan"));
    assert_eq!(a.changes.len(), 1);
    let c = &a.changes[0];
    assert_eq!(
        (c.field.as_str(), c.old.as_str(), c.new.as_str()),
        ("mtu", "1400", "1500")
    );
    assert_eq!(a.reason, None);
}

#[test]
fn a_bridge_rename_is_a_replace_with_a_reason() {
    let t = topo(BASE);
    let obs = converged(&t);
    let renamed = topo(&BASE.replace(
        "lan: { subnet: 10.50.0.0/24 }",
        "lan: { subnet: 10.50.0.0/24, options: { bridge_name: br-renamed } }",
    ));
    let p = plan(&renamed, &obs);
    let a = only(&p, "network lan (bridge br-renamed)");
    assert_eq!(a.op, Op::Replace);
    assert_eq!(a.reason.as_deref(), Some("the bridge name changed"));
    assert_eq!(a.changes.len(), 1);
    assert_eq!(
        (
            a.changes[0].field.as_str(),
            a.changes[0].old.as_str(),
            a.changes[0].new.as_str()
        ),
        ("name", "br-eng-lan", "br-renamed")
    );
    assert!(matches!(&a.before, Some(Resource::Link(l)) if l.ifname == "br-eng-lan"));
    // Its ports follow it.
    for ep in ["alpha-lan", "beta-lan"] {
        let e = p
            .actions
            .iter()
            .find(|a| matches!(&a.resource, Resource::Endpoint(e) if e.endpoint == ep))
            .unwrap_or_else(|| panic!("no action on {ep}: {:#?}", ops(&p)));
        assert_eq!(e.op, Op::Update);
        assert!(
            e.changes
                .iter()
                .any(|c| c.field == "bridge" && c.old == "br-eng-lan" && c.new == "br-renamed"),
            "{:?}",
            e.changes
        );
    }
}

#[test]
fn a_removed_sandbox_is_deleted_dependents_first() {
    let t = topo(BASE);
    let obs = converged(&t);
    let smaller = topo(
        &BASE
            .replace("  beta: {}\n", "")
            .replace("  beta-lan: { network: lan, sandbox: beta }\n", ""),
    );
    let p = plan(&smaller, &obs);
    let deletes: Vec<&Action> = p.actions.iter().filter(|a| a.op == Op::Delete).collect();
    let kinds: Vec<&str> = deletes
        .iter()
        .map(|a| match &a.resource {
            Resource::File(_) => "file",
            Resource::Dns(_) => "dns",
            Resource::Route(_) => "route",
            Resource::Endpoint(_) => "endpoint",
            Resource::Namespace(_) => "namespace",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["file", "file", "dns", "route", "endpoint", "namespace"],
        "{:#?}",
        ops(&p)
    );
    assert!(deletes.iter().all(|a| match &a.resource {
        Resource::File(f) => f.sandbox == "beta",
        Resource::Dns(d) => d.sandbox == "beta",
        Resource::Route(r) => r.sandbox == "beta",
        Resource::Endpoint(e) => e.endpoint == "beta-lan",
        Resource::Namespace(n) => n.sandbox == "beta" && n.netns == "eng-beta",
        _ => false,
    }));
    let paths: BTreeSet<String> = deletes
        .iter()
        .filter_map(|a| match &a.resource {
            Resource::File(f) => Some(f.path.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        paths,
        [
            naming::hosts_path("eng-beta"),
            naming::resolv_path("eng-beta")
        ]
        .into_iter()
        .collect()
    );
    // Deletes come first; then the resolver forgets beta. alpha's files
    // stay as they are: its hosts file holds only its own names.
    let first_other = p.actions.iter().position(|a| a.op != Op::Delete);
    assert_eq!(first_other, Some(deletes.len()), "{:#?}", ops(&p));
    let rest: Vec<&Action> = p.actions.iter().filter(|a| a.op != Op::Delete).collect();
    assert!(
        matches!(rest.as_slice(), [a] if a.op == Op::Update && matches!(a.resource, Resource::Resolver(_))),
        "{:#?}",
        ops(&p)
    );
}

#[test]
fn with_the_resolver_files_name_127_0_0_11_and_only_their_own_names() {
    let t = topo(BASE);
    let s = build(&t, &empty_host());
    let hosts = &s.files[&naming::hosts_path("eng-alpha")].content;
    assert!(hosts.contains("\talpha"), "{hosts}");
    assert!(!hosts.contains("beta"), "{hosts}");
    let resolv = &s.files[&naming::resolv_path("eng-alpha")].content;
    let lines: Vec<&str> = resolv.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        ["nameserver 127.0.0.11", "options ndots:0"],
        "{resolv}"
    );
    let r = s.resolver.as_ref().expect("a resolver for two sandboxes");
    assert_eq!((r.sandboxes, r.running, r.current), (2, true, true));
    // Off: no resolver, peers in the hosts files.
    let off = topo(&BASE.replace("name: eng\n", "name: eng\ndns: { embedded: false }\n"));
    let s = build(&off, &empty_host());
    assert!(s.resolver.is_none());
    assert!(s.files[&naming::hosts_path("eng-alpha")]
        .content
        .contains("beta"));
}

#[test]
fn a_dead_resolver_is_drift_and_a_remade_namespace_rebinds() {
    let t = topo(BASE);
    let mut obs = converged(&t);
    if let Some(r) = obs.state.resolver.as_mut() {
        r.running = false;
        r.current = false;
    }
    let p = plan(&t, &obs);
    let a = only(&p, "resolver 127.0.0.11 in 2 sandboxes");
    assert_eq!(a.op, Op::Update);
    assert_eq!(a.changes[0].field, "process");
    // A namespace made again: same names, but the resolver must listen
    // in the new namespace.
    let mut obs = converged(&t);
    obs.state.namespaces.remove("beta");
    let p = plan(&t, &obs);
    let a = only(&p, "resolver 127.0.0.11 in 2 sandboxes");
    assert!(
        a.reason.as_deref().is_some_and(|r| r.contains("beta")),
        "{a:#?}"
    );
}

#[test]
fn an_address_change_sets_the_routes_on_that_interface_again() {
    let t = topo(BASE);
    let obs = converged(&t);
    // A new address, the MAC kept: only the addresses change.
    let moved = topo(&BASE.replace(
        "alpha-lan: { network: lan, sandbox: alpha }",
        "alpha-lan: { network: lan, sandbox: alpha, address: 10.50.0.9, mac: \"02:42:0a:32:00:02\" }",
    ));
    let p = plan(&moved, &obs);
    let e = p
        .actions
        .iter()
        .find(|a| matches!(&a.resource, Resource::Endpoint(e) if e.endpoint == "alpha-lan"))
        .unwrap_or_else(|| panic!("{:#?}", ops(&p)));
    assert_eq!(e.op, Op::Update);
    assert_eq!(e.changes.len(), 1, "{:?}", e.changes);
    assert_eq!(
        (
            e.changes[0].field.as_str(),
            e.changes[0].old.as_str(),
            e.changes[0].new.as_str()
        ),
        ("addresses", "10.50.0.2/24", "10.50.0.9/24")
    );
    let r = only(&p, "route alpha: default via 10.50.0.1 dev eth0");
    assert_eq!(r.op, Op::Update);
    assert!(r.changes.is_empty());
    assert_eq!(
        r.reason.as_deref(),
        Some("set again: the addresses of eth0 change")
    );
    // The route comes after the endpoint it depends on.
    let pos = |a: &Action| p.actions.iter().position(|x| x == a).unwrap();
    assert!(pos(e) < pos(r));
    // beta's route is not touched.
    assert!(!p
        .actions
        .iter()
        .any(|a| matches!(&a.resource, Resource::Route(r) if r.sandbox == "beta")));
}

#[test]
fn a_mac_change_sets_the_routes_again_too() {
    let t = topo(BASE);
    let obs = converged(&t);
    let remac = topo(&BASE.replace(
        "alpha-lan: { network: lan, sandbox: alpha }",
        "alpha-lan: { network: lan, sandbox: alpha, mac: \"02:00:00:00:00:01\" }",
    ));
    let p = plan(&remac, &obs);
    let r = only(&p, "route alpha: default via 10.50.0.1 dev eth0");
    assert_eq!(r.op, Op::Update);
    assert!(r
        .reason
        .as_deref()
        .is_some_and(|w| w.starts_with("set again")));
}

#[test]
fn a_foreign_link_with_the_bridges_name_is_a_plan_error() {
    let t = topo(BASE);
    let want = build(&t, &empty_host());
    let mut host = empty_host();

    host.host.links.insert("br-eng-lan".into(), None);
    let err = diff::diff(&t.name, &t.file, &want, &host)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "engine.yaml: network lan: interface br-eng-lan already exists and cnm does not own it; remove it or choose another name"
    );

    // Another topology's mark: someone else's too.
    let theirs = naming::mark("other", MarkKind::Network, "lan");
    host.host
        .links
        .insert("br-eng-lan".into(), Some(theirs.clone()));
    let err = diff::diff(&t.name, &t.file, &want, &host)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "network lan: interface br-eng-lan already exists and belongs to something else ({theirs})"
        )),
        "{err}"
    );

    // This topology's own mark (say, a link an interrupted apply made): no clash.
    host.host.links.insert(
        "br-eng-lan".into(),
        Some(naming::mark("eng", MarkKind::Network, "lan")),
    );
    assert!(diff::diff(&t.name, &t.file, &want, &host).is_ok());
}

// ---- firewall ----

const FW: &str = "\
version: 1
name: fw
networks:
  pub: { subnet: 10.60.0.0/24 }
  priv: { subnet: 10.61.0.0/24, internal: true }
sandboxes: { web: {}, db: {} }
endpoints:
  web-pub: { network: pub, sandbox: web, ports: [\"8080:80\"] }
  web-priv: { network: priv, sandbox: web }
  db-priv: { network: priv, sandbox: db }
";

fn firewall(t: &Topology) -> cnm::model::FirewallRes {
    build(t, &empty_host())
        .firewall
        .expect("bridge networks have firewall rules")
}

fn labels(fw: &cnm::model::FirewallRes, chain: &str) -> Vec<String> {
    fw.rules
        .iter()
        .filter(|r| r.chain == chain)
        .map(|r| r.label.clone())
        .collect()
}

#[test]
fn a_published_port_is_one_element_of_a_port_map_looked_up_in_prerouting() {
    use cnm::model::Atom;
    let fw = firewall(&topo(FW));
    assert_eq!(fw.table, "cnm-fw");
    assert_eq!(labels(&fw, "prerouting"), ["published ports: @ports_ip_*"]);
    assert_eq!(
        labels(&fw, "output"),
        ["published ports: @ports_ip_* (from the host)"]
    );
    let rule = fw.rules.iter().find(|r| r.chain == "prerouting").unwrap();
    let body = serde_json::to_value(&rule.body).unwrap();
    let dnat = body
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s.get("dnat"))
        .unwrap_or_else(|| panic!("no dnat in {body}"));
    assert_eq!(dnat["addr"]["map"]["data"], "@ports_ip_addr", "{dnat}");
    assert_eq!(dnat["port"]["map"]["data"], "@ports_ip_port", "{dnat}");
    let names: Vec<&str> = fw.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ports_ip_addr", "ports_ip_port"]);
    let key = vec![Atom::Text("tcp".into()), Atom::Num(8080)];
    assert_eq!(fw.maps[0].key_type, ["inet_proto", "inet_service"]);
    assert_eq!(fw.maps[0].value_type, ["ipv4_addr"]);
    assert_eq!(
        fw.maps[0].elements.get(&key),
        Some(&vec![Atom::Text("10.60.0.2".into())])
    );
    assert_eq!(fw.maps[1].elements.get(&key), Some(&vec![Atom::Num(80)]));
    assert_eq!(fw.elements(), 2);
    // One more port is one more element per map; the rules stay the same.
    let more = firewall(&topo(
        &FW.replace("\"8080:80\"", "\"8080:80\", \"9090:90\""),
    ));
    assert_eq!(more.rules, fw.rules);
    assert_eq!(more.elements(), 4);
    assert!(fw.elements_only_to(&more));
    // A range stays a rule of its own.
    let range = firewall(&topo(&FW.replace("\"8080:80\"", "\"8000-8001:80-81\"")));
    assert!(range.maps.is_empty());
    assert_eq!(
        labels(&range, "prerouting"),
        ["port 0.0.0.0:8000-8001/tcp → web-pub 10.60.0.2:80-81"]
    );
    // Without ports, no DNAT at all.
    let quiet = firewall(&topo(&FW.replace(", ports: [\"8080:80\"]", "")));
    assert!(labels(&quiet, "prerouting").is_empty());
    assert!(labels(&quiet, "output").is_empty());
    assert!(quiet.maps.is_empty());
}

#[test]
fn masquerade_for_networks_that_are_not_internal() {
    let fw = firewall(&topo(FW));
    let post = labels(&fw, "postrouting");
    assert!(
        post.iter()
            .any(|l| l == "masquerade pub 10.60.0.0/24 leaving br-fw-pub"),
        "{post:?}"
    );
    assert!(
        !post.iter().any(|l| l.starts_with("masquerade priv ")),
        "{post:?}"
    );
    let masq = fw
        .rules
        .iter()
        .find(|r| r.label.starts_with("masquerade pub "))
        .unwrap();
    assert_eq!(
        serde_json::to_value(masq.body.last().unwrap()).unwrap(),
        serde_json::to_value(rules::masquerade()).unwrap()
    );
    // The internal network is closed instead.
    let fwd = labels(&fw, "forward");
    assert!(
        fwd.contains(&"internal priv: nothing leaves br-fw-priv".to_string()),
        "{fwd:?}"
    );
    assert!(
        !fwd.iter().any(|l| l.starts_with("internal pub")),
        "{fwd:?}"
    );
}

#[test]
fn icc_false_fills_chain_icc_and_asks_for_the_bridge_table() {
    let fw = firewall(&topo(FW));
    assert!(!fw.bridge_table);
    assert!(labels(&fw, "icc").is_empty());

    let off = topo(&FW.replace(
        "priv: { subnet: 10.61.0.0/24, internal: true }",
        "priv: { subnet: 10.61.0.0/24, internal: true, options: { icc: false } }",
    ));
    let fw = firewall(&off);
    assert!(fw.bridge_table);
    assert_eq!(
        labels(&fw, "icc"),
        ["icc off on br-fw-priv: no traffic between its 2 endpoints"]
    );
    // Its ports are the host ends of the network's endpoints.
    let rule = fw.rules.iter().find(|r| r.chain == "icc").unwrap();
    let body = serde_json::to_string(&rule.body).unwrap();
    for ep in ["web-priv", "db-priv"] {
        let port = naming::host_veth_name("fw", ep);
        assert!(body.contains(&port), "{port} not in {body}");
    }
    assert!(!body.contains(&naming::host_veth_name("fw", "web-pub")));

    // A plan from the first firewall to this one changes both.
    let before = converged(&topo(FW));
    let p = plan(&off, &before);
    let a = only(&p, "firewall table cnm-fw");
    assert_eq!(a.op, Op::Update);
    let fields: Vec<&str> = a.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["rules", "bridge table"]);
}

#[test]
fn a_rules_identity_is_its_body_not_its_label() {
    let body_a = vec![rules::ifname(true, "br-x", false), rules::drop()];
    let body_b = vec![rules::ifname(true, "br-x", false), rules::accept()];
    let a = FwRule::new("forward", "the same words".into(), body_a.clone());
    let b = FwRule::new("forward", "the same words".into(), body_b);
    assert_eq!(a.label, b.label);
    assert_eq!(a.digest.len(), 12);
    assert_ne!(a.digest, b.digest);
    assert_ne!(a, b);
    // The same body is the same rule, whatever its label says.
    let again = FwRule::new("forward", "other words".into(), body_a.clone());
    assert_eq!(a.digest, again.digest);
    assert_eq!(a, again);
    // The chain is part of it.
    let elsewhere = FwRule::new("postrouting", "the same words".into(), body_a);
    assert_ne!(a.digest, elsewhere.digest);
    // The comment stored on the rule carries digest and label, and reads back.
    let read = FwRule::from_comment("forward", Some(&a.comment()));
    assert_eq!(
        (read.digest.as_str(), read.label.as_str()),
        (a.digest.as_str(), "the same words")
    );
    assert_eq!(read, a);
    assert_ne!(read, b);
}

#[test]
fn a_rule_whose_body_changes_updates_the_firewall() {
    let t = topo(FW);
    let mut obs = converged(&t);
    let fw = obs.state.firewall.as_mut().unwrap();
    let i = fw
        .rules
        .iter()
        .position(|r| r.label.starts_with("masquerade pub "))
        .unwrap();
    // Same chain, same label, another body (as a rule of an older cnm).
    let (chain, label) = (fw.rules[i].chain.clone(), fw.rules[i].label.clone());
    let changed = FwRule::new(&chain, label, vec![rules::accept()]);
    assert_eq!(changed.label, fw.rules[i].label);
    assert_ne!(changed, fw.rules[i]);
    fw.rules[i] = changed;
    let p = plan(&t, &obs);
    assert_eq!(p.actions.len(), 1, "{:#?}", ops(&p));
    let a = only(&p, "firewall table cnm-fw");
    assert_eq!(a.op, Op::Update);
    assert_eq!(a.changes.len(), 1);
    assert_eq!(a.changes[0].field, "rules");
}

#[test]
fn recorded_allocations_come_back_when_the_kernel_lost_them() {
    let t = spec::parse(
        "r.yaml",
        "version: 1\nname: r\nnetworks: { n: {} }\nsandboxes: { b: {}, c: {} }\nendpoints:\n  b-n: { network: n, sandbox: b }\n  c-n: { network: n, sandbox: c }\n",
    )
    .unwrap();
    let fresh = desired::build(&t, &empty_host()).unwrap();
    assert_eq!(
        fresh.endpoints["b-n"].addrs,
        BTreeSet::from(["172.17.0.2/16".parse::<IpNetwork>().unwrap()])
    );
    // Records of an earlier apply (a reboot since): another subnet, other
    // addresses, another ethN.
    let mut host = empty_host();
    host.host
        .allocated
        .subnets
        .insert("n".into(), "172.18.0.0/16".parse().unwrap());
    for (e, ns, ip, ifname) in [
        ("b-n", "r-b", "172.18.0.3/16", "eth1"),
        ("c-n", "r-c", "172.18.0.4/16", "eth0"),
    ] {
        host.host.allocated.endpoints.insert(
            e.into(),
            cnm::model::EndpointAlloc {
                network: "n".into(),
                netns: ns.into(),
                addrs: BTreeSet::from([ip.parse().unwrap()]),
                ifname: ifname.into(),
            },
        );
    }
    let kept = desired::build(&t, &host).unwrap();
    assert_eq!(
        kept.links[&("n".to_string(), MarkKind::Network)].addrs,
        BTreeSet::from(["172.18.0.1/16".parse::<IpNetwork>().unwrap()])
    );
    assert_eq!(
        kept.endpoints["b-n"].addrs,
        BTreeSet::from(["172.18.0.3/16".parse::<IpNetwork>().unwrap()])
    );
    assert_eq!(kept.endpoints["b-n"].ifname, "eth1");
    assert_eq!(kept.endpoints["c-n"].ifname, "eth0");
    // The kernel's word wins over the records.
    let converged = Observed {
        state: fresh.clone(),
        host: host.host.clone(),
    };
    let again = desired::build(&t, &converged).unwrap();
    assert_eq!(again.endpoints["b-n"].addrs, fresh.endpoints["b-n"].addrs);
}

#[test]
fn aux_addresses_are_never_allocated_nor_kept() {
    let t = topo(
        "version: 1\nname: aux\nnetworks:\n  a:\n    subnet: 10.61.0.0/24\n    aux_addresses: { router: 10.61.0.2, printer: 10.61.0.4 }\nsandboxes: { x: {}, y: {} }\nendpoints:\n  x-a: { network: a, sandbox: x }\n  y-a: { network: a, sandbox: y }\n",
    );
    let s = build(&t, &empty_host());
    let addr = |e: &str| s.endpoints[e].addrs.iter().next().unwrap().ip().to_string();
    assert_eq!(addr("x-a"), "10.61.0.3");
    assert_eq!(addr("y-a"), "10.61.0.5");
}
