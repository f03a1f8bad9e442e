//! Network drivers. A driver turns one network and its endpoints, already
//! addressed by IPAM, into the kernel objects that realize them. Drivers are
//! pure: the executor in `apply` knows how to create each kind of object.

mod bridge;
mod host;
mod null;

use crate::model::{Mac, State};
use crate::spec::{DriverKind, Endpoint, Network};
use ipnetwork::{Ipv4Network, Ipv6Network};

/// A network's resolved addressing (explicit, kept or allocated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressing {
    /// IPv4 gateway with the subnet's prefix length (e.g. 10.0.0.1/24).
    pub gateway_v4: Option<Ipv4Network>,
    pub gateway_v6: Option<Ipv6Network>,
}

/// One endpoint with everything IPAM and interface naming decided.
#[derive(Debug, Clone)]
pub struct ResolvedEndpoint<'a> {
    pub spec: &'a Endpoint,
    pub ipv4: Option<Ipv4Network>,
    pub ipv6: Option<Ipv6Network>,
    pub mac: Option<Mac>,
    /// Interface name inside the sandbox.
    pub ifname: String,
    /// The sandbox's namespace.
    pub netns: String,
}

/// Everything a driver needs, borrowed.
pub struct NetworkCtx<'a> {
    pub topology: &'a str,
    pub network: &'a Network,
    pub addressing: &'a Addressing,
    pub endpoints: Vec<ResolvedEndpoint<'a>>,
}

pub trait Driver: Sync {
    fn kind(&self) -> DriverKind;
    /// Whether endpoints get an interface (and addresses) in the sandbox.
    fn gives_interface(&self) -> bool;
    /// Add the network's kernel objects to the desired state.
    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State);
}

pub fn driver_for(kind: DriverKind) -> &'static dyn Driver {
    match kind {
        DriverKind::Bridge => &bridge::BridgeDriver,
        DriverKind::Null => &null::NullDriver,
        DriverKind::Host => &host::HostDriver,
    }
}

/// Default MTU of bridge networks (Docker's).
pub const DEFAULT_MTU: u32 = 1500;
