//! What the engine knows of a driver without knowing the driver: how its
//! networks are addressed and routed ([`Caps`]) and its parsed options,
//! held as an opaque value ([`Options`]). A validated [`super::Network`]
//! carries both.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How cnm chooses endpoint addresses on a driver's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipam {
    /// No addresses (null, host).
    None,
    /// Lowest free address, kept while the endpoint exists.
    Lowest,
    /// A pure function of the file (hash of the endpoint's name), so that
    /// every host of a multi-host topology derives the same one.
    Hashed,
}

/// Where a network's gateway is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// None: endpoints carry no default route.
    None,
    /// On a host link cnm makes (a bridge holds the gateway address).
    OnHost,
    /// A router outside cnm's objects (macvlan): the default route points
    /// at it, nothing of cnm's holds the address.
    Outside,
    /// No gateway address: the default route goes out of the endpoint's
    /// interface itself (ipvlan in l3 mode, where the parent routes).
    Device,
}

impl Gateway {
    /// The default route goes to a gateway address (on a host link or
    /// outside), which `host-gateway` then names.
    pub fn has_address(self) -> bool {
        matches!(self, Gateway::OnHost | Gateway::Outside)
    }
}

/// What a driver's networks and endpoints are like. The engine validates,
/// addresses and routes by these, not by driver names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Endpoints get an interface in the sandbox.
    pub interfaces: bool,
    pub ipam: Ipam,
    pub gateway: Gateway,
    /// `subnet`, `gateway`, `ip_range`, `ipv6`, `mtu` apply.
    pub addressing: bool,
    /// `subnet:` must be given.
    pub needs_subnet: bool,
    /// `internal:` applies.
    pub internal: bool,
    /// Endpoints may publish ports.
    pub ports: bool,
    /// A sandbox joined to such a network joins no other.
    pub exclusive: bool,
    /// Sandboxes share the host's stack: no namespace, no files.
    pub host_stack: bool,
    /// Spans the machines of `hosts:`; addresses over the whole file.
    pub spans_hosts: bool,
    /// A network has a host link of its own (a bridge): without it, the
    /// network is not there. Without one (macvlan, null), its endpoints
    /// are all the kernel shows of it.
    pub network_link: bool,
}

impl Caps {
    /// What most drivers start from: endpoints with an interface and
    /// addresses from cnm's IPAM (lowest free), a gateway on a host link,
    /// and no more. Drivers write what differs (`..Caps::ADDRESSED`).
    pub const ADDRESSED: Caps = Caps {
        interfaces: true,
        ipam: Ipam::Lowest,
        gateway: Gateway::OnHost,
        addressing: true,
        needs_subnet: false,
        internal: false,
        ports: false,
        exclusive: false,
        host_stack: false,
        spans_hosts: false,
        network_link: false,
    };

    /// A network whose driver cnm does not know: a libnetwork plugin (or
    /// nothing, which `plan` finds out). Addressed by cnm's IPAM (or an
    /// IPAM plugin), its gateway a router the plugin provides; the plugin
    /// programs published ports.
    pub const UNKNOWN: Caps = Caps {
        gateway: Gateway::Outside,
        internal: true,
        ports: true,
        ..Caps::ADDRESSED
    };
}

/// A driver's typed options, held by the engine without knowing the type.
pub trait DriverOptions: std::fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
    /// The options as a file writes them (for `show` and the records).
    fn to_file(&self) -> BTreeMap<String, serde_json::Value>;
}

/// Options of one network.
#[derive(Debug, Clone)]
pub struct Options(pub Arc<dyn DriverOptions>);

impl PartialEq for Options {
    fn eq(&self, o: &Options) -> bool {
        self.0.to_file() == o.0.to_file()
    }
}

impl Eq for Options {}

impl Options {
    /// The driver's own type, when it is that.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}
