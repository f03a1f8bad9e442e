//! A topology as the file writes it: a value that serializes to the file
//! format (YAML or JSON) and reads back with `spec::parse`. `apply`
//! records the one it applied (what the kernel cannot hold: names of
//! remote endpoints, hostnames, aliases, how ports and DNS were written);
//! `show` prints one, from that record corrected by what it observes.

use super::Topology;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A whole topology file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileTopology {
    /// The file format's version (1).
    pub version: u32,
    /// The topology's name.
    pub name: String,
    /// Multi-host topologies: the machines, by name (empty: single host).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, FileHost>,
    /// Networks, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, FileNetwork>,
    /// Sandboxes, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sandboxes: BTreeMap<String, FileSandbox>,
    /// Endpoints, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, FileEndpoint>,
    /// Written only when the embedded resolver is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<FileTopDns>,
}

/// Top-level `dns:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileTopDns {
    /// The embedded resolver answers in the sandboxes.
    pub embedded: bool,
}

/// One machine of `hosts:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileHost {
    /// Its underlay address (`192.0.2.10`).
    pub address: String,
}

/// A network as the file writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileNetwork {
    /// Absent: bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// IPv4 subnet (`10.10.0.0/24`); absent: allocated from the default pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// IPv4 gateway; absent: the subnet's first host address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Where dynamic IPv4 addresses come from (`10.10.0.128/25`); absent: the
    /// whole subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// `ipv6:`; absent: no IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<FileIpv6>,
    /// Written only when false (IPv6 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<bool>,
    /// `internal: true`: no outbound NAT, no published ports.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    /// MTU in bytes; absent: the driver's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// `aux_addresses`: name → address, reserved (never allocated).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, String>,
    /// The driver's options (`bridge_name`, `icc`), as the file writes them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, serde_json::Value>,
    /// `ipam:`; absent: cnm's own IPAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<FileIpam>,
}

/// `ipam: { driver, options }`: a libnetwork IPAM plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileIpam {
    /// The plugin's name.
    pub driver: String,
    /// Passed as the pool request's `Options`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// A network's `ipv6:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileIpv6 {
    /// IPv6 subnet (`fd00:10::/64`).
    pub subnet: String,
    /// IPv6 gateway; absent: the subnet's first host address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Where dynamic IPv6 addresses come from; absent: the whole subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

/// A sandbox as the file writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSandbox {
    /// `hostname:`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `domainname:`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// `dns:`; absent: the host's nameservers, search list and options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<FileDns>,
    /// Multi-host topologies: the host that realizes this sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Extra hosts-file lines, `NAME:IP` or `NAME:host-gateway`, in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// An existing namespace to borrow, as written (`pid:4242`, `docker:web`,
    /// a path); absent: cnm makes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// The runtime's ID of the container this sandbox is, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// By key as written (`net.ipv4.ip_forward`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
}

/// A sandbox's `dns:`: what goes in its resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileDns {
    /// Nameserver addresses (`10.20.0.53`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// resolv.conf options (`ndots:2`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// An endpoint as the file writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileEndpoint {
    /// The network it joins, by name.
    pub network: String,
    /// The sandbox it joins to the network, by name.
    pub sandbox: String,
    /// Static IPv4 address (`10.10.0.10`); absent: allocated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Static IPv6 address; absent: allocated when the network has IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// MAC (`02:42:0a:0a:00:0a`); absent: chosen by cnm or the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The interface's name in the sandbox; absent: the lowest free `ethN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    /// More names its peers know the sandbox by on this network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Published ports in Docker's short syntax (`8080:80/tcp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// `gateway: true`: the sandbox's default route goes through this endpoint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gateway: bool,
}

impl FileTopology {
    /// The file form of a validated topology (values normalized: ports in
    /// the short syntax, option names cnm's own).
    pub fn from_spec(t: &Topology) -> FileTopology {
        FileTopology {
            version: 1,
            name: t.name.clone(),
            dns: (!t.embedded_dns).then_some(FileTopDns { embedded: false }),
            hosts: t
                .hosts
                .values()
                .map(|h| {
                    (
                        h.name.clone(),
                        FileHost {
                            address: h.address.to_string(),
                        },
                    )
                })
                .collect(),
            networks: t
                .networks
                .values()
                .map(|n| (n.name.clone(), network(n)))
                .collect(),
            sandboxes: t
                .sandboxes
                .values()
                .map(|s| {
                    (
                        s.name.clone(),
                        FileSandbox {
                            hostname: s.hostname.clone(),
                            domainname: s.domainname.clone(),
                            dns: s.dns.as_ref().map(|d| FileDns {
                                servers: d.servers.iter().map(|i| i.to_string()).collect(),
                                search: d.search.clone(),
                                options: d.options.clone(),
                            }),
                            host: s.host.clone(),
                            extra_hosts: s.extra_hosts.iter().map(ToString::to_string).collect(),
                            netns: s.netns.as_ref().map(ToString::to_string),
                            container_id: s.container_id.clone(),
                            sysctls: s
                                .sysctls
                                .iter()
                                .map(|(k, v)| (k.replace('/', "."), v.clone()))
                                .collect(),
                        },
                    )
                })
                .collect(),
            endpoints: t
                .endpoints
                .values()
                .map(|e| {
                    (
                        e.name.clone(),
                        FileEndpoint {
                            network: e.network.clone(),
                            sandbox: e.sandbox.clone(),
                            address: e.address.map(|a| a.to_string()),
                            ipv6_address: e.ipv6_address.map(|a| a.to_string()),
                            mac: e.mac.map(|m| super::format_mac(&m)),
                            ifname: e.ifname.clone(),
                            aliases: e.aliases.clone(),
                            ports: e.ports.iter().map(|p| p.to_string()).collect(),
                            gateway: e.gateway,
                        },
                    )
                })
                .collect(),
        }
    }

    /// As YAML text (the file format).
    pub fn to_yaml(&self) -> Result<String, String> {
        serde_saphyr::to_string(self).map_err(|e| e.to_string())
    }
}

fn network(n: &super::Network) -> FileNetwork {
    FileNetwork {
        driver: (n.driver != super::DEFAULT_DRIVER).then(|| n.driver.clone()),
        subnet: n.subnet.map(|s| s.to_string()),
        gateway: n.gateway.map(|g| g.to_string()),
        ip_range: n.ip_range.map(|r| r.to_string()),
        ipv6: n.ipv6.as_ref().map(|v| FileIpv6 {
            subnet: v.subnet.to_string(),
            gateway: v.gateway.map(|g| g.to_string()),
            ip_range: v.ip_range.map(|r| r.to_string()),
        }),
        ipv4: (!n.ipv4).then_some(false),
        internal: n.internal,
        mtu: n.mtu,
        aux_addresses: n
            .aux_addresses
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        options: n.options.0.to_file(),
        ipam: n.ipam.as_ref().map(|i| FileIpam {
            driver: i.driver.clone(),
            options: i.options.clone(),
        }),
    }
}
