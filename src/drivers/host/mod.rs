//! `host` (Docker's `--network host`): the sandbox shares the host's
//! network stack. cnm creates no namespace, interface or file for it;
//! `cnm exec` runs in the host's stack.

use super::null::{no_options, BARE};
use super::{Caps, Diagnostics, Driver, NetworkCtx, NetworkInput, Options};
use crate::model::State;
use crate::topology::Loc;

pub struct HostDriver;

impl Driver for HostDriver {
    fn name(&self) -> &'static str {
        "host"
    }
    fn caps(&self) -> Caps {
        Caps {
            host_stack: true,
            ..BARE
        }
    }
    fn check(&self, net: &NetworkInput<'_>, d: &mut Diagnostics) -> Options {
        no_options(self.name(), net, d)
    }
    fn desired(&self, _ctx: &NetworkCtx<'_>, _out: &mut State) -> Result<(), (Loc, String)> {
        Ok(())
    }
}
