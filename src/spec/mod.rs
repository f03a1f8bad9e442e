//! The topology file: parse, validate, and the validated model ([`Topology`]).
//!
//! `load`/`parse` never touch the kernel. Every problem is reported with the
//! file, line and column of the offending value; all problems found are
//! reported together, in file order.

pub mod file;
mod keys;
mod load;
mod names;
mod netns_ref;
mod parse;
mod ports;
#[doc(hidden)]
pub mod raw;
pub mod schema;
mod topology;
mod validate;

pub use keys::closest;
pub use load::{load, load_with, LoadError};
pub use names::{is_hostname, valid_identifier, valid_kernel_name};
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

use std::fmt;

/// A position in the topology file (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub col: u64,
}

impl<T> From<&serde_saphyr::Spanned<T>> for Loc {
    fn from(s: &serde_saphyr::Spanned<T>) -> Self {
        Loc {
            line: s.referenced.line(),
            col: s.referenced.column(),
        }
    }
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Where in the file.
    pub loc: Loc,
    /// What is wrong, naming the object and key (`network front: ...`).
    pub message: String,
    /// The key path of what is wrong (`networks.front.subnet`), when the
    /// problem sits at a key or value of the file.
    pub key: Option<String>,
}

/// Every problem found in one file, sorted by position.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SpecError {
    /// The file name as given, for messages.
    pub file: String,
    /// The problems, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, d.loc.line, d.loc.col, d.message
            )?;
        }
        Ok(())
    }
}

/// The driver of a network that names none (Docker's default).
pub const DEFAULT_DRIVER: &str = "bridge";

/// Largest topology file cnm reads.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
