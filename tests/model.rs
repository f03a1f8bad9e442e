//! Property: for generated topologies, applying the plan to a simulated
//! kernel (tests/support/sim.rs, which carries the kernel's side effects)
//! leaves nothing to do — from an empty host, from another topology
//! applied before (renumbering, moves, deletions), and for destroy. Pure.
//!
//! `replay_on_the_real_kernel` applies a few generated topologies for real
//! on a private host and compares the kernel with the simulation after
//! each, so the property cannot hold by construction.

#[path = "support/rerun.rs"]
mod rerun;

#[path = "support/sim.rs"]
mod sim;

use cnm::drivers::Registry;
use cnm::model::{Observed, State};
use cnm::plan::Plan;
use cnm::spec::{self, Topology};
use cnm::{desired, diff};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sim::Sim;

const NAME: &str = "gen";

#[derive(Debug, Clone)]
struct Net {
    subnet: bool,
    internal: bool,
    mtu: Option<u32>,
    ipv6: bool,
    icc: bool,
}

#[derive(Debug, Clone)]
struct Ep {
    sandbox: usize,
    network: usize,
    fixed_address: bool,
    mac: bool,
    gateway: bool,
    port: bool,
}

#[derive(Debug, Clone)]
struct Gen {
    nets: Vec<Net>,
    sandboxes: Vec<bool>,
    eps: Vec<Ep>,
}

fn net() -> impl Strategy<Value = Net> {
    (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop_oneof![Just(None), Just(Some(1400u32)), Just(Some(1500))],
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(subnet, internal, mtu, ipv6, icc)| Net {
            subnet,
            internal,
            mtu,
            ipv6,
            icc,
        })
}

fn generated() -> impl Strategy<Value = Gen> {
    (
        prop::collection::vec(net(), 1..=3),
        prop::collection::vec(any::<bool>(), 1..=4),
    )
        .prop_flat_map(|(nets, sandboxes)| {
            let ep = (
                0..sandboxes.len(),
                0..nets.len(),
                any::<bool>(),
                prop::bool::weighted(0.2),
                prop::bool::weighted(0.2),
                prop::bool::weighted(0.2),
            )
                .prop_map(|(sandbox, network, fixed_address, mac, gateway, port)| Ep {
                    sandbox,
                    network,
                    fixed_address,
                    mac,
                    gateway,
                    port,
                });
            (
                Just(nets),
                Just(sandboxes),
                prop::collection::vec(ep, 0..=7),
            )
        })
        .prop_map(|(nets, sandboxes, eps)| Gen {
            nets,
            sandboxes,
            eps,
        })
}

impl Gen {
    /// The topology file. Pairs repeat at most once (the first wins), one
    /// gateway per sandbox; fixed addresses only on explicit subnets.
    fn yaml(&self) -> String {
        let mut y = format!("version: 1\nname: {NAME}\nnetworks:\n");
        for (i, n) in self.nets.iter().enumerate() {
            y.push_str(&format!("  n{i}:\n"));
            if n.subnet {
                y.push_str(&format!("    subnet: 10.6{i}.0.0/24\n"));
            }
            if n.ipv6 {
                y.push_str(&format!("    ipv6: {{ subnet: \"fd6{i}::/64\" }}\n"));
            }
            if n.internal {
                y.push_str("    internal: true\n");
            }
            if let Some(m) = n.mtu {
                y.push_str(&format!("    mtu: {m}\n"));
            }
            if n.icc {
                y.push_str("    options: { icc: false }\n");
            }
        }
        y.push_str("sandboxes:\n");
        for (i, named) in self.sandboxes.iter().enumerate() {
            if *named {
                y.push_str(&format!("  s{i}: {{ hostname: host{i} }}\n"));
            } else {
                y.push_str(&format!("  s{i}: {{}}\n"));
            }
        }
        y.push_str("endpoints:\n");
        let mut seen = std::collections::BTreeSet::new();
        let mut gateways = std::collections::BTreeSet::new();
        let mut port = 18000;
        for e in &self.eps {
            if !seen.insert((e.sandbox, e.network)) {
                continue;
            }
            let n = &self.nets[e.network];
            let mut extra = String::new();
            if e.fixed_address && n.subnet {
                extra.push_str(&format!(
                    ", address: 10.6{}.0.{}",
                    e.network,
                    100 + e.sandbox
                ));
            }
            if e.mac {
                extra.push_str(&format!(
                    ", mac: \"02:00:00:00:0{}:0{}\"",
                    e.network, e.sandbox
                ));
            }
            if e.gateway && !n.internal && gateways.insert(e.sandbox) {
                extra.push_str(", gateway: true");
            }
            if e.port && !n.internal {
                port += 1;
                extra.push_str(&format!(", ports: [\"{port}:80\"]"));
            }
            y.push_str(&format!(
                "  s{s}-n{n}: {{ network: n{n}, sandbox: s{s}{extra} }}\n",
                s = e.sandbox,
                n = e.network
            ));
        }
        if seen.is_empty() {
            y = y.replace("endpoints:\n", "endpoints: {}\n");
        }
        y
    }

    fn topology(&self) -> Topology {
        spec::parse("gen.yaml", &self.yaml())
            .unwrap_or_else(|e| panic!("generated an invalid file: {e}\n{}", self.yaml()))
    }
}

fn plan(t: &Topology, obs: &Observed) -> Plan {
    let want = desired::build(t, obs).unwrap_or_else(|e| panic!("{e}\n{}", t.file));
    diff::diff(NAME, "gen.yaml", &want, obs).expect("diff")
}

/// Apply `t`'s plan to the simulation; the next plan must be empty.
fn converge(sim: &mut Sim, t: &Topology, yaml: &str) -> Result<(), TestCaseError> {
    let reg = Registry::builtin();
    let first = plan(t, &sim.observe(reg));
    sim.apply(&first);
    let again = plan(t, &sim.observe(reg));
    prop_assert!(
        again.is_empty(),
        "after applying\n{}\nto the simulated kernel, the plan is not empty:\n{}\nfile:\n{yaml}",
        first.render_text("gen.yaml", false),
        again.render_text("gen.yaml", false)
    );
    Ok(())
}

fn destroy(sim: &mut Sim) -> Result<(), TestCaseError> {
    let reg = Registry::builtin();
    let obs = sim.observe(reg);
    let p = diff::diff(NAME, "gen.yaml", &State::default(), &obs).expect("diff");
    sim.apply(&p);
    let left = sim.observe(reg).state;
    prop_assert!(
        left.namespaces.is_empty() && left.links.is_empty() && left.endpoints.is_empty(),
        "destroy left {}",
        Sim::network_part(&left)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn one_apply_converges_the_simulated_kernel(a in generated(), b in generated()) {
        let mut sim = Sim::new(NAME);
        converge(&mut sim, &a.topology(), &a.yaml())?;
        converge(&mut sim, &b.topology(), &b.yaml())?;
        converge(&mut sim, &a.topology(), &a.yaml())?;
        destroy(&mut sim)?;
    }
}

#[test]
fn the_simulation_carries_kernel_side_effects() {
    // A MAC change takes the interface down: its default route goes, and
    // the plan must set it again (the diff knows; the simulation enforces).
    let reg = Registry::builtin();
    let mut sim = Sim::new(NAME);
    let t = spec::parse(
        "gen.yaml",
        "version: 1\nname: gen\nnetworks: { n: { subnet: 10.61.0.0/24 } }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: n, sandbox: s }\n",
    )
    .unwrap();
    sim.apply(&plan(&t, &sim.observe(reg)));
    assert_eq!(sim.observe(reg).state.routes.len(), 1);
    let t2 = spec::parse(
        "gen.yaml",
        "version: 1\nname: gen\nnetworks: { n: { subnet: 10.61.0.0/24 } }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: n, sandbox: s, mac: \"02:00:00:00:00:09\" }\n",
    )
    .unwrap();
    let p = plan(&t2, &sim.observe(reg));
    // Without the route in the plan, the simulation would lose it.
    let mut endpoint_only = p.clone();
    endpoint_only
        .actions
        .retain(|a| !matches!(a.resource, cnm::plan::Resource::Route(_)));
    let mut lossy = sim.clone();
    lossy.apply(&endpoint_only);
    assert!(lossy.observe(reg).state.routes.is_empty());
    sim.apply(&p);
    assert_eq!(sim.observe(reg).state.routes.len(), 1);
}

/// ipvlan, which the CI machines' kernel lacks, against the simulation:
/// the example (an l2 and an l3 network) converges in one apply, the l3
/// sandbox's default route goes out of its interface with no next hop,
/// the endpoints share their parent's MAC, and destroy leaves nothing.
#[test]
fn ipvlan_converges_the_simulated_kernel() -> Result<(), TestCaseError> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/ipvlan.yaml");
    let yaml = std::fs::read_to_string(path)
        .unwrap()
        .replace("name: ipv", "name: gen");
    let t = spec::parse("gen.yaml", &yaml).unwrap();
    let reg = Registry::builtin();
    let mut sim = Sim::new(NAME);
    sim.add_host_link("lan0", [2, 0, 0, 0, 0, 0x10]);
    sim.add_host_link("lan1", [2, 0, 0, 0, 0, 0x11]);
    converge(&mut sim, &t, &yaml)?;
    let state = sim.observe(reg).state;
    let db = &state.endpoints["db-routed"];
    assert_eq!(db.kind, "ipvlan");
    assert_eq!(db.mac, Some([2, 0, 0, 0, 0, 0x11]));
    assert!(
        db.settings.contains(&("mode".into(), "l3".into())),
        "{:?}",
        db.settings
    );
    let routes: Vec<_> = state
        .routes
        .values()
        .map(|r| (r.sandbox.as_str(), r.gateway))
        .collect();
    assert_eq!(
        routes,
        [("db", None), ("web", Some("10.78.0.1".parse().unwrap()))]
    );
    // show, with the record an apply writes: the parent's MAC is not
    // written back (the file cannot ask for it), so applying what show
    // prints plans nothing.
    let record = cnm::store::AppliedRecord {
        topology: serde_json::to_value(cnm::topology::file::FileTopology::from_spec(&t)).unwrap(),
        ..Default::default()
    };
    let shown = cnm::show::show(NAME, &sim.observe(reg), Some(&record));
    assert!(
        shown.endpoints.values().all(|e| e.mac.is_none()),
        "{shown:?}"
    );
    let again = serde_json::to_string(&shown).unwrap();
    let t_shown = spec::parse("gen.json", &again).unwrap();
    assert!(plan(&t_shown, &sim.observe(reg)).is_empty());
    // Another mode is another interface: replaced, and converged again.
    let l3s = yaml.replace(
        "ipvlan_mode: l3 }",
        "ipvlan_mode: l3s, ipvlan_flag: private }",
    );
    let t2 = spec::parse("gen.yaml", &l3s).unwrap();
    let p = plan(&t2, &sim.observe(reg));
    assert!(
        p.render_text("gen.yaml", false)
            .contains("! endpoint db-routed (db eth0, ipvlan) (its ipvlan settings changed)"),
        "{}",
        p.render_text("gen.yaml", false)
    );
    converge(&mut sim, &t2, &l3s)?;
    destroy(&mut sim)
}

// --- the replay on the real kernel ---

const INNER: &str = "CNM_MODEL_REPLAY_INNER";

/// A few topologies from a fixed seed: (before, after) pairs.
fn seeded_cases(n: usize) -> Vec<(Gen, Gen)> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let s = (generated(), generated());
    (0..n)
        .map(|_| s.new_tree(&mut runner).expect("a case").current())
        .collect()
}

/// Cases the property found: (before, after).
fn regressions() -> Vec<(Gen, Gen)> {
    let net = |subnet| Net {
        subnet,
        internal: false,
        mtu: None,
        ipv6: false,
        icc: false,
    };
    let ep = |network| Ep {
        sandbox: 0,
        network,
        fixed_address: false,
        mac: false,
        gateway: false,
        port: false,
    };
    // The only endpoint goes and another takes its eth0 with the same
    // gateway: the default route must be set again.
    vec![(
        Gen {
            nets: vec![net(false)],
            sandboxes: vec![false],
            eps: vec![ep(0)],
        },
        Gen {
            nets: vec![net(true), net(false)],
            sandboxes: vec![false],
            eps: vec![ep(1)],
        },
    )]
}

#[test]
fn regressions_converge_the_simulated_kernel() {
    for (a, b) in regressions() {
        let mut sim = Sim::new(NAME);
        converge(&mut sim, &a.topology(), &a.yaml()).unwrap();
        converge(&mut sim, &b.topology(), &b.yaml()).unwrap();
    }
}

#[test]
fn replay_on_the_real_kernel() {
    rerun::on_private_host("model replay", "replay_inner", INNER);
}

#[tokio::test]
async fn replay_inner() {
    if !rerun::is_inner(INNER) {
        return;
    }
    let reg = Registry::builtin();
    let mut sim = Sim::new(NAME);
    let cases = regressions().into_iter().chain(seeded_cases(4));
    for (i, (a, b)) in cases.enumerate() {
        for g in [a, b] {
            let t = g.topology();
            cnm::Engine::default()
                .apply(&t, |_| Ok(()))
                .await
                .unwrap_or_else(|e| panic!("case {i}: apply: {e}\n{}", g.yaml()));
            let again = cnm::Engine::default().plan(&t).await.expect("plan");
            assert!(
                again.plan.is_empty(),
                "case {i}: one apply did not converge the real kernel:\n{}\nfile:\n{}",
                again.plan.render_text("gen.yaml", false),
                g.yaml()
            );
            let p = plan(&t, &sim.observe(reg));
            sim.apply(&p);
            let (real, _) = cnm::observe::observe(
                &cnm::store::Store::system().topology(NAME).unwrap(),
                &Default::default(),
            )
            .await
            .expect("observe");
            let (want, got) = (
                Sim::network_part(&sim.observe(reg).state),
                Sim::network_part(&real.state),
            );
            let diff = similar::TextDiff::from_lines(&want, &got)
                .unified_diff()
                .header("simulated", "real")
                .to_string();
            assert!(
                diff.is_empty(),
                "case {i}: the real kernel differs from the simulation:\n{diff}\nfile:\n{}",
                g.yaml()
            );
        }
    }
}
