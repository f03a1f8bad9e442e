//! Golden nftables rulesets (tests/golden/nft-*.snap): the tables cnm would
//! write for each example, in the shape `nft -j list table` shows them, so a
//! change in generated rules is reviewed as a diff. Pure, no root.
//!
//! `live_tables_match_their_goldens` applies examples on a private host and
//! compares what the kernel lists with the committed golden, byte for byte
//! as JSON values.

#[path = "support/rerun.rs"]
mod rerun;

use cnm::firewall::listing;
use cnm::model::{HostFacts, Observed};
use cnm::spec::{self, Topology};
use std::path::Path;

const EXAMPLES: [&str; 5] = [
    "quickstart.yaml",
    "two-tier.yaml",
    "null-host.yaml",
    "overlay.yaml",
    "macvlan.yaml",
];
/// Not an example: what the examples leave out (`icc: false`, IPv6, a
/// port on one host address, an internal network).
const EXTRA: (&str, &str) = (
    "icc-ipv6.yaml",
    r#"version: 1
name: fw
networks:
  app:
    subnet: 10.71.0.0/24
    ipv6: { subnet: "fd71::/64" }
    options: { icc: false }
  back: { subnet: 10.72.0.0/24, internal: true }
sandboxes: { a: {}, b: {} }
endpoints:
  a-app: { network: app, sandbox: a, ports: ["18080:80", "127.0.0.1:15353:53/udp", "[fd71::99]:19090:90"] }
  b-app: { network: app, sandbox: b }
  b-back: { network: back, sandbox: b }
"#,
);
/// Applied on the private host (overlay needs `--host`, macvlan a parent).
const LIVE: [&str; 4] = [
    "quickstart.yaml",
    "two-tier.yaml",
    "null-host.yaml",
    "icc-ipv6.yaml",
];
const INNER: &str = "CNM_NFT_GOLDEN_INNER";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> Topology {
    if name == EXTRA.0 {
        return spec::parse(name, EXTRA.1).unwrap();
    }
    let path = root().join("examples/topologies").join(name);
    let mut t = spec::load(&path).unwrap();
    if !t.hosts.is_empty() {
        let first = t.hosts.keys().next().cloned();
        t.select_host(first.as_deref()).unwrap();
    }
    t
}

/// The golden text of an example: pretty JSON, or a line saying there is
/// no firewall.
fn generated(name: &str) -> String {
    let t = example(name);
    // Overlay: this machine is the first host (its VTEP address is here).
    let local_addrs = t
        .hosts
        .values()
        .take(1)
        .map(|h| (h.address, ("eth0".to_string(), 1500)))
        .collect();
    let host = Observed {
        state: Default::default(),
        host: HostFacts {
            local_addrs,
            ..Default::default()
        },
    };
    let want = cnm::desired::build(&t, &host).unwrap();
    match &want.firewall {
        Some(fw) => serde_json::to_string_pretty(&listing::generated(&t.name, fw)).unwrap(),
        None => "no firewall".into(),
    }
}

fn snap_name(example: &str) -> String {
    format!("nft-{}", example.trim_end_matches(".yaml"))
}

#[test]
fn rulesets_of_the_examples() {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(root().join("tests/golden"));
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| {
        for name in EXAMPLES.into_iter().chain([EXTRA.0]) {
            insta::assert_snapshot!(snap_name(name), generated(name));
        }
    });
}

/// The body of a committed snapshot (after insta's header).
fn golden(example: &str) -> serde_json::Value {
    let path = root()
        .join("tests/golden")
        .join(format!("{}.snap", snap_name(example)));
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text.splitn(3, "---\n").nth(2).expect("insta header");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn live_tables_match_their_goldens() {
    rerun::on_private_host("nft goldens live", "inner", INNER);
}

#[tokio::test]
async fn inner() {
    if !rerun::is_inner(INNER) {
        return;
    }
    for name in LIVE {
        let t = example(name);
        cnm::Engine::default()
            .apply(&t, |_| Ok(()))
            .await
            .expect("apply");
        let live = listing::live(&t.name).expect("nft list");
        let want = golden(name);
        let (live, want) = (
            serde_json::to_string_pretty(&live).unwrap(),
            serde_json::to_string_pretty(&want).unwrap(),
        );
        let diff = similar::TextDiff::from_lines(&want, &live)
            .unified_diff()
            .header("golden", "live")
            .to_string();
        assert!(
            diff.is_empty(),
            "{name}: the live tables differ from tests/golden/{}.snap:\n{diff}",
            snap_name(name)
        );
    }
}
