//! A topology as the file writes it: a value that serializes to the file
//! format (YAML or JSON) and reads back with [`super::parse`]. `apply`
//! records the one it applied (what the kernel cannot hold: names of
//! remote endpoints, hostnames, aliases, how ports and DNS were written);
//! `show` prints one, from that record corrected by what it observes.

use super::Topology;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileTopology {
    pub version: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, FileHost>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, FileNetwork>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sandboxes: BTreeMap<String, FileSandbox>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, FileEndpoint>,
    /// Written only when the embedded resolver is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<FileTopDns>,
}

/// Top-level `dns:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileTopDns {
    pub embedded: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileHost {
    pub address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileNetwork {
    /// Absent: bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<FileIpv6>,
    /// Written only when false (IPv6 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<FileIpam>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileIpam {
    pub driver: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileIpv6 {
    pub subnet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSandbox {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<FileDns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// By key as written (`net.ipv4.ip_forward`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileDns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileEndpoint {
    pub network: String,
    pub sandbox: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
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
