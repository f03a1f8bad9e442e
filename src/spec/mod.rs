//! The topology file: parse, validate, and the validated model ([`Topology`]).
//!
//! `load`/`parse` never touch the kernel. Every problem is reported with the
//! file, line and column of the offending value; all problems found are
//! reported together, in file order.

pub mod file;
mod keys;
mod load;
mod netns_ref;
mod parse;
mod ports;
#[doc(hidden)]
pub mod raw;
pub mod schema;
mod topology;
mod validate;

pub use crate::naming::{is_hostname, valid_identifier, valid_kernel_name};
pub use keys::closest;
pub use load::{load, load_with, LoadError};
pub use netns_ref::NetnsRef;
pub use parse::{parse, parse_with};
pub use ports::{PortMapping, Protocol};
pub use topology::{
    Dns, Endpoint, ExtraHost, Host, IpamSpec, Ipv6Config, Network, Sandbox, Topology, HOST_GATEWAY,
};
pub use validate::{format_mac, limits, parse_mac, reserved, Diagnostics};

// Names the validation rules (children of this module) take with `*`.
use ipnetwork::{Ipv4Network, Ipv6Network};
use std::net::{Ipv4Addr, Ipv6Addr};

pub use crate::errors::{Diagnostic, Loc, SpecError};

/// The driver of a network that names none (Docker's default).
pub const DEFAULT_DRIVER: &str = "bridge";

/// Largest topology file cnm reads.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
