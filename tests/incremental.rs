//! Property: the desired state built incrementally (reusing what the last
//! build of the same topology computed where its inputs are unchanged, as
//! `cnm watch` does) equals the one built from scratch, after every edit of
//! a random sequence, with the simulated kernel applying each plan in
//! between (so addresses already given, and the observed state, move too).
//! Pure: no root needed.

#[path = "support/sim.rs"]
mod sim;

use cnm::desired::{self, Incremental};
use cnm::drivers::Registry;
use cnm::{diff, spec};
use proptest::prelude::*;
use sim::Sim;
use std::collections::BTreeMap;

const NAME: &str = "inc";

/// A topology as a few knobs an edit turns.
#[derive(Debug, Clone, Default)]
struct Model {
    embedded: bool,
    /// Per network: internal.
    internal: [bool; 3],
    /// Sandbox → (hostname, own dns servers, an extra host).
    sandboxes: BTreeMap<u8, (Option<u8>, bool, bool)>,
    /// (sandbox, network) → (aliases, gateway, fixed address).
    endpoints: BTreeMap<(u8, u8), (u8, bool, bool)>,
}

#[derive(Debug, Clone)]
enum Edit {
    AddSandbox(u8),
    RemoveSandbox(u8),
    Hostname(u8, Option<u8>),
    SandboxDns(u8),
    ExtraHost(u8),
    Join(u8, u8, bool, bool),
    Leave(u8, u8),
    Aliases(u8, u8, u8),
    ToggleEmbedded,
    ToggleInternal(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let sb = 0u8..6;
    let net = 0u8..3;
    prop_oneof![
        3 => sb.clone().prop_map(Edit::AddSandbox),
        1 => sb.clone().prop_map(Edit::RemoveSandbox),
        1 => (sb.clone(), prop::option::of(0u8..3)).prop_map(|(s, h)| Edit::Hostname(s, h)),
        1 => sb.clone().prop_map(Edit::SandboxDns),
        1 => sb.clone().prop_map(Edit::ExtraHost),
        4 => (sb.clone(), net.clone(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(s, n, f, g)| Edit::Join(s, n, f, g)),
        2 => (sb.clone(), net.clone()).prop_map(|(s, n)| Edit::Leave(s, n)),
        1 => (sb, net.clone(), 0u8..3).prop_map(|(s, n, a)| Edit::Aliases(s, n, a)),
        1 => Just(Edit::ToggleEmbedded),
        1 => net.prop_map(Edit::ToggleInternal),
    ]
}

impl Model {
    fn edit(&mut self, e: &Edit) {
        match *e {
            Edit::AddSandbox(s) => {
                self.sandboxes.entry(s).or_default();
            }
            Edit::RemoveSandbox(s) => {
                self.sandboxes.remove(&s);
                self.endpoints.retain(|(es, _), _| *es != s);
            }
            Edit::Hostname(s, h) => {
                if let Some(sb) = self.sandboxes.get_mut(&s) {
                    sb.0 = h;
                }
            }
            Edit::SandboxDns(s) => {
                if let Some(sb) = self.sandboxes.get_mut(&s) {
                    sb.1 = !sb.1;
                }
            }
            Edit::ExtraHost(s) => {
                if let Some(sb) = self.sandboxes.get_mut(&s) {
                    sb.2 = !sb.2;
                }
            }
            Edit::Join(s, n, fixed, gateway) => {
                if self.sandboxes.contains_key(&s) {
                    let gateway = gateway
                        && !self.internal[n as usize]
                        && !self.endpoints.iter().any(|((es, _), v)| *es == s && v.1);
                    self.endpoints.insert((s, n), (0, gateway, fixed));
                }
            }
            Edit::Leave(s, n) => {
                self.endpoints.remove(&(s, n));
            }
            Edit::Aliases(s, n, a) => {
                if let Some(ep) = self.endpoints.get_mut(&(s, n)) {
                    ep.0 = a;
                }
            }
            Edit::ToggleEmbedded => self.embedded = !self.embedded,
            Edit::ToggleInternal(n) => {
                let i = n as usize;
                self.internal[i] = !self.internal[i];
                for ((_, en), ep) in self.endpoints.iter_mut() {
                    if *en == n {
                        ep.1 = false;
                    }
                }
            }
        }
    }

    fn yaml(&self) -> String {
        let mut y = format!("version: 1\nname: {NAME}\n");
        if !self.embedded {
            y.push_str("dns: { embedded: false }\n");
        }
        y.push_str("networks:\n");
        for (i, internal) in self.internal.iter().enumerate() {
            y.push_str(&format!(
                "  n{i}: {{ subnet: 10.7{i}.0.0/24, internal: {internal} }}\n"
            ));
        }
        y.push_str(if self.sandboxes.is_empty() {
            "sandboxes: {}\n"
        } else {
            "sandboxes:\n"
        });
        for (s, (host, dns, extra)) in &self.sandboxes {
            let mut attrs = Vec::new();
            if let Some(h) = host {
                attrs.push(format!("hostname: h{h}"));
            }
            if *dns {
                attrs.push("dns: { servers: [192.0.2.53] }".to_string());
            }
            if *extra {
                attrs.push("extra_hosts: [\"db:192.0.2.7\"]".to_string());
            }
            y.push_str(&format!("  s{s}: {{ {} }}\n", attrs.join(", ")));
        }
        y.push_str(if self.endpoints.is_empty() {
            "endpoints: {}\n"
        } else {
            "endpoints:\n"
        });
        for ((s, n), (aliases, gateway, fixed)) in &self.endpoints {
            let mut attrs = vec![format!("network: n{n}"), format!("sandbox: s{s}")];
            if *aliases > 0 {
                let names: Vec<String> = (0..*aliases).map(|a| format!("a{s}x{a}")).collect();
                attrs.push(format!("aliases: [{}]", names.join(", ")));
            }
            if *gateway {
                attrs.push("gateway: true".into());
            }
            if *fixed {
                attrs.push(format!("address: 10.7{n}.0.{}", 100 + s));
            }
            y.push_str(&format!("  e{s}n{n}: {{ {} }}\n", attrs.join(", ")));
        }
        y
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn incremental_desired_state_equals_a_full_build(
        start in prop::collection::vec(edit(), 0..8),
        edits in prop::collection::vec(edit(), 1..16),
    ) {
        let reg = Registry::builtin();
        let none = BTreeMap::new();
        let mut model = Model { embedded: true, ..Model::default() };
        for e in &start {
            model.edit(e);
        }
        let mut sim = Sim::new(NAME);
        let mut memo = Incremental::default();
        for e in std::iter::once(None).chain(edits.iter().map(Some)) {
            if let Some(e) = e {
                model.edit(e);
            }
            let yaml = model.yaml();
            let t = spec::parse("inc.yaml", &yaml)
                .unwrap_or_else(|err| panic!("generated an invalid file: {err}\n{yaml}"));
            let obs = sim.observe(reg);
            let full = desired::build_with(reg, &t, &obs, &none).expect("full build");
            let reused = desired::build_reusing(reg, &t, &obs, &none, Some(&mut memo))
                .expect("incremental build");
            prop_assert_eq!(&reused, &full, "after {:?}, file:\n{}", e, yaml);
            // Built again unchanged: every sandbox served by the resolver
            // is reused, and the state is still the same.
            let again = desired::build_reusing(reg, &t, &obs, &none, Some(&mut memo))
                .expect("incremental build");
            prop_assert_eq!(&again, &full);
            if model.embedded {
                prop_assert_eq!(memo.counts().1, 0, "unchanged inputs computed again");
            }
            let plan = diff::diff(NAME, "inc.yaml", &full, &obs).expect("diff");
            sim.apply(&plan);
        }
    }
}

#[test]
fn an_added_sandbox_is_the_only_part_computed() {
    let reg = Registry::builtin();
    let none = BTreeMap::new();
    let mut model = Model {
        embedded: true,
        ..Model::default()
    };
    for s in 0..5 {
        model.edit(&Edit::AddSandbox(s));
        model.edit(&Edit::Join(s, 0, false, false));
    }
    let sim = Sim::new(NAME);
    let obs = sim.observe(reg);
    let mut memo = Incremental::default();
    let t = spec::parse("inc.yaml", &model.yaml()).expect("valid");
    desired::build_reusing(reg, &t, &obs, &none, Some(&mut memo)).expect("build");
    assert_eq!(memo.counts(), (0, 5));
    model.edit(&Edit::AddSandbox(5));
    model.edit(&Edit::Join(5, 0, false, false));
    let t = spec::parse("inc.yaml", &model.yaml()).expect("valid");
    desired::build_reusing(reg, &t, &obs, &none, Some(&mut memo)).expect("build");
    assert_eq!(memo.counts(), (5, 1));
}

/// Not a test: how long a build of 1,000 sandboxes takes from scratch
/// and reusing, unchanged and after one more sandbox
/// (`cargo test --release --test incremental -- --ignored --nocapture`).
#[test]
#[ignore]
fn timing_at_1000_sandboxes() {
    let reg = Registry::builtin();
    let none = BTreeMap::new();
    let yaml = |n: usize| {
        let mut y = String::from(
            "version: 1\nname: inc\nnetworks:\n  lan: { subnet: 10.96.0.0/16 }\nsandboxes:\n",
        );
        for i in 0..n {
            y.push_str(&format!("  s{i}: {{}}\n"));
        }
        y.push_str("endpoints:\n");
        for i in 0..n {
            y.push_str(&format!("  e{i}: {{ network: lan, sandbox: s{i} }}\n"));
        }
        y
    };
    let sim = Sim::new(NAME);
    let obs = sim.observe(reg);
    let t = spec::parse("inc.yaml", &yaml(1000)).expect("valid");
    let t1 = spec::parse("inc.yaml", &yaml(1001)).expect("valid");
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..10 {
            f();
        }
        start.elapsed() / 10
    };
    let full = time(&mut || {
        desired::build_with(reg, &t, &obs, &none).expect("build");
    });
    let mut memo = Incremental::default();
    desired::build_reusing(reg, &t, &obs, &none, Some(&mut memo)).expect("build");
    let same = time(&mut || {
        desired::build_reusing(reg, &t, &obs, &none, Some(&mut memo)).expect("build");
    });
    let mut flip = false;
    let plus_one = time(&mut || {
        flip = !flip;
        let t = if flip { &t1 } else { &t };
        desired::build_reusing(reg, t, &obs, &none, Some(&mut memo)).expect("build");
    });
    eprintln!("full {full:?}, reusing unchanged {same:?}, reusing ±1 {plus_one:?}");
}
