//! [`Engine`]: the one value through which everything plans, applies and
//! destroys (the `cnm` commands, `watch`, the library, `Controller`).

use super::edit::{self, Edit, Edited};
use super::planning::{self, Planned, Trust};
use super::{conflicts, converge, destroy, drivers, lock, records, ApplyError};
use crate::drivers::Registry;
use crate::errors::PlanError;
use crate::observe::Connections;
use crate::plan::Plan;
use crate::plugins::Patience;
use crate::spec::Topology;
use crate::store::{Store, TopologyStore};

/// Plans, applies and destroys topologies on this host, with its drivers
/// and what it may leave unread. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    registry: Registry,
    trust: Trust,
    host: Option<String>,
    forget_unreachable: bool,
    /// What the last desired state left to reuse (see [`Engine::remembering`]).
    memo: Option<std::sync::Arc<std::sync::Mutex<crate::desired::Incremental>>>,
}

impl Default for Engine {
    /// cnm's own drivers, trusting nothing.
    fn default() -> Engine {
        Engine::new(Registry::builtin().clone())
    }
}

impl Engine {
    /// An engine with the drivers of `registry`, trusting nothing.
    pub fn new(registry: Registry) -> Engine {
        Engine {
            registry,
            trust: Trust::Nothing,
            host: None,
            forget_unreachable: false,
            memo: None,
        }
    }

    /// Leave unread what `trust` allows (`--trust-unchanged`, watch).
    pub fn trusting(mut self, trust: Trust) -> Engine {
        self.trust = trust;
        self
    }

    /// Reuse, and keep in `memo`, the parts of the desired state an edit
    /// does not touch (`cnm watch`, which plans one topology again and
    /// again; see `desired::Incremental`).
    pub fn remembering(
        mut self,
        memo: std::sync::Arc<std::sync::Mutex<crate::desired::Incremental>>,
    ) -> Engine {
        self.memo = Some(memo);
        self
    }

    /// Which of a multi-host record's hosts this machine is (`--host`),
    /// for [`Engine::apply_recorded`].
    pub fn on_host(mut self, host: Option<&str>) -> Engine {
        self.host = host.map(str::to_string);
        self
    }

    /// A destroy forgets what unreachable plugins may still hold instead
    /// of keeping its records and failing (`--forget-unreachable`).
    pub fn forgetting_unreachable(mut self, forget: bool) -> Engine {
        self.forget_unreachable = forget;
        self
    }

    /// Observe the kernel and compute the plan for `t`: drivers and
    /// plugins found (a plan never waits for one), conflicts with the rest
    /// of the host and prerequisites checked. Changes nothing.
    pub async fn plan(&self, t: &Topology) -> Result<Planned, ApplyError> {
        conflicts::check_file_subnets(t, &Store::system())?;
        let store = Store::system().topology(&t.name)?;
        let reg = drivers::resolve(&self.registry, t, &store, Patience::Plan).await?;
        planning::plan(
            &reg,
            t,
            &store,
            &self.trust.sandboxes(t, &store),
            self.memo.as_deref(),
        )
        .await
    }

    /// The whole apply: plan (handed to `show` before anything changes; an
    /// error from it stops the apply there), execute, verify, record.
    /// Returns the executed plan.
    pub async fn apply(
        &self,
        t: &Topology,
        show: impl FnOnce(&Plan) -> Result<(), String>,
    ) -> Result<Plan, ApplyError> {
        self.apply_checked(t, |_, _| Ok(()), show).await
    }

    /// [`Engine::apply`], with `check` judging the plan (and what it was
    /// computed from) before it is shown: a saved plan is refused there
    /// when it is stale.
    pub async fn apply_checked(
        &self,
        t: &Topology,
        check: impl FnOnce(&Planned, &TopologyStore) -> Result<(), ApplyError>,
        show: impl FnOnce(&Plan) -> Result<(), String>,
    ) -> Result<Plan, ApplyError> {
        // Plugins are found (and waited for) before the lock: waiting for
        // one never holds every other cnm on the host.
        conflicts::check_file_subnets(t, &Store::system())?;
        let store = Store::system().topology(&t.name)?;
        let reg = drivers::resolve(&self.registry, t, &store, Patience::Apply).await?;
        let _lock = lock().await?;
        converge::converge(&reg, t, &self.trust, self.memo.as_deref(), check, show).await
    }

    /// [`Engine::apply`] of topology `name` as its record holds it, read
    /// again under the lock (a runtime that changes the record between the
    /// read and the apply could otherwise be undone). Returns the topology
    /// applied too.
    pub async fn apply_recorded(
        &self,
        name: &str,
        show: impl FnOnce(&Plan) -> Result<(), String>,
    ) -> Result<(Plan, Topology), ApplyError> {
        let first = self.recorded(name)?;
        let store = Store::system().topology(name)?;
        let reg = drivers::resolve(&self.registry, &first, &store, Patience::Apply).await?;
        let _lock = lock().await?;
        let t = self.recorded(name)?;
        let plan = converge::converge(
            &reg,
            &t,
            &self.trust,
            self.memo.as_deref(),
            |_, _| Ok(()),
            show,
        )
        .await?;
        Ok((plan, t))
    }

    /// Read-modify-apply of topology `name`'s record under one hold of
    /// cnm's lock (see [`Edited`]): concurrent edits of one topology (a
    /// runtime's parallel calls) all land, each on top of the last.
    pub async fn apply_edited(
        &self,
        name: &str,
        edit: &Edit<'_>,
        show: impl FnOnce(&Plan) -> Result<(), String>,
    ) -> Result<Edited, ApplyError> {
        edit::apply_edited(&self.registry, &self.trust, name, edit, show).await
    }

    /// The record of `name`, on this engine's host.
    fn recorded(&self, name: &str) -> Result<Topology, ApplyError> {
        let Some(mut t) = records::recorded_topology(name)? else {
            return Err(ApplyError::Plan(PlanError::of_file(
                &format!("--topology {name}"),
                "no topology of that name is applied on this host",
            )));
        };
        if self.host.is_some() {
            t.select_host(self.host.as_deref())
                .map_err(|e| ApplyError::Plan(PlanError::of_file(&t.file, e)))?;
        }
        Ok(t)
    }

    /// The whole destroy of topology `name` (`label` names it in
    /// messages): everything it owns removed, its records forgotten.
    /// Returns the executed plan.
    pub async fn destroy(
        &self,
        name: &str,
        label: &str,
        show: impl FnOnce(&Plan) -> Result<(), String>,
    ) -> Result<Plan, ApplyError> {
        destroy::destroy(&self.registry, name, label, self.forget_unreachable, show).await
    }

    /// The plan that removes everything topology `name` owns, with the
    /// connections its execution would use. Changes nothing.
    pub async fn destroy_plan(
        &self,
        name: &str,
        file: &str,
    ) -> Result<(Plan, Connections), ApplyError> {
        destroy::plan(&self.registry, name, file).await
    }
}
