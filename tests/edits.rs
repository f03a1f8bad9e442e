//! `Engine::apply_edited`, the read-modify-apply runtimes' calls need (a
//! CNI ADD or DEL, Docker's driver protocol): six concurrent edits that
//! each add a sandbox all land (none undoes another), the sandboxes reach
//! each other, and six concurrent edits that each remove one leave
//! nothing: the last one destroys the topology and its records.
//!
//! Privileged: the outer test re-runs this binary on a private host.

#[path = "support/rerun.rs"]
mod rerun;

use cnm::apply::{Edited, Engine};
use cnm::topology::file::{FileEndpoint, FileNetwork, FileSandbox, FileTopology};
use std::process::Command;

const INNER: &str = "CNM_EDITS_INNER";
const NAME: &str = "edt";
const N: usize = 6;

#[test]
fn concurrent_edits_all_land() {
    rerun::on_private_host("edits", "inner_concurrent_edits", INNER);
}

/// Sandbox `s{i}` joined to the one network, the topology made when absent.
fn with(i: usize, f: Option<FileTopology>) -> Option<FileTopology> {
    let mut f = f.unwrap_or_else(|| FileTopology {
        version: 1,
        name: NAME.into(),
        ..Default::default()
    });
    f.networks
        .entry("lan".into())
        .or_insert_with(|| FileNetwork {
            subnet: Some("10.66.0.0/24".into()),
            ..Default::default()
        });
    f.sandboxes.insert(format!("s{i}"), FileSandbox::default());
    f.endpoints.insert(
        format!("e{i}"),
        FileEndpoint {
            network: "lan".into(),
            sandbox: format!("s{i}"),
            ..Default::default()
        },
    );
    Some(f)
}

/// Sandbox `s{i}` gone; no sandbox left: no topology.
fn without(i: usize, f: Option<FileTopology>) -> Option<FileTopology> {
    let mut f = f?;
    f.sandboxes.remove(&format!("s{i}"));
    f.endpoints.remove(&format!("e{i}"));
    (!f.sandboxes.is_empty()).then_some(f)
}

fn netns_list() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One edit of the file form, as a task needs it.
type Change = Box<dyn Fn(Option<FileTopology>) -> Option<FileTopology> + Send + Sync>;

async fn all(edits: Vec<Change>) -> Vec<Edited> {
    let mut tasks = Vec::new();
    for e in edits {
        tasks.push(tokio::spawn(async move {
            let edit = move |f: Option<FileTopology>| Ok(e(f));
            Engine::default()
                .apply_edited(NAME, &edit, |_| Ok(()))
                .await
                .unwrap_or_else(|err| panic!("an edit failed: {err}"))
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[test]
fn inner_concurrent_edits() {
    if !rerun::is_inner(INNER) {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let adds = (0..N)
            .map(|i| Box::new(move |f| with(i, f)) as Change)
            .collect();
        let done = all(adds).await;
        assert!(
            done.iter().all(|d| matches!(d, Edited::Applied(..))),
            "{done:?}"
        );
        let t = cnm::apply::recorded_topology(NAME)
            .unwrap()
            .expect("recorded");
        assert_eq!(
            t.sandboxes.len(),
            N,
            "an edit undid another: {:?}",
            t.sandboxes.keys()
        );
        let planned = Engine::default().plan(&t).await.unwrap();
        assert!(
            planned.plan.is_empty(),
            "{}",
            planned.plan.render_text(NAME, false)
        );
        let names = netns_list();
        assert!(
            (0..N).all(|i| names.contains(&format!("{NAME}-s{i}"))),
            "{names}"
        );
        let ping = Command::new("ip")
            .args(["netns", "exec", "edt-s0", "ping", "-c1", "-W2", "-q"])
            .arg(
                t.endpoints["e5"]
                    .address
                    .map_or("10.66.0.7".into(), |a| a.to_string()),
            )
            .status()
            .unwrap();
        assert!(ping.success(), "s0 cannot reach s5");

        let removes = (0..N)
            .map(|i| Box::new(move |f| without(i, f)) as Change)
            .collect();
        let done = all(removes).await;
        let destroyed = done
            .iter()
            .filter(|d| matches!(d, Edited::Destroyed(_)))
            .count();
        assert_eq!(destroyed, 1, "{done:?}");
        assert!(cnm::apply::recorded_topology(NAME).unwrap().is_none());
        assert!(!netns_list().contains("edt-"), "{}", netns_list());
    });
}
