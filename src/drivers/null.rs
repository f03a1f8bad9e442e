//! `null`: the sandbox gets its own namespace with loopback only (Docker's
//! `--network none`). Nothing per network.

use super::{Driver, NetworkCtx};
use crate::model::State;
use crate::spec::DriverKind;

pub struct NullDriver;

impl Driver for NullDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Null
    }
    fn gives_interface(&self) -> bool {
        false
    }
    fn desired(&self, _ctx: &NetworkCtx<'_>, _out: &mut State) {}
}
