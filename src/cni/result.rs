//! The result of ADD (and of each plugin of a chain, its `prevResult`).

use super::version::Version;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A CNI result, in the shape every version shares; [`CniResult::in_version`]
/// gives it a version's particulars.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// The version it is written in.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Interfaces made (host side first, then the container's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes set in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Name resolution, if the plugin has any to offer.
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

/// An interface the attachment made (in the host: no `sandbox`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name (in its namespace).
    pub name: String,
    /// `aa:bb:cc:dd:ee:ff`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// 1.1.0 and later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The namespace, exactly as `CNI_NETNS` named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// An address given to an interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// 0.4.0 only: `"4"` or `"6"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// CIDR notation (`10.160.0.2/24`).
    pub address: String,
    /// The gateway on its subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route the attachment set in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// CIDR notation (`0.0.0.0/0`).
    pub dst: String,
    /// The next hop (none: on link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// Name resolution the runtime may apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// The local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// resolv.conf options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

impl CniResult {
    /// The result as version `v` writes it: 0.4.0 tags each address with
    /// its family; `mtu` exists from 1.1.0 on.
    pub fn in_version(mut self, v: Version) -> CniResult {
        self.cni_version = v.to_string();
        for ip in &mut self.ips {
            ip.version = v
                .tags_ip_versions()
                .then(|| family(&ip.address).to_string());
        }
        if !v.is_1_1() {
            for i in &mut self.interfaces {
                i.mtu = None;
            }
        }
        self
    }
}

/// `"6"` for an IPv6 CIDR, else `"4"`.
fn family(cidr: &str) -> &'static str {
    if cidr.contains(':') {
        "6"
    } else {
        "4"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            cni_version: String::new(),
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: "02:42:0a:a0:00:02".into(),
                mtu: Some(1500),
                sandbox: Some("/run/netns/c1".into()),
            }],
            ips: vec![IpConfig {
                version: None,
                address: "10.160.0.2/24".into(),
                gateway: Some("10.160.0.1".parse().unwrap()),
                interface: Some(0),
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".into(),
                gw: Some("10.160.0.1".parse().unwrap()),
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn version_0_4_tags_addresses_and_1_0_does_not() {
        let old = serde_json::to_value(sample().in_version(Version(0, 4, 0))).unwrap();
        assert_eq!(old["ips"][0]["version"], "4");
        assert_eq!(old["cniVersion"], "0.4.0");
        assert!(old["interfaces"][0].get("mtu").is_none());
        let new = serde_json::to_value(sample().in_version(Version(1, 1, 0))).unwrap();
        assert!(new["ips"][0].get("version").is_none());
        assert_eq!(new["interfaces"][0]["mtu"], 1500);
        assert!(new.get("dns").is_none());
    }
}
