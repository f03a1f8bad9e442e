//! A topology changed a piece at a time by whoever holds it (a runtime's
//! calls: a CNI ADD or DEL, Docker's driver protocol): its record read,
//! edited and applied under one hold of cnm's lock, so that concurrent
//! edits all land, each on top of the last.

use super::planning::Trust;
use super::{conflicts, converge, destroy, drivers, lock, ApplyError};
use crate::drivers::Registry;
use crate::errors::PlanError;
use crate::plan::Plan;
use crate::plugins::Patience;
use crate::spec::Topology;
use crate::store::Store;
use crate::topology::file::FileTopology;

/// What an edit made of a topology.
#[derive(Debug)]
pub enum Edited {
    /// The edited topology, applied: the executed plan and the topology.
    Applied(Plan, Box<Topology>),
    /// The edit left nothing: everything the topology owned is gone.
    Destroyed(Plan),
    /// Nothing was applied, and the edit keeps it that way.
    Absent,
}

/// An edit: the topology as recorded (`None`: not applied) → as it is to
/// be (`None`: destroyed). Run twice (once to find the drivers it needs,
/// once under the lock), so it must depend on its input alone; an error
/// stops the edit with nothing changed.
pub type Edit<'a> =
    dyn Fn(Option<FileTopology>) -> Result<Option<FileTopology>, String> + Send + Sync + 'a;

pub(super) async fn apply_edited(
    reg: &Registry,
    trust: &Trust,
    name: &str,
    edit: &Edit<'_>,
    show: impl FnOnce(&Plan) -> Result<(), String>,
) -> Result<Edited, ApplyError> {
    let store = Store::system().topology(name)?;
    let seen = store.applied_stamp()?;
    // Drivers and plugins found before the lock: waiting for a plugin
    // never holds every other cnm on the host.
    let first = edited(name, edit)?;
    let reg = match &first {
        Some(t) => drivers::resolve(reg, t, &store, Patience::Apply).await?,
        None => drivers::for_destroy(reg, &store).await,
    };
    let _lock = lock().await?;
    // The edit is made again on the record as it is under the lock, unless
    // nothing rewrote it since it was read (parsing a record of 1,000
    // attachments twice was a tenth of a CNI ADD).
    let now = Store::system().topology(name)?.applied_stamp()?;
    let recorded = now.is_some();
    let edited_now = if now.is_some() && now == seen {
        first
    } else {
        edited(name, edit)?
    };
    match edited_now {
        Some(t) => {
            conflicts::check_file_subnets(&t, &Store::system())?;
            let plan = converge::converge(&reg, &t, trust, None, |_, _| Ok(()), show).await?;
            Ok(Edited::Applied(plan, Box::new(t)))
        }
        None if recorded => {
            let label = format!("the record of topology {name}");
            let plan = destroy::destroy_locked(&reg, name, &label, false, show).await?;
            Ok(Edited::Destroyed(plan))
        }
        None => Ok(Edited::Absent),
    }
}

/// The record of `name` (in the file's form) put through `edit`, and
/// checked as a file would be.
fn edited(name: &str, edit: &Edit<'_>) -> Result<Option<Topology>, ApplyError> {
    let store = Store::system().topology(name)?;
    let label = format!("the record of topology {name}");
    let before = match store.applied()? {
        Some(rec) => Some(
            serde_json::from_value::<FileTopology>(rec.topology).map_err(|e| {
                ApplyError::Internal(format!(
                    "{label} cannot be read (written by another cnm?): {e}"
                ))
            })?,
        ),
        None => None,
    };
    let refused = |why: String| ApplyError::Plan(PlanError::of_file(&label, why));
    let after = edit(before).map_err(refused)?;
    let Some(file) = after else {
        return Ok(None);
    };
    if file.name != name {
        return Err(refused(format!("the edit names topology {}", file.name)));
    }
    let text = serde_json::to_string(&file).unwrap_or_default();
    // Positions in the generated text mean nothing to whoever edited:
    // the messages alone (they name the object and key).
    let t = crate::spec::parse(&format!("topology {name} as edited"), &text).map_err(|e| {
        let messages: Vec<String> = e.diagnostics.into_iter().map(|d| d.message).collect();
        refused(messages.join("; "))
    })?;
    Ok(Some(t))
}
