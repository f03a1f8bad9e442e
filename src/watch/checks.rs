//! What watch looks at on its own, every second or so, because no event
//! says it: the resolver died, a borrowed namespace is another one now (a
//! container started again), a topology's record changed (`--topology`).

use crate::spec::Topology;
use std::time::Duration;

/// How often watch looks whether the embedded resolver still runs.
const RESOLVER_CHECK: Duration = Duration::from_secs(1);

/// Resolves when the resolver this topology was given has died (checked
/// every second: a look at /proc); never without a topology.
pub(super) async fn resolver_gone(t: Option<&Topology>) {
    let Some(name) = t.map(|t| t.name.clone()) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(RESOLVER_CHECK).await;
        if crate::resolver::control::needs_restart(&name) {
            return;
        }
    }
}

/// How often watch looks whether a borrowed namespace (`netns:`) is
/// another one now (a container started again): no event says so.
const BORROWED_CHECK: Duration = Duration::from_secs(1);

/// Resolves, with the sandbox's name, when the namespace a sandbox of
/// this machine borrows is found and is not the one recorded (a stopped
/// container is left to the next resync: it is an error to plan, not a
/// change to chase); never without borrowed sandboxes.
pub(super) async fn borrowed_moved(t: Option<&Topology>) -> String {
    let refs: Vec<(String, crate::spec::NetnsRef)> = t
        .map(|t| {
            t.sandboxes
                .values()
                .filter(|s| t.this_host.is_none() || s.host == t.this_host)
                .filter_map(|s| Some((s.name.clone(), s.netns.clone()?)))
                .collect()
        })
        .unwrap_or_default();
    let (Some(t), false) = (t, refs.is_empty()) else {
        return std::future::pending().await;
    };
    let name = t.name.clone();
    loop {
        tokio::time::sleep(BORROWED_CHECK).await;
        let Ok(records) = crate::store::Store::system()
            .topology(&name)
            .and_then(|s| s.namespaces())
        else {
            continue;
        };
        for (sandbox, r) in &refs {
            // Not attached yet: the reconcile that attaches it is due.
            let Some(recorded) = records.get(sandbox).and_then(|r| r.ino) else {
                continue;
            };
            if let Ok(now) = crate::observe::borrowed::identity(r).await {
                if now != recorded {
                    return sandbox.clone();
                }
            }
        }
    }
}

/// How often watch looks at a recorded topology it keeps (`--topology`):
/// a stat of one file.
const RECORD_CHECK: Duration = Duration::from_millis(200);

/// Resolves when the record of topology `name` is another file, or the
/// same file changed, since `seen` (what it was when last loaded).
pub(super) async fn record_moved(name: &str, seen: Option<crate::safe::Entry>) {
    let Ok(store) = crate::store::Store::system().topology(name) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(RECORD_CHECK).await;
        let now = store.applied_stamp().ok().flatten();
        if now.map(stamp) != seen.map(stamp) {
            return;
        }
    }
}

fn stamp(e: crate::safe::Entry) -> (crate::safe::FileId, u64, (i64, i64)) {
    (e.id, e.size, e.ctime)
}
