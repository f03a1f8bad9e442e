//! What a topology file says, validated and located: the types every
//! floor above shares ([`Topology`], its networks, sandboxes and
//! endpoints, the file's own serde form), and what the engine knows of a
//! driver without knowing it ([`Caps`], [`Options`]). Loading and
//! validation, which ask the drivers, are `spec`'s.

mod caps;
mod diagnostics;
pub mod file;
mod mac;
mod netns_ref;
mod ports;
#[doc(hidden)]
pub mod raw;
pub mod schema;
mod types;

pub use crate::errors::{Diagnostic, Loc, PlanError};
pub use caps::{Caps, DriverOptions, Gateway, Ipam, Options};
pub use diagnostics::Diagnostics;
pub use mac::{format_mac, parse_mac};
pub use netns_ref::NetnsRef;
pub use ports::{parse_port, PortMapping, Protocol};
pub use types::{
    Dns, Endpoint, ExtraHost, Host, IpamSpec, Ipv6Config, Network, Sandbox, Topology, HOST_GATEWAY,
};

/// The driver of a network that names none (Docker's default).
pub const DEFAULT_DRIVER: &str = "bridge";
