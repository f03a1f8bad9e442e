//! `host`: the sandbox shares the host's network stack. cnm creates no
//! namespace, interface or file for it; `cnm exec` runs in the host stack.

use super::{Driver, NetworkCtx};
use crate::model::State;
use crate::spec::DriverKind;

pub struct HostDriver;

impl Driver for HostDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Host
    }
    fn gives_interface(&self) -> bool {
        false
    }
    fn desired(&self, _ctx: &NetworkCtx<'_>, _out: &mut State) {}
}
