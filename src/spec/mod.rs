//! The topology file: parse, validate, and the validated model ([`Topology`]).
//!
//! `load`/`parse` never touch the kernel. Every problem is reported with the
//! file, line and column of the offending value; all problems found are
//! reported together, in file order.

mod names;
mod ports;
mod raw;
mod validate;

pub use names::{is_hostname, valid_identifier, valid_kernel_name};
pub use ports::{PortMapping, Protocol};
pub use validate::{format_mac, parse_mac};

use ipnetwork::{Ipv4Network, Ipv6Network};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// A position in the topology file (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub line: u64,
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
    pub loc: Loc,
    pub message: String,
}

/// Every problem found in one file, sorted by position.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SpecError {
    pub file: String,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    Bridge,
    Null,
    Host,
}

impl DriverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Bridge => "bridge",
            DriverKind::Null => "null",
            DriverKind::Host => "host",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Config {
    pub subnet: Ipv6Network,
    pub gateway: Option<Ipv6Addr>,
    pub ip_range: Option<Ipv6Network>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub loc: Loc,
    pub driver: DriverKind,
    pub subnet: Option<Ipv4Network>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Network>,
    pub ipv6: Option<Ipv6Config>,
    pub internal: bool,
    pub mtu: Option<u32>,
    /// `options.bridge_name`: the bridge's kernel name, when the user fixes it.
    pub bridge_name: Option<String>,
    /// `options.icc`: inter-container connectivity (enforced by the firewall).
    pub icc: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub servers: Vec<std::net::IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub name: String,
    pub loc: Loc,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub dns: Option<Dns>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub loc: Loc,
    pub network: String,
    pub sandbox: String,
    pub address: Option<Ipv4Addr>,
    pub ipv6_address: Option<Ipv6Addr>,
    pub mac: Option<[u8; 6]>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortMapping>,
    /// `gateway: true`: the sandbox's default route goes through this endpoint.
    pub gateway: bool,
}

/// A valid topology. Maps are keyed and ordered by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The file name as given on the command line, for messages.
    pub file: String,
    pub name: String,
    pub networks: BTreeMap<String, Network>,
    pub sandboxes: BTreeMap<String, Sandbox>,
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl Topology {
    /// Endpoints of one sandbox, in endpoint-name order.
    pub fn endpoints_of_sandbox<'a>(
        &'a self,
        sandbox: &'a str,
    ) -> impl Iterator<Item = &'a Endpoint> {
        self.endpoints
            .values()
            .filter(move |e| e.sandbox == sandbox)
    }

    /// Endpoints on one network, in endpoint-name order.
    pub fn endpoints_on_network<'a>(
        &'a self,
        network: &'a str,
    ) -> impl Iterator<Item = &'a Endpoint> {
        self.endpoints
            .values()
            .filter(move |e| e.network == network)
    }

    /// The sandbox shares the host's network stack (joined to a `host` network).
    pub fn sandbox_uses_host_stack(&self, sandbox: &str) -> bool {
        self.endpoints_of_sandbox(sandbox)
            .any(|e| self.networks[&e.network].driver == DriverKind::Host)
    }
}

/// Read and validate a topology file.
pub fn load(path: &Path) -> Result<Topology, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&path.display().to_string(), &text).map_err(LoadError::Invalid)
}

/// Validate topology text; `file` only names it in messages.
pub fn parse(file: &str, text: &str) -> Result<Topology, SpecError> {
    let raw: raw::RawTopology = serde_saphyr::from_str(text).map_err(|e| SpecError {
        file: file.to_string(),
        diagnostics: vec![yaml_diagnostic(&e)],
    })?;
    validate::validate(file, raw)
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(SpecError),
}

/// serde-saphyr renders "error: line L column C: MESSAGE" plus a snippet; keep
/// the message and put the location in our own `file:line:col:` form.
fn yaml_diagnostic(e: &serde_saphyr::Error) -> Diagnostic {
    let loc = e
        .location()
        .map(|l| Loc {
            line: l.line(),
            col: l.column(),
        })
        .unwrap_or(Loc { line: 1, col: 1 });
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML");
    let message = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("line "))
        .map(|(_, msg)| msg)
        .unwrap_or(first);
    let message = message
        .trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable")
        .to_string();
    Diagnostic { loc, message }
}
