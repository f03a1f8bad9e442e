//! The validated topology: hosts, networks, sandboxes, endpoints, and the
//! queries over them.

use super::{Caps, Options};
use super::{Loc, PortMapping};
use crate::errors::PlanError;
use ipnetwork::{Ipv4Network, Ipv6Network};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One machine of a multi-host topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name in `hosts:`.
    pub name: String,
    /// Where it is written in the file.
    pub loc: Loc,
    /// Underlay address: the machine's VTEP for overlay networks.
    pub address: std::net::IpAddr,
}

/// A network's `ipv6:`: its IPv6 addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Config {
    /// IPv6 subnet (`fd00:10::/64`).
    pub subnet: Ipv6Network,
    /// IPv6 gateway; `None`: the subnet's first host address.
    pub gateway: Option<Ipv6Addr>,
    /// Where dynamic IPv6 addresses come from; `None`: the whole subnet.
    pub ip_range: Option<Ipv6Network>,
}

/// A network: a group of endpoints that can talk directly, made by its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Its name in `networks:`.
    pub name: String,
    /// Where it is written in the file.
    pub loc: Loc,
    /// The driver's name as written (`bridge` when absent).
    pub driver: String,
    /// Where `driver:` is written (the network's own location without it).
    pub driver_loc: Loc,
    /// What the driver's networks are like ([`Caps::UNKNOWN`] for a driver
    /// cnm does not know).
    pub caps: Caps,
    /// IPv4 subnet (`10.10.0.0/24`); `None`: allocated from the default pools.
    pub subnet: Option<Ipv4Network>,
    /// IPv4 gateway; `None`: the subnet's first host address.
    pub gateway: Option<Ipv4Addr>,
    /// Where dynamic IPv4 addresses come from (`10.10.0.128/25`); `None`: the
    /// whole subnet.
    pub ip_range: Option<Ipv4Network>,
    /// IPv6 addressing; `None`: IPv4 only.
    pub ipv6: Option<Ipv6Config>,
    /// IPv4 addressing (`ipv4: false`: IPv6 only).
    pub ipv4: bool,
    /// `internal: true`: no outbound NAT, no published ports.
    pub internal: bool,
    /// MTU in bytes; `None`: the driver's default.
    pub mtu: Option<u32>,
    /// `aux_addresses`: name → address, reserved (never allocated).
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// The driver's own options, typed by the driver.
    pub options: Options,
    /// A remote IPAM plugin giving the network's pool and addresses
    /// (`None`: cnm's own IPAM).
    pub ipam: Option<IpamSpec>,
}

/// `ipam: { driver, options }`: a libnetwork IPAM plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamSpec {
    /// The plugin's name.
    pub driver: String,
    /// Where `ipam:` is written in the file.
    pub loc: Loc,
    /// Passed as the pool request's `Options`.
    pub options: BTreeMap<String, String>,
}

/// A sandbox's `dns:`: what goes in its resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Dns {
    /// Nameserver addresses.
    pub servers: Vec<std::net::IpAddr>,
    /// Search domains.
    pub search: Vec<String>,
    /// resolv.conf options (`ndots:2`).
    pub options: Vec<String>,
}

/// A sandbox: one container's network stack, a network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sandbox {
    /// Its name in `sandboxes:`.
    pub name: String,
    /// Where it is written in the file.
    pub loc: Loc,
    /// `hostname:`, if given.
    pub hostname: Option<String>,
    /// `domainname:`, if given.
    pub domainname: Option<String>,
    /// `dns:`; `None`: the host's nameservers, search list and options.
    pub dns: Option<Dns>,
    /// Multi-host topologies: the host that realizes this sandbox.
    pub host: Option<String>,
    /// Extra hosts-file lines (compose's `extra_hosts`), in file order.
    pub extra_hosts: Vec<ExtraHost>,
    /// `netns:`: an existing namespace cnm borrows (never makes, writes
    /// files for, or deletes) instead of one of its own.
    pub netns: Option<super::NetnsRef>,
    /// `container_id:`: the runtime's ID of the container this sandbox is
    /// (libnetwork's `Sandbox.ContainerID`), recorded and shown verbatim.
    pub container_id: Option<String>,
    /// `sysctls:`: `net.*` sysctls set inside the sandbox's namespace, by
    /// path under /proc/sys (`net/ipv4/conf/all/forwarding`).
    pub sysctls: BTreeMap<String, String>,
}

/// `NAME:IP` in a sandbox's `extra_hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtraHost {
    /// The host name (before the colon).
    pub name: String,
    /// `None`: `host-gateway`, the sandbox's IPv4 gateway.
    pub ip: Option<IpAddr>,
    /// Where it is written in the file.
    pub loc: Loc,
}

impl std::fmt::Display for ExtraHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            Some(ip) => write!(f, "{}:{ip}", self.name),
            None => write!(f, "{}:{HOST_GATEWAY}", self.name),
        }
    }
}

/// Docker's word for the address of the host as a sandbox sees it.
pub const HOST_GATEWAY: &str = "host-gateway";

/// An endpoint: joins one sandbox to one network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Its name in `endpoints:`.
    pub name: String,
    /// Where it is written in the file.
    pub loc: Loc,
    /// The network it joins, by name.
    pub network: String,
    /// The sandbox it joins to the network, by name.
    pub sandbox: String,
    /// Static IPv4 address; `None`: allocated.
    pub address: Option<Ipv4Addr>,
    /// Static IPv6 address; `None`: allocated when the network has IPv6.
    pub ipv6_address: Option<Ipv6Addr>,
    /// Static MAC; `None`: chosen by cnm or the driver.
    pub mac: Option<[u8; 6]>,
    /// The interface's name in the sandbox; `None`: the lowest free `ethN`.
    pub ifname: Option<String>,
    /// More names its peers know the sandbox by on this network.
    pub aliases: Vec<String>,
    /// Published ports.
    pub ports: Vec<PortMapping>,
    /// `gateway: true`: the sandbox's default route goes through this endpoint.
    pub gateway: bool,
}

/// A valid topology. Maps are keyed and ordered by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The file name as given on the command line, for messages.
    pub file: String,
    /// The topology's name (`name:`).
    pub name: String,
    /// Multi-host topologies: the machines, by name (empty: single host).
    pub hosts: BTreeMap<String, Host>,
    /// The host this machine is (`--host`); found from its addresses when
    /// not given. See [`Topology::select_host`].
    pub this_host: Option<String>,
    /// Networks, by name.
    pub networks: BTreeMap<String, Network>,
    /// Sandboxes, by name.
    pub sandboxes: BTreeMap<String, Sandbox>,
    /// Endpoints, by name.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The file's canonical path, when loaded from a file (not stdin):
    /// recorded as where the topology was applied from.
    pub source: Option<String>,
    /// The embedded resolver answers in the sandboxes (the default; top
    /// level `dns: { embedded: false }` turns it off).
    pub embedded_dns: bool,
    /// Endpoint names by sandbox, built on first use (queries per sandbox
    /// would otherwise scan every endpoint: O(N²) at scale).
    pub by_sandbox: std::sync::OnceLock<BTreeMap<String, Vec<String>>>,
    /// The key path of each key and value position in the file, so that a
    /// problem found later (at plan time) names its key as data.
    pub key_paths: std::sync::Arc<BTreeMap<super::Loc, String>>,
}

impl Topology {
    /// Endpoints of one sandbox, in endpoint-name order.
    pub fn endpoints_of_sandbox<'a>(
        &'a self,
        sandbox: &'a str,
    ) -> impl Iterator<Item = &'a Endpoint> {
        let index = self.by_sandbox.get_or_init(|| {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for e in self.endpoints.values() {
                m.entry(e.sandbox.clone()).or_default().push(e.name.clone());
            }
            m
        });
        index
            .get(sandbox)
            .into_iter()
            .flatten()
            .filter_map(|n| self.endpoints.get(n))
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
            embedded_dns: self.embedded_dns,
            networks,
            sandboxes,
            endpoints,
            by_sandbox: Default::default(),
            key_paths: self.key_paths.clone(),
        }
    }

    /// The key path of the key or value at `loc` in the file
    /// (`networks.front.driver`).
    pub fn key_at(&self, loc: super::Loc) -> Option<String> {
        self.key_paths.get(&loc).cloned()
    }

    /// The sandbox shares the host's network stack (joined to a `host` network).
    pub fn sandbox_uses_host_stack(&self, sandbox: &str) -> bool {
        self.endpoints_of_sandbox(sandbox)
            .any(|e| self.networks[&e.network].caps.host_stack)
    }
}

/// Errors located in a topology's file.
impl PlanError {
    /// A problem at `loc` in `t`'s file (its key path found there).
    pub fn at(t: &Topology, loc: Loc, message: impl Into<String>) -> PlanError {
        PlanError {
            file: t.file.clone(),
            loc: Some(loc),
            message: message.into(),
            key: t.key_at(loc),
            kind: crate::errors::ErrorKind::Invalid,
        }
    }
}
