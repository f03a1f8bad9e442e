//! The topology file: parse, validate, and the validated model ([`Topology`]).
//!
//! `load`/`parse` never touch the kernel. Every problem is reported with the
//! file, line and column of the offending value; all problems found are
//! reported together, in file order.

mod keys;
mod load;
mod parse;
pub mod schema;
mod validate;

pub use crate::naming::{is_hostname, valid_identifier, valid_kernel_name};
pub use crate::topology::{
    file, format_mac, parse_mac, raw, Diagnostics, Dns, Endpoint, ExtraHost, Host, IpamSpec,
    Ipv6Config, NetnsRef, Network, PortMapping, Protocol, Sandbox, Topology, DEFAULT_DRIVER,
    HOST_GATEWAY,
};
pub use keys::closest;
pub use load::{load, load_with, LoadError};
pub use parse::{parse, parse_with};
pub use validate::{limits, reserved};

// Names the validation rules (children of this module) take with `*`.
use ipnetwork::{Ipv4Network, Ipv6Network};
use std::net::{Ipv4Addr, Ipv6Addr};

pub use crate::errors::{Diagnostic, Loc, SpecError};

/// Largest topology file cnm reads.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
