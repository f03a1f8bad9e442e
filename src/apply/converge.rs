//! An apply, top to bottom (the lock held, the plugins found): plan,
//! check and show it, execute it, plan again with what drivers learned
//! until nothing is left, verify, record.

use super::exec::{Executor, Ran};
use super::planning::{self, Memo, Planned, Trust};
use super::{conflicts, records, ApplyError};
use crate::drivers::Registry;
use crate::model::Observed;
use crate::observe::{self, Connections};
use crate::plan::Plan;
use crate::plugins::Patience;
use crate::spec::file::FileTopology;
use crate::spec::Topology;
use crate::store::{AppliedRecord, Store, TopologyStore, RECORD_VERSION};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The most times an apply plans again with learned values.
const MAX_ROUNDS: usize = 16;

/// Apply `t` with cnm's lock held and `resolved` holding its plugins (a
/// plugin the topology names that is not there yet, when the record
/// changed meanwhile, is looked up once, without waiting).
pub(super) async fn converge(
    resolved: &Registry,
    t: &Topology,
    trust: &Trust,
    memo: Memo<'_>,
    check: impl FnOnce(&Planned, &TopologyStore) -> Result<(), ApplyError>,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    let store = Store::system().topology(&t.name)?;
    let reg = &super::drivers::resolve(resolved, t, &store, Patience::Plan).await?;
    let trusted = trust.sandboxes(t, &store);
    let first = planning::plan(reg, t, &store, &trusted, memo).await?;
    check(&first, &store)?;
    show(&first.plan).map_err(ApplyError::Output)?;
    let shown = first.plan.clone();
    let (last, after, executed) = run_rounds(reg, t, &store, (&trusted, memo), first).await?;
    let t = last.topology.as_ref().unwrap_or(t);
    records::settle(&store, t, &after, &last.learned)?;
    record_applied(reg, &store, t, &last)?;
    // What ran, over every round (the first plan's "known after apply"
    // values as they turned out).
    Ok(Plan {
        actions: executed,
        ..shown
    })
}

/// Execute `p`; while a step learned values (a plugin's pool, an
/// interface's name), plan the rest again with them and go on. Returns the
/// last plan, the kernel as verified after it, and every action run.
async fn run_rounds(
    reg: &Registry,
    t: &Topology,
    store: &TopologyStore,
    (trusted, memo): (&BTreeSet<String>, Memo<'_>),
    mut p: Planned,
) -> Result<(Planned, Observed, Vec<crate::plan::Action>), ApplyError> {
    let mut executed = Vec::new();
    let mut rounds = 0;
    loop {
        if p.plan.is_empty() {
            break;
        }
        records::record_namespaces(store, &p.observed)?;
        let started = Instant::now();
        let conns = p
            .conns
            .take()
            .ok_or_else(|| ApplyError::Internal("a plan executed twice".into()))?;
        match execute(reg, store, &p.plan, conns).await? {
            Ran::Done => {
                executed.extend(p.plan.actions.iter().cloned());
                let executed_at = started.elapsed();
                let after = verify(reg, store, &p.plan).await?;
                tracing::debug!(execute = ?executed_at, verify = ?started.elapsed() - executed_at, "applied");
                if rounds > 0 {
                    plans_nothing(reg, t, store, trusted, memo).await?;
                }
                return Ok((p, after, executed));
            }
            Ran::Replan(n) => executed.extend(p.plan.actions[..n].iter().cloned()),
        }
        // Each round runs at least one step, so the rounds are bounded by
        // the kinds of objects.
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(ApplyError::Internal(format!(
                "apply did not settle after {MAX_ROUNDS} rounds of learned values"
            )));
        }
        p = planning::plan(reg, t, store, trusted, memo)
            .await
            .map_err(|e| ApplyError::AfterChanges(Box::new(e)))?;
        tracing::debug!(
            actions = p.plan.actions.len(),
            "planned again with what drivers and plugins answered"
        );
    }
    let observed = std::mem::take(&mut p.observed);
    Ok((p, observed, executed))
}

/// Verify saw the last round only: after several, the whole file must
/// plan nothing (the convergence contract itself).
async fn plans_nothing(
    reg: &Registry,
    t: &Topology,
    store: &TopologyStore,
    trusted: &BTreeSet<String>,
    memo: Memo<'_>,
) -> Result<(), ApplyError> {
    let again = planning::plan(reg, t, store, trusted, memo)
        .await
        .map_err(|e| ApplyError::AfterChanges(Box::new(e)))?;
    if again.plan.is_empty() {
        return Ok(());
    }
    let left: Vec<String> = again
        .plan
        .actions
        .iter()
        .map(|a| a.resource.label())
        .collect();
    Err(ApplyError::NotConverged(left.join("\n")))
}

/// The record of what was applied: the file as planned, its claims on
/// host-wide names and numbers, and what was allocated.
fn record_applied(
    reg: &Registry,
    store: &TopologyStore,
    t: &Topology,
    p: &Planned,
) -> Result<(), ApplyError> {
    let mut allocations = crate::model::Allocations::of(&p.desired);
    allocations.ports = p.chosen_ports.clone();
    store.record_applied(&AppliedRecord {
        version: RECORD_VERSION,
        source: t.source.clone(),
        this_host: t.this_host.clone(),
        topology: serde_json::to_value(FileTopology::from_spec(t)).unwrap_or_default(),
        claims: conflicts::claims_of(reg, t, &p.desired),
        allocations,
    })?;
    Ok(())
}

/// Execute a plan (the connections its planning opened are reused).
pub(super) async fn execute(
    reg: &Registry,
    store: &TopologyStore,
    plan: &Plan,
    conns: Connections,
) -> Result<Ran, ApplyError> {
    Executor::new(reg, store.clone(), conns)?.run(plan).await
}

/// Verify, honestly: re-read the kernel and check that every object the
/// plan touched is as planned (deleted ones gone); nothing else is judged,
/// so only the namespaces of sandboxes the plan touched are read again.
/// Namespaces are torn down by the kernel asynchronously, so a few short
/// retries absorb that lag. Returns what was read.
pub(super) async fn verify(
    reg: &Registry,
    store: &TopologyStore,
    plan: &Plan,
) -> Result<Observed, ApplyError> {
    let mut last = Vec::new();
    let touched = crate::diff::verify::sandboxes_touched(plan);
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let (obs, _) = observe::observe_scoped(reg, store, &BTreeMap::new(), &touched).await?;
        last = crate::diff::verify::check(plan, &obs.state);
        if last.is_empty() {
            return Ok(obs);
        }
        tracing::debug!(attempt, differs = ?last, "not as planned yet");
    }
    Err(ApplyError::NotConverged(last.join("\n")))
}
