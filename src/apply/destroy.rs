//! A destroy, top to bottom: reach the plugins it needs (waiting for one
//! that restarts, without the lock), take the lock, plan the removal of
//! everything the topology owns, execute, verify, forget the records.

use super::converge::verify;
use super::exec::Executor;
use super::{drivers, lock, prereq, records, ApplyError};
use crate::drivers::Registry;
use crate::model::State;
use crate::observe::{self, Connections};
use crate::plan::Plan;
use crate::store::Store;
use std::collections::BTreeMap;

/// Destroy topology `name`; the plan is handed to `show` first (an error
/// from it stops there). When a plugin cannot be reached to give back
/// what it holds, the kernel objects still go, the records of what it
/// holds are kept (unless `forget_unreachable`), and the error names
/// them: a later destroy releases them once the plugin is back.
pub(super) async fn destroy(
    reg: &Registry,
    name: &str,
    label: &str,
    forget_unreachable: bool,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    let reg = &drivers::for_destroy(reg, &Store::system().topology(name)?).await;
    let _lock = lock().await?;
    destroy_locked(reg, name, label, forget_unreachable, show).await
}

/// [`destroy`], with its plugins reached and cnm's lock held.
pub(super) async fn destroy_locked(
    reg: &Registry,
    name: &str,
    label: &str,
    forget_unreachable: bool,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Plan, ApplyError> {
    let store = Store::system().topology(name)?;
    let (plan, conns) = self::plan(reg, name, label).await?;
    show(&plan).map_err(ApplyError::Output)?;
    let mut kept = Vec::new();
    if !plan.is_empty() {
        let ex =
            Executor::new(reg, store.clone(), conns)?.forgetting_unreachable(forget_unreachable);
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
    records::forget(name)?;
    crate::resolver::control::stop_if_idle()?;
    Ok(plan)
}

/// The plan that removes everything topology `name` owns.
pub(super) async fn plan(
    reg: &Registry,
    name: &str,
    file: &str,
) -> Result<(Plan, Connections), ApplyError> {
    let store = Store::system().topology(name)?;
    let (obs, conns) = observe::observe_with(reg, &store, &BTreeMap::new()).await?;
    let plan = crate::diff::diff(name, file, &State::default(), &obs)?;
    prereq::check(file, None, &plan, &obs).await?;
    Ok((plan, conns))
}
