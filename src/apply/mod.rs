//! Apply: observe → desired → diff → execute → re-observe → verify.
//! `apply` and `destroy` read top to bottom here; the kernel work is in
//! `exec`, the lock in `lock`.

mod exec;
mod lock;

use crate::desired::{self, PlanError};
use crate::diff;
use crate::model::{Observed, State};
use crate::observe::{self, Connections, ObserveError};
use crate::plan::Plan;
use crate::spec::Topology;
use std::time::Duration;

pub use lock::Lock;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{action}: {source}")]
    Kernel {
        action: String,
        source: rtnetlink::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("the kernel did not converge after apply; still pending:\n{0}")]
    NotConverged(String),
    #[error(transparent)]
    Firewall(#[from] crate::firewall::nft::NftError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The whole apply: take the lock, observe, plan (handed to `show` before
/// anything changes), execute, re-observe and verify. Returns the executed plan.
pub async fn converge(t: &Topology, show: impl FnOnce(&Plan)) -> Result<Plan, ApplyError> {
    // Waiting for the lock must not stall the runtime (watch keeps handling
    // signals meanwhile).
    let _lock = tokio::task::spawn_blocking(Lock::acquire)
        .await
        .map_err(|e| ApplyError::Internal(e.to_string()))?
        .map_err(|source| ApplyError::Io {
            context: "cannot take the apply lock".into(),
            source,
        })?;
    let (plan, _, conns) = plan(t).await?;
    show(&plan);
    if plan.is_empty() {
        return Ok(plan);
    }
    execute(&t.name, &plan, conns).await?;
    verify(Some(t), &t.name).await?;
    Ok(plan)
}

/// Observe the kernel and compute the plan for `t`. The connections are
/// handed on to `execute`, so nothing is opened twice.
pub async fn plan(t: &Topology) -> Result<(Plan, Observed, Connections), ApplyError> {
    let (obs, conns) = observe::observe(&t.name).await?;
    let want = desired::build(t, &obs)?;
    let plan = diff::diff(&t.name, &t.file, &want, &obs)?;
    Ok((plan, obs, conns))
}

/// The plan that removes everything topology `name` owns.
pub async fn destroy_plan(name: &str, file: &str) -> Result<(Plan, Connections), ApplyError> {
    let (obs, conns) = observe::observe(name).await?;
    let plan = diff::diff(name, file, &State::default(), &obs)?;
    Ok((plan, conns))
}

/// Execute a plan computed by `plan` or `destroy_plan`.
pub async fn execute(topology: &str, plan: &Plan, conns: Connections) -> Result<(), ApplyError> {
    exec::Executor::new(topology, conns).run(plan).await
}

/// Re-observe and check that nothing is pending. Namespaces are torn down by
/// the kernel asynchronously, so a few short retries absorb that lag.
pub async fn verify(t: Option<&Topology>, name: &str) -> Result<(), ApplyError> {
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let remaining = match t {
            Some(t) => plan(t).await?.0,
            None => destroy_plan(name, name).await?.0,
        };
        if remaining.is_empty() {
            return Ok(());
        }
        last = remaining.render_text(name, false);
        tracing::debug!(attempt, pending = %last, "not converged yet");
    }
    Err(ApplyError::NotConverged(last))
}

/// Forget a destroyed topology's records, first removing any namespace
/// placeholder an interrupted create or delete left behind.
pub fn forget(topology: &str) {
    for ns in observe::sandbox_records(topology).values() {
        let _ = crate::netns::delete(ns);
    }
    let _ = std::fs::remove_dir_all(crate::naming::topology_dir(topology));
}
