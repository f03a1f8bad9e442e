//! Network drivers. A driver turns one network and its endpoints, already
//! addressed by IPAM, into the kernel objects that realize them. Drivers are
//! pure: the executor in `apply` knows how to create each kind of object.

mod bridge;
mod host;
mod null;
mod overlay;

use crate::model::{Mac, State};
use crate::spec::{DriverKind, Endpoint, Network};
use ipnetwork::{Ipv4Network, Ipv6Network};
use std::net::IpAddr;

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
    /// Overlay networks only: this host's VTEP and the other hosts' endpoints.
    pub overlay: Option<OverlayCtx>,
}

/// What an overlay network needs beyond its local endpoints, all derived
/// from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayCtx {
    /// This host's underlay address.
    pub local: IpAddr,
    /// MTU of the bridge, VXLAN device and veths.
    pub mtu: u32,
    /// Endpoints of this network on other hosts.
    pub remotes: Vec<RemoteEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEndpoint {
    /// Underlay address of the endpoint's host.
    pub vtep: IpAddr,
    pub mac: Mac,
    pub ips: Vec<IpAddr>,
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
        DriverKind::Overlay => &overlay::OverlayDriver,
        // Never planned: `apply::drivers` refuses such networks first.
        DriverKind::Plugin => &null::NullDriver,
    }
}

/// Default MTU of bridge networks (Docker's).
pub const DEFAULT_MTU: u32 = 1500;

/// IANA's VXLAN port (the kernel's default is the pre-standard 8472).
pub const VXLAN_PORT: u16 = 4789;

/// Bytes VXLAN adds to each frame: outer IPv4 (20) or IPv6 (40), UDP (8),
/// VXLAN (8) and the inner Ethernet header (14).
pub fn vxlan_overhead(underlay: &IpAddr) -> u32 {
    if underlay.is_ipv4() {
        50
    } else {
        70
    }
}
