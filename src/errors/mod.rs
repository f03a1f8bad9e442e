//! Every error type the floors share, in one leaf module: a driver, the
//! store or the resolver reports through these without importing the
//! engine. Each module that raises one re-exports it under its old path.

mod apply;
mod location;
mod services;

pub use apply::ApplyError;
pub use location::{Diagnostic, ErrorKind, Loc, PlanError, SpecError};
pub use services::{ControlError, NftError, ObserveError, PluginError, StoreError};
