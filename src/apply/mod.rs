//! The engine: plan, apply and destroy, through one value ([`Engine`]).
//! An apply reads top to bottom in `converge` (`converge::converge`):
//! plan (observe → desired → diff → prerequisites, in `planning`),
//! show, execute (`exec`), plan again with what drivers learned, verify,
//! record (`records`); a destroy in `destroy`.

mod broken;
pub mod conflicts;
mod converge;
mod destroy;
pub mod drivers;
mod edit;
mod engine;
mod exec;
pub mod learned;
mod planning;
pub mod prereq;
pub mod progress;
mod records;
pub mod saved;
pub mod trust;

use crate::store::Store;

pub use crate::errors::ApplyError;
pub use crate::store::Lock;
pub use edit::{Edit, Edited};
pub use engine::Engine;
pub use exec::Ran;
pub use planning::{Planned, Trust};
pub use records::{forget, recorded_topology};

/// Take the host-wide apply lock without stalling the runtime (watch keeps
/// handling signals meanwhile).
pub async fn lock() -> Result<Lock, ApplyError> {
    tokio::task::spawn_blocking(|| Store::system().lock())
        .await
        .map_err(|e| ApplyError::Internal(e.to_string()))?
        .map_err(ApplyError::Store)
}
