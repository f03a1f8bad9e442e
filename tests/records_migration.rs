//! Records written before the records store (cnm at 4fbccba) load, and the
//! next plan has nothing to do. Those records were: a plain file per
//! sandbox holding its namespace name (no inode), the nft fingerprint, and
//! nothing under /var/lib/cnm; namespaces carried no loopback mark and the
//! firewall tables no owner chain. The test applies the examples with this
//! cnm, turns records and marks back into that shape, plans, applies (which
//! writes today's records) and plans again. Privileged: run on a private
//! host; the inner steps do nothing elsewhere.

#[path = "support/rerun.rs"]
mod rerun;

use cnm::store::Store;
use std::path::Path;
use std::process::Command;

const INNER: &str = "CNM_MIGRATION_INNER";
const EXAMPLES: [&str; 3] = ["quickstart.yaml", "two-tier.yaml", "null-host.yaml"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sh(cmd: &str) {
    let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn records_of_the_old_format_plan_nothing() {
    rerun::on_private_host("records migration", "inner", INNER);
}

/// Records and marks as cnm at 4fbccba left them.
fn downgrade(topology: &str) {
    let store = Store::system().topology(topology).unwrap();
    for (sandbox, rec) in store.namespaces().unwrap() {
        std::fs::write(
            format!("/run/cnm/topologies/{topology}/sandboxes/{sandbox}"),
            format!("{}\n", rec.netns),
        )
        .unwrap();
        sh(&format!("ip -n {} link set dev lo alias ''", rec.netns));
        sh(&format!(
            "! ip -n {} -d link show dev lo | grep -q alias",
            rec.netns
        ));
    }
    let lib = format!("/var/lib/cnm/topologies/{topology}");
    if Path::new(&lib).exists() {
        std::fs::remove_dir_all(&lib).unwrap();
    }
    let table = format!("inet cnm-{topology}");
    sh(&format!(
        "nft flush chain {table} owner && nft delete chain {table} owner"
    ));
    // The fingerprint the old cnm recorded: of the tables as they are.
    cnm::firewall::nft::record(&store).unwrap();
}

#[tokio::test]
async fn inner() {
    if !rerun::is_inner(INNER) {
        return;
    }
    let topologies: Vec<_> = EXAMPLES
        .iter()
        .map(|e| cnm::spec::load(&root().join("examples/topologies").join(e)).unwrap())
        .collect();
    for t in &topologies {
        cnm::Engine::default()
            .apply(t, |_| Ok(()))
            .await
            .expect("apply");
    }
    for t in &topologies {
        downgrade(&t.name);
    }
    for t in &topologies {
        let p = cnm::Engine::default()
            .plan(t)
            .await
            .expect("plan over old records");
        assert!(
            p.plan.is_empty(),
            "{}: old records do not plan nothing:\n{}",
            t.name,
            p.plan.render_text(&t.file, false)
        );
        cnm::Engine::default()
            .apply(t, |_| Ok(()))
            .await
            .expect("apply");
        let store = Store::system().topology(&t.name).unwrap();
        assert!(
            store.applied().unwrap().is_some(),
            "{}: no applied record written",
            t.name
        );
        assert!(
            store
                .namespaces()
                .unwrap()
                .values()
                .all(|r| r.ino.is_some()),
            "{}: namespace records not upgraded",
            t.name
        );
        let again = cnm::Engine::default().plan(t).await.expect("plan");
        assert!(again.plan.is_empty(), "{}: not converged", t.name);
    }
    // The upgraded records still own everything: destroy leaves nothing.
    for t in &topologies {
        cnm::Engine::default()
            .destroy(&t.name, &t.file, |_| Ok(()))
            .await
            .expect("destroy");
    }
    let left = String::from_utf8(
        Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(!left.contains("cnm:"), "marked links left:\n{left}");
    sh("test -z \"$(ip netns list)\"");
}
