//! Raw file → [`Topology`], or every problem found, each with its location.
//! Generic checks here (names, addressing, references, what relates several
//! objects); each driver checks its own options, through the registry.

mod addressing;
mod cross;
mod endpoints;
mod hosts;
mod networks;
mod sysctls;
pub use addressing::reserved;

use super::raw::*;
use super::*;
use crate::drivers::Registry;
use crate::naming::valid_identifier;
use serde_saphyr::Spanned;
use std::net::IpAddr;

/// Longest topology name: it prefixes namespace names and marks.
const MAX_TOPOLOGY_NAME: usize = crate::store::MAX_TOPOLOGY_NAME;
/// Longest network, sandbox or endpoint name.
const MAX_OBJECT_NAME: usize = crate::store::MAX_OBJECT_NAME;

pub fn validate(file: &str, raw: RawTopology, reg: &Registry) -> Result<Topology, SpecError> {
    let mut c = Diagnostics::default();

    if raw.version.value != 1 {
        c.err(
            &raw.version,
            format!(
                "version: {} is not supported; this cnm reads version 1",
                raw.version.value
            ),
        );
    }
    if let Err(e) = valid_identifier(&raw.name.value, MAX_TOPOLOGY_NAME) {
        c.err(
            &raw.name,
            format!("name: topology name '{}' {e}", raw.name.value),
        );
    }
    check_sizes(&mut c, &raw);
    let hosts = hosts::check_hosts(&mut c, &raw.hosts);
    c.note_refused("host", raw.hosts.keys(), &hosts);
    let networks = networks::check_networks(&mut c, &raw.name.value, &raw.networks, &hosts, reg);
    c.note_refused("network", raw.networks.keys(), &networks);
    let sandboxes = hosts::check_sandboxes(&mut c, &raw.sandboxes, &hosts);
    c.note_refused("sandbox", raw.sandboxes.keys(), &sandboxes);
    let endpoints = endpoints::check_endpoints(&mut c, &raw.endpoints, &networks, &sandboxes);

    let topo = Topology {
        file: file.to_string(),
        name: raw.name.value.clone(),
        hosts,
        this_host: None,
        networks,
        sandboxes,
        endpoints,
        source: None,
        embedded_dns: raw
            .dns
            .as_ref()
            .and_then(|d| d.value.embedded.as_ref())
            .is_none_or(|e| e.value),
        by_sandbox: Default::default(),
        key_paths: Default::default(),
    };
    cross::check_cross(&mut c, &topo, &raw.endpoints);

    match c.into_sorted() {
        diagnostics if diagnostics.is_empty() => Ok(topo),
        diagnostics => Err(SpecError {
            file: file.to_string(),
            diagnostics,
        }),
    }
}

/// Bounds on every list of the file, so no input makes cnm work without
/// end: generous for real topologies (10,000 endpoints and far more).
pub mod limits {
    /// Most `hosts:` in one file.
    pub const HOSTS: usize = 1_000;
    /// Most networks in one file.
    pub const NETWORKS: usize = 10_000;
    /// Most sandboxes in one file.
    pub const SANDBOXES: usize = 100_000;
    /// Most endpoints in one file.
    pub const ENDPOINTS: usize = 100_000;
    /// Most `aliases` of one endpoint.
    pub const ALIASES: usize = 64;
    /// Most `ports` of one endpoint.
    pub const PORTS: usize = 1_024;
    /// Most `dns:` servers of one sandbox.
    pub const DNS_SERVERS: usize = 16;
    /// Most `dns:` search domains of one sandbox.
    pub const DNS_SEARCH: usize = 32;
    /// Most `dns:` options of one sandbox.
    pub const DNS_OPTIONS: usize = 32;
}

fn too_many<T>(c: &mut Diagnostics, items: &[Spanned<T>], max: usize, what: &str) {
    if let Some(extra) = items.get(max) {
        c.err(
            extra,
            format!("{what}: more than {max}, the most cnm accepts"),
        );
    }
}

fn check_sizes(c: &mut Diagnostics, raw: &RawTopology) {
    for (len, first_extra, max, what) in [
        (
            raw.hosts.len(),
            raw.hosts.values().nth(limits::HOSTS).map(Loc::from),
            limits::HOSTS,
            "hosts",
        ),
        (
            raw.networks.len(),
            raw.networks.values().nth(limits::NETWORKS).map(Loc::from),
            limits::NETWORKS,
            "networks",
        ),
        (
            raw.sandboxes.len(),
            raw.sandboxes.values().nth(limits::SANDBOXES).map(Loc::from),
            limits::SANDBOXES,
            "sandboxes",
        ),
        (
            raw.endpoints.len(),
            raw.endpoints.values().nth(limits::ENDPOINTS).map(Loc::from),
            limits::ENDPOINTS,
            "endpoints",
        ),
    ] {
        if len > max {
            c.err(
                first_extra.unwrap_or_default(),
                format!("{what}: {len} of them, more than {max}, the most cnm accepts"),
            );
        }
    }
    for (name, e) in &raw.endpoints {
        if let Some(e) = &e.value {
            too_many(
                c,
                &e.aliases,
                limits::ALIASES,
                &format!("endpoint {name}: aliases"),
            );
            too_many(
                c,
                &e.ports,
                limits::PORTS,
                &format!("endpoint {name}: ports"),
            );
        }
    }
    for (name, s) in &raw.sandboxes {
        if let Some(d) = s.value.as_ref().and_then(|s| s.dns.as_ref()) {
            too_many(
                c,
                &d.value.servers,
                limits::DNS_SERVERS,
                &format!("sandbox {name}: dns servers"),
            );
            too_many(
                c,
                &d.value.search,
                limits::DNS_SEARCH,
                &format!("sandbox {name}: dns search"),
            );
            too_many(
                c,
                &d.value.options,
                limits::DNS_OPTIONS,
                &format!("sandbox {name}: dns options"),
            );
        }
    }
}

/// Why `ip` cannot be a host address in its subnet, phrased to be followed by
/// the subnet: "is outside subnet", "is the network address of".
fn host_problem(
    network: IpAddr,
    broadcast: IpAddr,
    inside: bool,
    ip: IpAddr,
) -> Option<&'static str> {
    if !inside {
        Some("is outside subnet")
    } else if ip == network {
        Some("is the network address of")
    } else if ip == broadcast && ip.is_ipv4() {
        Some("is the broadcast address of")
    } else {
        None
    }
}

/// The gateway address a network's endpoints may not take.
fn gateway_v4(n: &Network) -> Option<Ipv4Addr> {
    if n.caps.gateway == crate::drivers::Gateway::None {
        return None;
    }
    n.gateway.or_else(|| n.subnet.and_then(|s| s.nth(1)))
}

fn gateway_v6(n: &Network, v6: &Ipv6Config) -> Option<Ipv6Addr> {
    if n.caps.gateway == crate::drivers::Gateway::None {
        return None;
    }
    v6.gateway.or_else(|| {
        let base = u128::from(v6.subnet.network());
        Some(Ipv6Addr::from(base + 1))
    })
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.map(|s| s.as_str()).collect();
    if list.is_empty() {
        String::new()
    } else {
        format!(" (defined: {})", list.join(", "))
    }
}
