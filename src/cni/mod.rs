//! CNI, the Container Network Interface (the containernetworking/cni
//! specification, versions 0.4.0, 1.0.0 and 1.1.0): the protocol's values as
//! cnm speaks it, both as a plugin that runtimes call and as a runtime
//! that calls plugins. The protocol is small (an environment, a JSON
//! configuration on standard input, a JSON result or error object on
//! standard output), and the crates that offer it are unmaintained
//! (`cni-plugin`) or bring a plugin framework of their own (`rscni`): it
//! is written here, from the spec.

mod env;
mod error;
pub mod exec;
mod result;
mod version;

pub use env::{Command, Env};
pub use error::{code, CniError};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::{supports, Version, SUPPORTED};

/// The largest configuration cnm reads on standard input (a conflist with
/// a long `prevResult` is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
