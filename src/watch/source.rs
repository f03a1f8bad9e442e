//! What a watcher keeps: a file (`cnm watch FILE`) or a topology's record
//! (`cnm watch --topology NAME`, for topologies a runtime edits or when the
//! file is not at hand). Loading it, and claiming its topology.

use super::claim::{self, Claim};
use super::WatchError;
use crate::apply;
use crate::spec::{self, Topology};
use crate::store::Store;
use std::path::PathBuf;
use tracing::{error, info, warn};

/// Where the desired state comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A topology file.
    File(PathBuf),
    /// The applied record of the topology of that name.
    Record(String),
}

impl Source {
    /// How the source is named in the log and in `cnm status`: the file's
    /// canonical path, or `topology NAME (its record)`.
    pub fn shown(&self) -> String {
        match self {
            Source::File(p) => std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            Source::Record(n) => format!("topology {n} (its record)"),
        }
    }

    /// The file's canonical path: what applies record as their source
    /// (pruning follows it). None for a record.
    pub fn file(&self) -> Option<String> {
        match self {
            Source::File(p) => std::fs::canonicalize(p)
                .ok()
                .map(|p| p.display().to_string()),
            Source::Record(_) => None,
        }
    }

    /// Load the desired topology; on error log every problem and return
    /// `None` (the last valid topology stays the enforced one).
    pub fn load(&self, host: Option<&str>) -> Option<Topology> {
        let loaded = match self {
            Source::File(p) => spec::load(p).map_err(|e| e.to_string()),
            Source::Record(n) => match apply::recorded_topology(n) {
                Ok(Some(t)) => Ok(t),
                Ok(None) => Err(format!("no topology {n} is applied on this host")),
                Err(e) => Err(e.to_string()),
            },
        }
        .and_then(|mut t| {
            t.select_host(host)?;
            Ok(t)
        });
        match loaded {
            Ok(t) => Some(t),
            Err(e) => {
                for line in e.lines() {
                    error!("{line}");
                }
                error!(
                    "ignoring this version of {}; the last valid one stays applied",
                    self.shown()
                );
                None
            }
        }
    }
}

/// Take topology `name` for this watcher: refused while another running
/// watcher holds it. A new name (the file renamed its topology) releases
/// the old one, and topologies this file applied before under other names
/// are pruned (GitOps: what the source no longer describes goes).
pub(super) async fn hold(
    name: &str,
    source: &Source,
    held: &mut Option<Claim>,
) -> Result<(), WatchError> {
    if held.as_ref().is_some_and(|c| c.topology() == name) {
        return Ok(());
    }
    let store = Store::system();
    let claim =
        Claim::take(&store, name, &source.shown()).map_err(|e| WatchError::Held(e.to_string()))?;
    // The old claim (another name) goes as the new one is taken.
    *held = Some(claim);
    if let Some(src) = source.file() {
        prune(&store, &src, name).await;
    }
    Ok(())
}

/// Destroy topologies last applied from `source` under another name than
/// `keep`, unless another running watcher holds them.
async fn prune(store: &Store, source: &str, keep: &str) {
    for name in store.topologies().unwrap_or_default() {
        let Ok(ts) = store.topology(&name) else {
            continue;
        };
        let from_here = ts
            .applied()
            .ok()
            .flatten()
            .is_some_and(|r| r.source.as_deref() == Some(source));
        let kept_elsewhere =
            claim::holder(store, &name).is_some_and(|w| w.pid != std::process::id());
        if name == keep || !from_here || kept_elsewhere {
            continue;
        }
        warn!(topology = %name, "no longer in {source} (its topology is now {keep}): destroying it");
        match apply::Engine::default()
            .destroy(&name, &name, |_| Ok(()))
            .await
        {
            Ok(plan) => info!(topology = %name, destroyed = plan.summary().destroy, "pruned"),
            Err(e) => error!(topology = %name, "cannot prune: {e}"),
        }
    }
}
