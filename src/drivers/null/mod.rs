//! `null` (Docker's `--network none`): the sandbox gets its own namespace
//! with loopback only. Nothing per network.

use super::{Caps, Diagnostics, Driver, Gateway, Ipam, NetworkCtx, NetworkInput, Options};
use crate::model::State;
use crate::topology::Loc;

pub struct NullDriver;

/// A driver without options: any option is an error.
pub fn no_options(driver: &str, net: &NetworkInput<'_>, d: &mut Diagnostics) -> Options {
    if let Some(at) = net.raw.options.values().next() {
        d.err(
            at,
            format!(
                "network {}: options does not apply to driver {driver}",
                net.name
            ),
        );
    }
    Options(std::sync::Arc::new(super::Opaque::default()))
}

/// What null and host networks share: no addresses, no interfaces of
/// their own, and a sandbox on one joins nothing else.
pub const BARE: Caps = Caps {
    interfaces: false,
    ipam: Ipam::None,
    gateway: Gateway::None,
    addressing: false,
    needs_subnet: false,
    internal: false,
    ports: false,
    exclusive: true,
    host_stack: false,
    spans_hosts: false,
    network_link: false,
};

impl Driver for NullDriver {
    fn name(&self) -> &'static str {
        "null"
    }
    fn caps(&self) -> Caps {
        BARE
    }
    fn check(&self, net: &NetworkInput<'_>, d: &mut Diagnostics) -> Options {
        no_options(self.name(), net, d)
    }
    fn desired(&self, _ctx: &NetworkCtx<'_>, _out: &mut State) -> Result<(), (Loc, String)> {
        Ok(())
    }
}
