//! The topology file: parse, validate, and the validated model ([`Topology`]).
//!
//! `load`/`parse` never touch the kernel. Every problem is reported with the
//! file, line and column of the offending value; all problems found are
//! reported together, in file order.

pub mod file;
mod names;
mod ports;
pub mod raw;
mod validate;

pub use names::{is_hostname, valid_identifier, valid_kernel_name};
pub use ports::{PortMapping, Protocol};
pub use validate::{format_mac, limits, parse_mac, Diagnostics};

use crate::drivers::{Caps, Options, Registry};

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

/// One machine of a multi-host topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub loc: Loc,
    /// Underlay address: the machine's VTEP for overlay networks.
    pub address: std::net::IpAddr,
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
    /// The driver's name as written (`bridge` when absent).
    pub driver: String,
    /// Where `driver:` is written (the network's own location without it).
    pub driver_loc: Loc,
    /// What the driver's networks are like ([`Caps::UNKNOWN`] for a driver
    /// cnm does not know).
    pub caps: Caps,
    pub subnet: Option<Ipv4Network>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Network>,
    pub ipv6: Option<Ipv6Config>,
    pub internal: bool,
    pub mtu: Option<u32>,
    /// The driver's own options, typed by the driver.
    pub options: Options,
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
    /// Multi-host topologies: the host that realizes this sandbox.
    pub host: Option<String>,
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
    /// Multi-host topologies: the machines, by name (empty: single host).
    pub hosts: BTreeMap<String, Host>,
    /// The host this machine is (`--host`); found from its addresses when
    /// not given. See [`Topology::select_host`].
    pub this_host: Option<String>,
    pub networks: BTreeMap<String, Network>,
    pub sandboxes: BTreeMap<String, Sandbox>,
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The file's canonical path, when loaded from a file (not stdin):
    /// recorded as where the topology was applied from.
    pub source: Option<String>,
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

    /// Record which host this machine is. The name must be one of `hosts:`.
    pub fn select_host(&mut self, host: Option<&str>) -> Result<(), String> {
        match host {
            None => Ok(()),
            Some(h) if self.hosts.is_empty() => Err(format!(
                "--host {h}: {} declares no hosts: (it is a single-host topology)",
                self.file
            )),
            Some(h) if !self.hosts.contains_key(h) => Err(format!(
                "--host {h}: {} declares no such host (hosts: {})",
                self.file,
                self.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(h) => {
                self.this_host = Some(h.to_string());
                Ok(())
            }
        }
    }

    /// The share of one host: its sandboxes, their endpoints, and the
    /// networks those join. Everything else in the file is another host's.
    pub fn share_of(&self, host: &str) -> Topology {
        let sandboxes: BTreeMap<String, Sandbox> = self
            .sandboxes
            .iter()
            .filter(|(_, s)| s.host.as_deref() == Some(host))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let endpoints: BTreeMap<String, Endpoint> = self
            .endpoints
            .iter()
            .filter(|(_, e)| sandboxes.contains_key(&e.sandbox))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let networks = self
            .networks
            .iter()
            .filter(|(n, _)| endpoints.values().any(|e| &e.network == *n))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Topology {
            file: self.file.clone(),
            name: self.name.clone(),
            hosts: self.hosts.clone(),
            this_host: Some(host.to_string()),
            source: self.source.clone(),
            networks,
            sandboxes,
            endpoints,
        }
    }

    /// The sandbox shares the host's network stack (joined to a `host` network).
    pub fn sandbox_uses_host_stack(&self, sandbox: &str) -> bool {
        self.endpoints_of_sandbox(sandbox)
            .any(|e| self.networks[&e.network].caps.host_stack)
    }
}

/// Largest topology file cnm reads.
/// The driver of a network that names none (Docker's default).
pub const DEFAULT_DRIVER: &str = "bridge";

pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Read and validate a topology file (`-`: standard input). Only regular
/// files (through links, as any input) or standard input, at most
/// [`MAX_FILE_BYTES`]; nothing else is read at all.
pub fn load(path: &Path) -> Result<Topology, LoadError> {
    load_with(Registry::builtin(), path)
}

/// [`load`], with the drivers of `reg`.
pub fn load_with(reg: &Registry, path: &Path) -> Result<Topology, LoadError> {
    let shown = path.display().to_string();
    let bytes = read_bounded(path)?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            return Err(LoadError::Invalid(SpecError {
                file: shown,
                diagnostics: vec![Diagnostic {
                    loc: loc_of_offset(bytes, at),
                    message: format!(
                        "the file is not UTF-8 text (byte 0x{:02x}); save it as UTF-8",
                        bytes[at]
                    ),
                }],
            }));
        }
    };
    let mut t = parse_with(reg, &shown, &text).map_err(LoadError::Invalid)?;
    if path.as_os_str() != "-" {
        t.source = std::fs::canonicalize(path)
            .ok()
            .map(|p| p.display().to_string());
    }
    Ok(t)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display().to_string();
    let read_err = |source| LoadError::Read {
        path: shown.clone(),
        source,
    };
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
    } else {
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(read_err)?;
        let meta = f.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(LoadError::NotRegular { path: shown });
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(LoadError::TooLarge { path: shown });
        }
        f.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
    }
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { path: shown });
    }
    Ok(buf)
}

/// Line and column (1-based, in characters) of byte `offset`.
fn loc_of_offset(bytes: &[u8], offset: usize) -> Loc {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() as u64 + 1;
    Loc { line, col }
}

/// The parser's budget: generous for 10,000 endpoints and more, bounded
/// against documents that expand (aliases) or nest without end.
fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    if let Some(b) = o.budget.as_mut() {
        b.max_nodes = 2_000_000;
        b.max_events = 8_000_000;
        b.max_reader_input_bytes = Some(MAX_FILE_BYTES as usize);
    }
    o
}

/// Validate topology text with cnm's own drivers; `file` only names it in
/// messages.
pub fn parse(file: &str, text: &str) -> Result<Topology, SpecError> {
    parse_with(Registry::builtin(), file, text)
}

/// Validate topology text, the options of each network checked by its
/// driver in `reg`.
pub fn parse_with(reg: &Registry, file: &str, text: &str) -> Result<Topology, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError {
            file: file.to_string(),
            diagnostics: vec![Diagnostic {
                loc: Loc { line: 1, col: 1 },
                message: "the file is empty; a topology starts with version: 1 and name:".into(),
            }],
        });
    }
    if let Some(d) = several_topologies(text) {
        return Err(SpecError {
            file: file.to_string(),
            diagnostics: vec![d],
        });
    }
    let raw: raw::RawTopology =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| SpecError {
            file: file.to_string(),
            diagnostics: vec![yaml_diagnostic(&e, text)],
        })?;
    validate::validate(file, raw, reg)
}

/// A list of topologies (`cnm show -o json` without `--topology`) or
/// several YAML documents (`cnm show` without it): one file is one
/// topology.
fn several_topologies(text: &str) -> Option<Diagnostic> {
    let hint =
        "; cnm plans one topology per file: save one with cnm show --topology NAME (-o json)";
    let mut lines = text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let (first_no, first) = lines.next()?;
    if first.trim_start().starts_with('[') {
        return Some(Diagnostic {
            loc: Loc {
                line: first_no as u64 + 1,
                col: 1,
            },
            message: format!("this file holds a list of topologies{hint}"),
        });
    }
    let starts_with_marker = first.trim_end() == "---";
    lines
        .filter(|(_, l)| l.trim_end() == "---" || l.starts_with("--- "))
        .nth(usize::from(starts_with_marker).saturating_sub(1))
        .map(|(no, _)| Diagnostic {
            loc: Loc {
                line: no as u64 + 1,
                col: 1,
            },
            message: format!("this file holds several YAML documents{hint}"),
        })
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a regular file; give a topology file, or - for standard input")]
    NotRegular { path: String },
    #[error("{path} is larger than 16 MiB, more than any topology needs; cnm does not read it")]
    TooLarge { path: String },
    #[error("{0}")]
    Invalid(SpecError),
}

/// serde-saphyr renders "error: line L column C: MESSAGE" plus a snippet; keep
/// the message, in words a user of the file understands, with the key it
/// is about, and put the location in our own `file:line:col:` form.
fn yaml_diagnostic(e: &serde_saphyr::Error, text: &str) -> Diagnostic {
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
    let message = message.trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable");
    let plain = plain_words(message);
    // A value of the wrong type: say which key it belongs to.
    let message = match key_at(text, loc) {
        Some(k) if plain != message => format!("{k}: {plain}"),
        _ => plain,
    };
    Diagnostic { loc, message }
}

/// The parser's messages about Rust types, said in the file's terms.
fn plain_words(m: &str) -> String {
    if m.starts_with("cannot deserialize null into") {
        return "a value is required here, not null (~)".into();
    }
    if let Some(t) = m.strip_prefix("invalid ") {
        match t {
            "u8" | "u16" | "u32" | "u64" | "usize" => {
                return "expected a whole number".into();
            }
            "i8" | "i16" | "i32" | "i64" => return "expected a number".into(),
            "bool" | "boolean" => return "expected true or false".into(),
            _ => {}
        }
    }
    m.replace("Option<String>", "a value")
        .replace("a string", "text")
        .replace("u32", "a whole number")
        .replace("u16", "a whole number")
}

/// The mapping key on the error's line, before its column (`name` in
/// `name: ~`), when there is one.
fn key_at(text: &str, loc: Loc) -> Option<String> {
    let line = text.lines().nth(loc.line.checked_sub(1)? as usize)?;
    let head: String = line
        .chars()
        .take(loc.col.saturating_sub(1) as usize)
        .collect();
    let key = head.rsplit([',', '{', '-']).next()?.trim();
    let key = key.strip_suffix(':')?.trim();
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)))
    .then(|| key.to_string())
}
