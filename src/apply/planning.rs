//! A plan with what it was computed from: observe (leaving out what may
//! be trusted), choose host ports, build the desired state, check
//! conflicts, diff, check prerequisites.

use super::{conflicts, drivers, learned, prereq, trust, ApplyError};
use crate::desired;
use crate::diff;
use crate::drivers::Registry;
use crate::errors::PlanError;
use crate::model::{HostFacts, Observed, State};
use crate::observe::{self, Connections};
use crate::plan::Plan;
use crate::spec::Topology;
use crate::store::{Store, TopologyStore};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

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
    /// As `Unchanged`, borrowed namespaces too: a runtime's edit (a CNI
    /// ADD), whose runtime says when its other containers change.
    UnchangedBorrowed,
}

impl Trust {
    pub(super) fn sandboxes(&self, t: &Topology, store: &TopologyStore) -> BTreeSet<String> {
        match self {
            Trust::Nothing => BTreeSet::new(),
            Trust::Unchanged => trust::unchanged_since_applied(t, store, false),
            Trust::UnchangedBorrowed => trust::unchanged_since_applied(t, store, true),
            Trust::UnchangedAmong(quiet) => trust::unchanged_since_applied(t, store, false)
                .into_iter()
                .filter(|s| quiet.contains(s))
                .collect(),
        }
    }
}

/// What the last desired state of this topology left to reuse (`cnm
/// watch`); `None`: built from scratch.
pub type Memo<'a> = Option<&'a std::sync::Mutex<desired::Incremental>>;

/// The desired state, reusing `memo` when given (a poisoned one is
/// replaced: it holds nothing that must survive).
fn build(
    reg: &Registry,
    t: &Topology,
    observed: &Observed,
    learned: &BTreeMap<String, crate::drivers::Learned>,
    memo: Memo<'_>,
) -> Result<State, crate::errors::PlanError> {
    match memo {
        None => desired::build_with(reg, t, observed, learned),
        Some(m) => {
            let mut m = m.lock().unwrap_or_else(|poisoned| {
                let mut m = poisoned.into_inner();
                *m = desired::Incremental::default();
                m
            });
            desired::build_reusing(reg, t, observed, learned, Some(&mut m))
        }
    }
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
    /// Open netlink connections, taken by the execution of the plan.
    pub conns: Option<Connections>,
    /// The topology as planned, when cnm chose host ports for it or found
    /// this machine's host by its address (what is recorded as applied);
    /// `None`: the file's, as it is.
    pub topology: Option<Topology>,
    /// Host ports chosen (recorded to be kept).
    pub chosen_ports: BTreeMap<String, u16>,
}

/// Plan `t` with a registry that has every plugin it names, leaving the
/// `trusted` sandboxes unread.
pub(super) async fn plan(
    reg: &Registry,
    t: &Topology,
    store: &TopologyStore,
    trusted: &BTreeSet<String>,
    memo: Memo<'_>,
) -> Result<Planned, ApplyError> {
    let started = Instant::now();
    let (mut observed, conns, trusted_endpoints) = observe_for(reg, t, store, trusted).await?;
    let observed_at = started.elapsed();
    let mut notes = foreign_dns(t, &mut observed.host);
    let (topology, chosen_ports) = as_planned(t, &observed)?;
    let t = topology.as_ref().unwrap_or(t);
    drivers::check_host(reg, t, &observed.host)?;
    let mut learned = store.learned()?;
    super::broken::mark(reg, t, &mut observed, &learned).await;
    let mut desired = build(reg, t, &observed, &learned, memo)?;
    if learned::adopt(&desired, &observed, &mut learned) {
        desired = build(reg, t, &observed, &learned, memo)?;
    }
    observe::wanted_sysctls(&desired, &mut observed.state);
    let before = store.applied()?.map(|r| r.claims);
    conflicts::check(reg, t, &desired, before.as_ref(), &Store::system())?;
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
    prereq::check(&t.file, Some(t), &plan, &observed).await?;
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
        conns: Some(conns),
        topology,
        chosen_ports,
    })
}

/// Observe what `t` owns, with the `trusted` sandboxes left out of the
/// observed state (their addresses and names come from the records, as
/// the last apply left them); returns their endpoints too, to leave them
/// out of the desired state as well.
async fn observe_for(
    reg: &Registry,
    t: &Topology,
    store: &TopologyStore,
    trusted: &BTreeSet<String>,
) -> Result<(Observed, Connections, BTreeSet<String>), ApplyError> {
    let scope = if trusted.is_empty() {
        observe::Scope::All
    } else {
        observe::Scope::AllBut(trusted.clone())
    };
    let (mut observed, conns) =
        observe::observe_scoped(reg, store, &wanted_netns(t), &scope).await?;
    let trusted_endpoints: BTreeSet<String> = trusted
        .iter()
        .flat_map(|s| t.endpoints_of_sandbox(s).map(|e| e.name.clone()))
        .collect();
    trust::leave_out(&mut observed.state, trusted, &trusted_endpoints);
    observed.host.borrowed = observe::borrowed(t, trusted, store).await;
    Ok((observed, conns, trusted_endpoints))
}

/// The topology as planned, when it differs from the file: host ports
/// chosen for `ports: ["80"]`, and a multi-host file applied without
/// `--host` recorded with the host found by its address. With the ports
/// chosen.
fn as_planned(
    t: &Topology,
    observed: &Observed,
) -> Result<(Option<Topology>, BTreeMap<String, u16>), ApplyError> {
    // (What is busy on the host is read only when a port needs a choice.)
    let needs_choice = t
        .endpoints
        .values()
        .any(|e| e.ports.iter().any(|p| p.ephemeral()));
    let with_ports = if needs_choice {
        desired::host_ports::choose(
            t,
            &observed.host.allocated.ports,
            &conflicts::busy_ports(t, &Store::system()),
            desired::host_ports::ephemeral_range(),
        )
        .map_err(|message| PlanError::of_file(&t.file, message))?
    } else {
        None
    };
    let (mut topology, chosen_ports) = match with_ports {
        Some((t, c)) => (Some(t), c),
        None => (None, BTreeMap::new()),
    };
    if let Some(h) = desired::host_found_by_address(t, observed) {
        topology.get_or_insert_with(|| t.clone()).this_host = Some(h);
    }
    Ok((topology, chosen_ports))
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

/// Borrowed sandboxes whose 127.0.0.11 something else serves (a
/// container's runtime: a socket there that is not cnm's resolver, or a
/// NAT rule for it in a table that is not cnm's): noted in the host facts
/// (cnm adds no resolver there), each said in one line.
fn foreign_dns(t: &Topology, host: &mut HostFacts) -> Vec<String> {
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
