//! Apply: observe → desired → diff → check prerequisites → execute →
//! re-observe → verify. `converge` and `destroy` read top to bottom here;
//! the kernel work is in `exec`, the prerequisite checks in `prereq`.

pub mod conflicts;
pub mod drivers;
mod exec;
pub mod learned;
pub mod prereq;
pub mod progress;
pub mod saved;
pub mod trust;

use crate::desired::{self, PlanError};
use crate::diff;
use crate::drivers::Registry;
use crate::model::{Observed, State};
use crate::observe::{self, Connections};
use crate::plan::Plan;
use crate::plugins::Patience;
use crate::spec::file::FileTopology;
use crate::spec::Topology;
use crate::store::{AppliedRecord, NsRecord, Store, TopologyStore, RECORD_VERSION};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub use crate::errors::ApplyError;
pub use crate::store::Lock;

/// Take the host-wide apply lock without stalling the runtime (watch keeps
/// handling signals meanwhile).
pub async fn lock() -> Result<Lock, ApplyError> {
    tokio::task::spawn_blocking(|| Store::system().lock())
        .await
        .map_err(|e| ApplyError::Internal(e.to_string()))?
        .map_err(ApplyError::Store)
}

/// The whole apply with cnm's drivers (see [`converge_with`]).
pub async fn converge(
    t: &Topology,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    converge_with(Registry::builtin(), t, show).await
}

/// The whole apply: take the lock, observe, plan (handed to `show` before
/// anything changes; an error from it stops the apply there), execute,
/// verify what the plan touched, record. Returns the executed plan.
pub async fn converge_with(
    reg: &Registry,
    t: &Topology,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    converge_trusting(reg, t, Trust::Nothing, show).await
}

/// What a plan may leave unread (see [`trust`]).
#[derive(Debug, Clone)]
pub enum Trust {
    /// Read everything (the default).
    Nothing,
    /// The sandboxes unchanged in the file since the last apply
    /// (`--trust-unchanged`).
    Unchanged,
    /// Of those, only these (watch: no event came from them).
    UnchangedAmong(BTreeSet<String>),
}

impl Trust {
    fn sandboxes(&self, t: &Topology, store: &TopologyStore) -> BTreeSet<String> {
        match self {
            Trust::Nothing => BTreeSet::new(),
            Trust::Unchanged => trust::unchanged_since_applied(t, store),
            Trust::UnchangedAmong(quiet) => trust::unchanged_since_applied(t, store)
                .into_iter()
                .filter(|s| quiet.contains(s))
                .collect(),
        }
    }
}

/// [`converge_with`], leaving unread what `trust` allows.
pub async fn converge_trusting(
    reg: &Registry,
    t: &Topology,
    trust: Trust,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    converge_checked(reg, t, trust, |_, _| Ok(()), show).await
}

/// [`converge_trusting`], with `check` judging the plan (and what it was
/// computed from) before it is shown and executed: a saved plan is
/// refused there when it is stale.
pub async fn converge_checked(
    reg: &Registry,
    t: &Topology,
    trust: Trust,
    check: impl FnOnce(&Planned, &TopologyStore) -> Result<(), ApplyError>,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    // Plugins are found (and waited for) before the lock: waiting for
    // one never holds every other cnm on the host.
    conflicts::check_file_subnets(t, &Store::system())?;
    let reg =
        &drivers::resolve(reg, t, &Store::system().topology(&t.name)?, Patience::Apply).await?;
    let _lock = lock().await?;
    converge_locked(reg, t, trust, check, show).await
}

/// [`converge_trusting`] of topology `name` as its record holds it, read
/// under the lock (a runtime that changes the record between the read and
/// the apply could otherwise be undone). Returns the topology applied too.
pub async fn converge_recorded(
    reg: &Registry,
    name: &str,
    host: Option<&str>,
    trust: Trust,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<(Plan, Topology), ApplyError> {
    let load = || -> Result<Topology, ApplyError> {
        let Some(mut t) = recorded_topology(name)? else {
            return Err(ApplyError::Plan(PlanError::of_file(
                &format!("--topology {name}"),
                "no topology of that name is applied on this host",
            )));
        };
        if host.is_some() {
            t.select_host(host)
                .map_err(|e| ApplyError::Plan(PlanError::of_file(&t.file, e)))?;
        }
        Ok(t)
    };
    // Its plugins, found (and waited for) before the lock; the record
    // read again under it.
    let first = load()?;
    let reg = &drivers::resolve(
        reg,
        &first,
        &Store::system().topology(name)?,
        Patience::Apply,
    )
    .await?;
    let _lock = lock().await?;
    let t = load()?;
    let plan = converge_locked(reg, &t, trust, |_, _| Ok(()), show).await?;
    Ok((plan, t))
}

/// [`converge_checked`] with cnm's lock held and `resolved` holding the
/// plugins (a plugin the topology names that is not there yet, when the
/// record changed meanwhile, is looked up once, without waiting).
async fn converge_locked(
    resolved: &Registry,
    t: &Topology,
    trust: Trust,
    check: impl FnOnce(&Planned, &TopologyStore) -> Result<(), ApplyError>,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    let store = Store::system().topology(&t.name)?;
    let reg = &drivers::resolve(resolved, t, &store, Patience::Plan).await?;
    let trusted = trust.sandboxes(t, &store);
    let mut p = plan_resolved(reg, t, &store, &trusted).await?;
    check(&p, &store)?;
    show(&p.plan).map_err(ApplyError::Output)?;
    let shown = p.plan.clone();
    let mut executed = Vec::new();
    let mut rounds = 0;
    let after = loop {
        if p.plan.is_empty() {
            break p.observed;
        }
        record_namespaces(&store, &p.observed)?;
        let started = Instant::now();
        match execute_with(reg, &store, &p.plan, p.conns).await? {
            Ran::Done => {
                executed.extend(p.plan.actions.iter().cloned());
                let executed_at = started.elapsed();
                let after = verify(reg, &store, &p.plan).await?;
                tracing::debug!(execute = ?executed_at, verify = ?started.elapsed() - executed_at, "applied");
                break after;
            }
            Ran::Replan(n) => executed.extend(p.plan.actions[..n].iter().cloned()),
        }
        // What was learned (a plugin's pool, an interface's name) feeds
        // the rest of the plan: plan it again. Each round runs at least
        // one step, so the rounds are bounded by the kinds of objects.
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(ApplyError::Internal(format!(
                "apply did not settle after {MAX_ROUNDS} rounds of learned values"
            )));
        }
        p = plan_resolved(reg, t, &store, &trusted)
            .await
            .map_err(|e| ApplyError::AfterChanges(Box::new(e)))?;
        tracing::debug!(
            actions = p.plan.actions.len(),
            "planned again with what drivers and plugins answered"
        );
    };
    if rounds > 0 {
        // Verify saw the last round only: the whole file must now plan
        // nothing (the convergence contract itself).
        let again = plan_resolved(reg, t, &store, &trusted)
            .await
            .map_err(|e| ApplyError::AfterChanges(Box::new(e)))?;
        if !again.plan.is_empty() {
            let left: Vec<String> = again
                .plan
                .actions
                .iter()
                .map(|a| a.resource.label())
                .collect();
            return Err(ApplyError::NotConverged(left.join("\n")));
        }
    }
    let t = p.topology.as_ref().unwrap_or(t);
    settle_records(&store, t, &after, &p.learned)?;
    let mut allocations = crate::model::Allocations::of(&p.desired);
    allocations.ports = p.chosen_ports.clone();
    store.record_applied(&AppliedRecord {
        version: RECORD_VERSION,
        source: t.source.clone(),
        this_host: t.this_host.clone(),
        topology: serde_json::to_value(FileTopology::from_spec(t)).unwrap_or_default(),
        claims: conflicts::claims_of(t, &p.desired),
        allocations,
    })?;
    // What ran, over every round (the first plan's "known after apply"
    // values as they turned out).
    Ok(Plan {
        actions: executed,
        ..shown
    })
}

/// The most times an apply plans again with learned values.
const MAX_ROUNDS: usize = 16;

/// The whole destroy with cnm's drivers (see [`destroy_with`]).
pub async fn destroy(
    name: &str,
    label: &str,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    destroy_with(Registry::builtin(), name, label, show).await
}

/// The whole destroy: reach the plugins it needs (waiting for one that
/// restarts, without the lock), take the lock, plan the removal of
/// everything the topology owns (handed to `show` first; an error from it
/// stops there), execute, verify, forget the records. Returns the executed
/// plan.
pub async fn destroy_with(
    reg: &Registry,
    name: &str,
    label: &str,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    destroy_opts(reg, name, label, DestroyOptions::default(), show).await
}

/// How a destroy treats what it cannot give back.
#[derive(Debug, Clone, Copy, Default)]
pub struct DestroyOptions {
    /// Forget what unreachable plugins may still hold, instead of keeping
    /// its records and failing (`--forget-unreachable`).
    pub forget_unreachable: bool,
}

/// [`destroy_with`], with options. When a plugin cannot be reached to give
/// back what it holds, the kernel objects still go, the records of what
/// it holds are kept, and the error names them: a later destroy releases
/// them once the plugin is back.
pub async fn destroy_opts(
    reg: &Registry,
    name: &str,
    label: &str,
    opts: DestroyOptions,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    let reg = &drivers::for_destroy(reg, &Store::system().topology(name)?).await;
    let _lock = lock().await?;
    let store = Store::system().topology(name)?;
    let (plan, conns) = destroy_plan_with(reg, name, label).await?;
    show(&plan).map_err(ApplyError::Output)?;
    let mut kept = Vec::new();
    if !plan.is_empty() {
        let ex = exec::Executor::new(reg, store.clone(), conns)?
            .forgetting_unreachable(opts.forget_unreachable);
        ex.run(&plan).await?;
        kept = ex.kept();
        // Plugin objects kept in the records are still observed there.
        let mut checked = plan.clone();
        if !kept.is_empty() {
            checked
                .actions
                .retain(|a| !matches!(a.resource, crate::plan::Resource::Plugin(_)));
        }
        verify(reg, &store, &checked).await?;
    }
    if !kept.is_empty() {
        store.forget_all_but_plugins()?;
        return Err(ApplyError::Unreleased {
            topology: name.to_string(),
            kept,
        });
    }
    forget(name)?;
    crate::resolver::control::stop_if_idle()?;
    Ok(plan)
}

/// A plan with what it was computed from.
pub struct Planned {
    /// The plan itself.
    pub plan: Plan,
    /// What it was computed from: the kernel and the host as observed.
    pub observed: Observed,
    /// The desired state it was diffed against.
    pub desired: State,
    /// What drivers learned, with what the plan read back from the kernel
    /// (recorded after apply).
    pub learned: BTreeMap<String, crate::drivers::Learned>,
    /// Open netlink connections, handed on to `execute`.
    pub conns: Connections,
    /// The topology as planned, when cnm chose host ports for it or found
    /// this machine's host by its address (what is recorded as applied);
    /// `None`: the file's, as it is.
    pub topology: Option<Topology>,
    /// Host ports chosen (recorded to be kept).
    pub chosen_ports: BTreeMap<String, u16>,
}

/// The sandboxes (sandbox → netns) this machine realizes for `t`, whose
/// paths observe checks before anything is written.
fn wanted_netns(t: &Topology) -> BTreeMap<String, String> {
    let share;
    let t = match &t.this_host {
        Some(h) => {
            share = t.share_of(h);
            &share
        }
        None => t,
    };
    t.sandboxes
        .keys()
        .filter(|s| !t.sandbox_uses_host_stack(s) && t.sandboxes[*s].netns.is_none())
        .map(|s| (s.clone(), crate::naming::netns_name(&t.name, s)))
        .collect()
}

/// [`plan_with`] cnm's drivers.
pub async fn plan(t: &Topology) -> Result<Planned, ApplyError> {
    plan_with(Registry::builtin(), t).await
}

/// Observe the kernel and compute the plan for `t`: drivers, conflicts
/// with the rest of the host and prerequisites checked. The connections
/// are handed on to `execute`, so nothing is opened twice.
pub async fn plan_with(reg: &Registry, t: &Topology) -> Result<Planned, ApplyError> {
    plan_trusting(reg, t, Trust::Nothing).await
}

/// [`plan_with`], leaving unread what `trust` allows.
pub async fn plan_trusting(
    reg: &Registry,
    t: &Topology,
    trust: Trust,
) -> Result<Planned, ApplyError> {
    conflicts::check_file_subnets(t, &Store::system())?;
    let store = Store::system().topology(&t.name)?;
    let reg = &drivers::resolve(reg, t, &store, Patience::Plan).await?;
    let trusted = trust.sandboxes(t, &store);
    plan_resolved(reg, t, &store, &trusted).await
}

/// [`plan_with`] a registry that has every plugin `t` names.
async fn plan_resolved(
    reg: &Registry,
    t: &Topology,
    store: &TopologyStore,
    trusted: &BTreeSet<String>,
) -> Result<Planned, ApplyError> {
    let all = Store::system();
    let started = Instant::now();
    let scope = if trusted.is_empty() {
        observe::Scope::All
    } else {
        observe::Scope::AllBut(trusted.clone())
    };
    let (mut observed, conns) =
        observe::observe_scoped(reg, store, &wanted_netns(t), &scope).await?;
    let observed_at = started.elapsed();
    // What trusted sandboxes hold is left out of both sides: the observed
    // state here (so addresses and names come from the records, as the
    // last apply left them), the desired state for the diff below.
    let trusted_endpoints: BTreeSet<String> = trusted
        .iter()
        .flat_map(|s| t.endpoints_of_sandbox(s).map(|e| e.name.clone()))
        .collect();
    trust::leave_out(&mut observed.state, trusted, &trusted_endpoints);
    observed.host.borrowed = observe::borrowed(t).await;
    let mut notes = foreign_dns(t, &mut observed.host);
    // Host ports for `ports: ["80"]`: the topology planned is then `t`
    // with them filled in.
    let fail = |message: String| PlanError::of_file(&t.file, message);
    // (What is busy on the host is read only when a port needs a choice.)
    let needs_choice = t
        .endpoints
        .values()
        .any(|e| e.ports.iter().any(|p| p.ephemeral()));
    let with_ports = if needs_choice {
        desired::host_ports::choose(
            t,
            &observed.host.allocated.ports,
            &conflicts::busy_ports(t, &all),
            desired::host_ports::ephemeral_range(),
        )
        .map_err(fail)?
    } else {
        None
    };
    let (mut topology, chosen_ports) = match with_ports {
        Some((t, c)) => (Some(t), c),
        None => (None, BTreeMap::new()),
    };
    // A multi-host file applied without --host: the host found by its
    // address is recorded as this machine's, like one --host names.
    if let Some(h) = desired::host_found_by_address(t, &observed) {
        topology.get_or_insert_with(|| t.clone()).this_host = Some(h);
    }
    let t = topology.as_ref().unwrap_or(t);
    drivers::check_host(reg, t, &observed.host)?;
    let mut learned = store.learned()?;
    let mut desired = desired::build_with(reg, t, &observed, &learned)?;
    if learned::adopt(&desired, &observed, &mut learned) {
        desired = desired::build_with(reg, t, &observed, &learned)?;
    }
    observe::wanted_sysctls(&desired, &mut observed.state);
    let before = store.applied()?.map(|r| r.claims);
    conflicts::check(t, &desired, before.as_ref(), &all)?;
    let desired_at = started.elapsed();
    let mut plan = if trusted.is_empty() {
        diff::diff(&t.name, &t.file, &desired, &observed)?
    } else {
        // The records keep the whole desired state (every address).
        let mut read = desired.clone();
        trust::leave_out(&mut read, trusted, &trusted_endpoints);
        diff::diff(&t.name, &t.file, &read, &observed)?
    };
    learned::relearned(&mut plan, &learned);
    prereq::check(&t.file, &plan, &observed).await?;
    notes.extend(
        drivers::host_warnings(reg, t, &observed.host)
            .into_iter()
            .map(|w| format!("warning: {w}")),
    );
    plan.notes = notes;
    tracing::debug!(
        observe = ?observed_at,
        desired = ?desired_at - observed_at,
        diff = ?started.elapsed() - desired_at,
        "planned"
    );
    Ok(Planned {
        plan,
        observed,
        desired,
        learned,
        conns,
        topology,
        chosen_ports,
    })
}

/// Borrowed sandboxes whose 127.0.0.11 something else serves (a
/// container's runtime: a socket there that is not cnm's resolver, or a
/// NAT rule for it in a table that is not cnm's): noted in the host facts
/// (cnm adds no resolver there), each said in one line.
fn foreign_dns(t: &Topology, host: &mut crate::model::HostFacts) -> Vec<String> {
    let mut notes = Vec::new();
    for (sb, found) in &host.borrowed {
        let Ok(found) = found else { continue };
        let ours = host
            .allocated
            .dns_ports
            .get(sb)
            .copied()
            .unwrap_or_else(|| crate::resolver::redirect::port_for(&t.name, sb));
        if found.dns_served_by_others(ours) {
            host.foreign_dns.insert(sb.clone());
            let from = t.sandboxes.get(sb).and_then(|s| s.netns.as_ref());
            notes.push(format!(
                "note: sandbox {sb}: 127.0.0.11 is already served in the namespace it borrows ({}); cnm adds no resolver there",
                from.map_or_else(|| found.path.clone(), |r| r.to_string())
            ));
        }
    }
    notes
}

/// The plan that removes everything topology `name` owns.
pub async fn destroy_plan(name: &str, file: &str) -> Result<(Plan, Connections), ApplyError> {
    destroy_plan_with(Registry::builtin(), name, file).await
}

/// [`destroy_plan`], with the drivers of `reg`.
pub async fn destroy_plan_with(
    reg: &Registry,
    name: &str,
    file: &str,
) -> Result<(Plan, Connections), ApplyError> {
    let store = Store::system().topology(name)?;
    let (obs, conns) = observe::observe_with(reg, &store, &BTreeMap::new()).await?;
    let plan = diff::diff(name, file, &State::default(), &obs)?;
    prereq::check(file, &plan, &obs).await?;
    Ok((plan, conns))
}

/// Execute a plan computed by `plan` or `destroy_plan`.
pub async fn execute_with(
    reg: &Registry,
    store: &TopologyStore,
    plan: &Plan,
    conns: Connections,
) -> Result<Ran, ApplyError> {
    exec::Executor::new(reg, store.clone(), conns)?
        .run(plan)
        .await
}

pub use exec::Ran;

/// Verify, honestly: re-read the kernel and check that every object the
/// plan touched is as planned (deleted ones gone); nothing else is judged,
/// so only the namespaces of sandboxes the plan touched are read again.
/// Namespaces are torn down by the kernel asynchronously, so a few short
/// retries absorb that lag. Returns what was read.
pub async fn verify(
    reg: &Registry,
    store: &TopologyStore,
    plan: &Plan,
) -> Result<Observed, ApplyError> {
    let mut last = Vec::new();
    let touched = diff::verify::sandboxes_touched(plan);
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let (obs, _) = observe::observe_scoped(reg, store, &BTreeMap::new(), &touched).await?;
        last = diff::verify::check(plan, &obs.state);
        if last.is_empty() {
            return Ok(obs);
        }
        tracing::debug!(attempt, differs = ?last, "not as planned yet");
    }
    Err(ApplyError::NotConverged(last.join("\n")))
}

/// Bring the records up to what observe proved is cnm's (by mark or
/// identity): records written by an older cnm gain the identities they
/// lacked, lost records come back. Nothing is adopted by name.
/// Record every namespace observed as the topology's (by its mark) with
/// its inode, where the record differs: an apply killed between making a
/// namespace and recording it leaves one only the mark names. Done before
/// anything runs too, because the resolver listens only in namespaces
/// whose recorded inode matches.
fn record_namespaces(store: &TopologyStore, obs: &Observed) -> Result<(), ApplyError> {
    let recorded = store.namespaces()?;
    for ns in obs.state.namespaces.values() {
        let want = NsRecord {
            version: RECORD_VERSION,
            netns: ns.netns.clone(),
            ino: ns.ino,
            borrowed: ns.borrowed.as_ref().map(|b| b.from.clone()),
            sysctls: recorded
                .get(&ns.sandbox)
                .map(|r| r.sysctls.clone())
                .unwrap_or_default(),
        };
        if ns.ino.is_some() && recorded.get(&ns.sandbox) != Some(&want) {
            store.record_namespace(&ns.sandbox, &want)?;
        }
    }
    Ok(())
}

fn settle_records(
    store: &TopologyStore,
    t: &Topology,
    obs: &Observed,
    adopted: &BTreeMap<String, crate::drivers::Learned>,
) -> Result<(), ApplyError> {
    let recorded = store.learned()?;
    for (endpoint, values) in adopted {
        // Read back from the kernel while planning; what this apply's
        // creates returned was recorded already and wins.
        let mut merged = values.clone();
        merged.extend(recorded.get(endpoint).cloned().unwrap_or_default());
        if recorded.get(endpoint) != Some(&merged) {
            store.record_learned(endpoint, &merged)?;
        }
    }
    let gone: Vec<String> = recorded
        .into_keys()
        .filter(|e| !t.endpoints.contains_key(e))
        .collect();
    store.forget_learned(&gone)?;
    record_namespaces(store, obs)?;
    let mut files = store.files()?;
    let mut changed = std::collections::BTreeSet::new();
    for f in obs.state.files.values() {
        let (Some(id), Some(name)) = (f.id, f.path.rsplit('/').next()) else {
            continue;
        };
        let rec = files.entry(f.sandbox.clone()).or_default();
        if rec.files.get(name) != Some(&id) {
            rec.files.insert(name.to_string(), id);
            changed.insert(f.sandbox.clone());
        }
    }
    for ns in obs.state.namespaces.values() {
        let rec = files.entry(ns.sandbox.clone()).or_default();
        if ns.etc_dir.is_some() && rec.dir != ns.etc_dir {
            rec.dir = ns.etc_dir;
            changed.insert(ns.sandbox.clone());
        }
    }
    let recs: Vec<(String, crate::store::FilesRecord)> = changed
        .into_iter()
        .filter_map(|s| files.get(&s).map(|r| (s.clone(), r.clone())))
        .collect();
    store.record_files_all(&recs)?;
    if obs.state.firewall.is_some() && store.nft_digest()?.is_none() {
        crate::firewall::nft::record(store)?;
    }
    Ok(())
}

/// The topology `name` as last applied on this machine, read from its
/// record: the desired state of `--topology NAME` (drift repair without
/// the file; topologies a runtime edits). `None`: nothing is applied under
/// that name. The record's source and host are kept.
pub fn recorded_topology(name: &str) -> Result<Option<Topology>, ApplyError> {
    let store = Store::system().topology(name)?;
    let Some(rec) = store.applied()? else {
        return Ok(None);
    };
    let text = serde_json::to_string(&rec.topology).unwrap_or_default();
    let label = format!("the record of topology {name}");
    let mut t = crate::spec::parse(&label, &text).map_err(|e| {
        ApplyError::Internal(format!(
            "{label} no longer validates (written by another cnm?): {e}"
        ))
    })?;
    if t.name != name {
        return Err(ApplyError::Internal(format!(
            "{label} names topology {}",
            t.name
        )));
    }
    t.source = rec.source.clone();
    t.this_host = rec.this_host.clone().filter(|h| t.hosts.contains_key(h));
    Ok(Some(t))
}

/// Forget a destroyed topology's records.
pub fn forget(topology: &str) -> Result<(), ApplyError> {
    Ok(Store::system().topology(topology)?.forget()?)
}
