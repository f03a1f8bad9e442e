//! A network's links and an endpoint's two ends.

use super::*;

/// A link of a network in the host namespace (a bridge, a VXLAN device,
/// ...), made by the network's driver. The engine creates it through the
/// driver and changes, checks and deletes it like any link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkRes {
    /// The network it belongs to, by its name in the file.
    pub network: String,
    /// What the link is to its network (the kind in its ownership mark).
    pub role: MarkKind,
    /// The link's name in the host namespace (`br-quick-lan`).
    pub ifname: String,
    /// The kernel's link kind (`bridge`, `vxlan`, ...). In plan JSON
    /// `link_kind`: `kind` says which resource it is.
    #[serde(rename = "link_kind")]
    pub kind: String,
    /// MTU in bytes.
    pub mtu: u32,
    /// Addresses with their prefix length (a bridge's gateway addresses).
    pub addrs: BTreeSet<IpNetwork>,
    /// The link is up.
    pub up: bool,
    /// The link it is a port of; empty when none.
    pub master: String,
    /// Settings fixed when the link is made (a VXLAN device's VNI, local
    /// address, ...), in the driver's order; the first one names the link
    /// in plans. A change means a replace.
    pub settings: Vec<(String, String)>,
    /// The driver that makes it (desired links; observed ones: empty).
    #[serde(skip)]
    pub driver: String,
}

impl LinkRes {
    /// The key of links in [`State::links`].
    pub fn key(&self) -> (String, MarkKind) {
        (self.network.clone(), self.role)
    }
}

/// The host end of an endpoint (a veth's other end): a port of a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostEnd {
    /// Name in the host namespace (`ve-3e98ee02130c`).
    pub ifname: String,
    /// The link it is a port of; empty when detached.
    pub master: String,
    /// As a bridge port, frames may leave by the port they came in through,
    /// so a sandbox reaches its own published ports through a host address
    /// (as Docker does without its userland proxy). A kernel attribute of
    /// the port (IFLA_BRPORT_MODE), compared and changed like its MTU; which
    /// value an endpoint wants is its driver's choice (bridge: on, overlay:
    /// off), and plan JSON (`schema/plan.schema.json`) carries it.
    pub hairpin: bool,
}

/// An endpoint: the interface that joins a sandbox to a network (`ethN`
/// inside the sandbox), and, for a veth, its other end in the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointRes {
    /// The endpoint's name in the file.
    pub endpoint: String,
    /// The network it joins.
    pub network: String,
    /// The sandbox it joins to the network.
    pub sandbox: String,
    /// Namespace of the sandbox interface; empty when it was not found.
    pub netns: String,
    /// The kernel's kind of the sandbox interface (`veth`, `macvlan`, ...),
    /// `link_kind` in plan JSON.
    #[serde(rename = "link_kind")]
    pub kind: String,
    /// Interface name in the sandbox (`eth0`, ...); empty when not found.
    pub ifname: String,
    /// `None` in a desired endpoint: whatever the kernel or driver gives.
    #[serde(serialize_with = "ser_mac")]
    pub mac: Option<Mac>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Addresses with their prefix length (`10.88.0.2/24`).
    pub addrs: BTreeSet<IpNetwork>,
    /// Up (both ends, for a veth).
    pub up: bool,
    /// The veth's host end; `None` for kinds without one.
    pub host: Option<HostEnd>,
    /// Settings fixed when it is made (a macvlan's parent and mode): a
    /// change means a replace.
    pub settings: Vec<(String, String)>,
    /// Fields only the driver learns, during apply (`ifname`, `mac`): plan
    /// shows them as "(known after apply)" until they are recorded.
    pub unknown: Vec<String>,
    /// A digest of what its driver was told when making it (a plugin's
    /// endpoint: addresses, MAC, ports), recorded as learned: a change
    /// means a replace, since the driver must be told. Empty: not tracked.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub made_with: String,
    /// The driver that makes it (desired endpoints; observed ones: empty).
    #[serde(skip)]
    pub driver: String,
}

impl EndpointRes {
    /// The host end's name, or "" without one.
    pub fn host_ifname(&self) -> &str {
        self.host.as_ref().map_or("", |h| h.ifname.as_str())
    }

    /// The link the host end is a port of, or "".
    pub fn master(&self) -> &str {
        self.host.as_ref().map_or("", |h| h.master.as_str())
    }
}
