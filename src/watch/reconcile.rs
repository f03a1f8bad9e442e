//! One apply of a watcher, and how it went (for the log, `cnm status` and
//! systemd).

use super::reason::Reason;
use super::status;
use crate::apply::{self, ApplyError};
use crate::plan::Op;
use crate::spec::Topology;
use std::time::Instant;
use tracing::{error, info};

/// The watcher's memory of its last desired state.
type Memo = std::sync::Arc<std::sync::Mutex<crate::desired::Incremental>>;

/// A plan's notes, in the watcher's log.
fn log_notes(p: &crate::plan::Plan) -> Result<(), String> {
    for n in &p.notes {
        tracing::warn!("{n}");
    }
    Ok(())
}

/// One apply, and how it went (for `cnm status` and systemd). `record`:
/// the topology is its record's (`--topology`), read again under the lock;
/// the topology applied then comes back.
pub(super) async fn reconcile(
    t: &Topology,
    record: Option<(&str, Option<&str>)>,
    why: &Reason,
    trust: apply::Trust,
    memo: Memo,
) -> (Result<Option<Topology>, ApplyError>, status::Convergence) {
    let start = Instant::now();
    let result = converge(t, record, why, (trust, memo), start).await;
    let (summary, error) = match &result {
        Ok((s, _)) => (s.clone(), None),
        Err(e) => (Default::default(), Some(e.to_string())),
    };
    let last = status::Convergence {
        at: status::now(),
        result: if error.is_none() {
            "converged"
        } else {
            "failed"
        }
        .into(),
        reason: why.to_string(),
        added: summary.add,
        changed: summary.change,
        destroyed: summary.destroy,
        ms: start.elapsed().as_millis() as u64,
        error,
    };
    (result.map(|(_, t)| t), last)
}

async fn converge(
    t: &Topology,
    record: Option<(&str, Option<&str>)>,
    why: &Reason,
    (trust, memo): (apply::Trust, Memo),
    start: Instant,
) -> Result<(crate::plan::Summary, Option<Topology>), ApplyError> {
    let engine = apply::Engine::default().trusting(trust).remembering(memo);
    let done = match record {
        Some((name, host)) => engine
            .on_host(host)
            .apply_recorded(name, log_notes)
            .await
            .map(|(p, t)| (p, Some(t))),
        None => engine.apply(t, log_notes).await.map(|p| (p, None)),
    };
    match done {
        Ok((plan, applied)) if plan.is_empty() => {
            tracing::debug!(topology = %t.name, reason = ?why.to_string(), "converged, nothing to do");
            Ok((plan.summary(), applied))
        }
        Ok((plan, applied)) => {
            for a in &plan.actions {
                let op = match a.op {
                    Op::Create => "create",
                    Op::Update => "update",
                    Op::Delete => "delete",
                    Op::Replace => "replace",
                };
                info!(topology = %t.name, op, object = %a.resource.label(), "applied");
            }
            let s = plan.summary();
            info!(
                topology = %t.name, reason = ?why.to_string(), added = s.add, changed = s.change, destroyed = s.destroy,
                ms = start.elapsed().as_millis() as u64, "converged"
            );
            Ok((s, applied))
        }
        Err(e) => {
            error!(topology = %t.name, reason = ?why.to_string(), "{e}");
            Err(e)
        }
    }
}
