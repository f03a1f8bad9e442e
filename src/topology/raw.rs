//! The topology file as written: serde types that keep every value's location.
//!
//! Nothing here is validated beyond YAML types and key names; `validate`
//! turns these into a [`crate::spec::Topology`].

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

pub type Map<T> = BTreeMap<String, Spanned<T>>;

/// A key that is present, whatever its value (null included): `Some`.
/// Absent keys get `None` from `#[serde(default)]`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    pub version: Spanned<u32>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub hosts: Map<Option<RawHost>>,
    #[serde(default)]
    pub networks: Map<Option<RawNetwork>>,
    #[serde(default)]
    pub sandboxes: Map<Option<RawSandbox>>,
    #[serde(default)]
    pub endpoints: Map<Option<RawEndpoint>>,
    /// Top-level `dns: { embedded: false }`: hosts files instead of the
    /// embedded resolver.
    pub dns: Option<Spanned<RawTopDns>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopDns {
    pub embedded: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Underlay address (the VTEP of overlay networks).
    pub address: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// `Some(None)` when the key is there with YAML's null: `driver: null`
    /// unquoted is not the driver named "null".
    #[serde(default, deserialize_with = "present")]
    pub driver: Option<Spanned<Option<String>>>,
    pub subnet: Option<Spanned<String>>,
    pub gateway: Option<Spanned<String>>,
    pub ip_range: Option<Spanned<String>>,
    pub ipv6: Option<Spanned<RawIpv6>>,
    /// `ipv4: false`: an IPv6-only network (Docker's `--ipv4=false`).
    pub ipv4: Option<Spanned<bool>>,
    pub internal: Option<Spanned<bool>>,
    pub mtu: Option<Spanned<u32>>,
    /// Addresses of the subnet never given to an endpoint (Docker's
    /// `--aux-address NAME=IP`).
    #[serde(default)]
    pub aux_addresses: Map<String>,
    #[serde(default)]
    pub options: Map<serde_json::Value>,
    /// A remote IPAM plugin instead of cnm's own.
    pub ipam: Option<Spanned<RawIpam>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIpam {
    pub driver: Spanned<String>,
    #[serde(default)]
    pub options: Map<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIpv6 {
    pub subnet: Spanned<String>,
    pub gateway: Option<Spanned<String>>,
    pub ip_range: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSandbox {
    pub hostname: Option<Spanned<String>>,
    pub domainname: Option<Spanned<String>>,
    pub dns: Option<Spanned<RawDns>>,
    pub host: Option<Spanned<String>>,
    /// `NAME:IP` lines for the hosts file (compose's `extra_hosts`).
    #[serde(default)]
    pub extra_hosts: Vec<Spanned<String>>,
    /// An existing namespace to borrow: a path, `pid:N`, `docker:NAME`,
    /// `podman:NAME`.
    pub netns: Option<Spanned<String>>,
    /// The container the sandbox is (a runtime's full container ID).
    pub container_id: Option<Spanned<String>>,
    /// Namespaced `net.*` sysctls set inside the sandbox (`--sysctl`).
    #[serde(default)]
    pub sysctls: Map<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    #[serde(default)]
    pub servers: Vec<Spanned<String>>,
    #[serde(default)]
    pub search: Vec<Spanned<String>>,
    #[serde(default)]
    pub options: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    pub network: Spanned<String>,
    pub sandbox: Spanned<String>,
    pub address: Option<Spanned<String>>,
    pub ipv6_address: Option<Spanned<String>>,
    pub mac: Option<Spanned<String>>,
    pub ifname: Option<Spanned<String>>,
    #[serde(default)]
    pub aliases: Vec<Spanned<String>>,
    /// Short strings or long-form maps; parsed by hand in `ports.rs` so that
    /// each form gets its own precise error.
    #[serde(default)]
    pub ports: Vec<Spanned<serde_json::Value>>,
    pub gateway: Option<Spanned<bool>>,
}
