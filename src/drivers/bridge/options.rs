//! The bridge driver's options: `bridge_name`, `icc`, `masquerade`,
//! `host_binding_ipv4`, each also under Docker's long name
//! (`com.docker.network.bridge.name`, `…enable_icc`,
//! `…enable_ip_masquerade`, `…host_binding_ipv4`), with Docker's string
//! values (`"false"`) accepted as well as YAML's.

use crate::drivers::{DriverOptions, NetworkInput, Options};
use crate::naming::valid_kernel_name;
use crate::topology::{Diagnostics, Network};
use std::any::Any;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeOptions {
    /// The bridge's kernel name, when the file fixes it.
    pub bridge_name: Option<String>,
    /// Inter-container connectivity (`false`: enforced by the firewall).
    pub icc: bool,
    /// Outbound traffic masqueraded (`false`: sent with the sandbox's own
    /// address, for routed setups).
    pub masquerade: bool,
    /// The host address a published port binds to when it names none.
    pub host_binding_ipv4: Option<Ipv4Addr>,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            bridge_name: None,
            icc: true,
            masquerade: true,
            host_binding_ipv4: None,
        }
    }
}

impl DriverOptions for BridgeOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn to_file(&self) -> BTreeMap<String, serde_json::Value> {
        let mut m = BTreeMap::new();
        if let Some(b) = &self.bridge_name {
            m.insert("bridge_name".into(), b.clone().into());
        }
        if !self.icc {
            m.insert("icc".into(), false.into());
        }
        if !self.masquerade {
            m.insert("masquerade".into(), false.into());
        }
        if let Some(ip) = self.host_binding_ipv4 {
            m.insert("host_binding_ipv4".into(), ip.to_string().into());
        }
        m
    }
}

/// Docker's long option names, and cnm's short ones they stand for.
const DOCKER_NAMES: [(&str, &str); 4] = [
    ("com.docker.network.bridge.name", "bridge_name"),
    ("com.docker.network.bridge.enable_icc", "icc"),
    (
        "com.docker.network.bridge.enable_ip_masquerade",
        "masquerade",
    ),
    (
        "com.docker.network.bridge.host_binding_ipv4",
        "host_binding_ipv4",
    ),
];

/// A boolean, as YAML writes it or as Docker's `-o key=false` does.
fn boolean(v: &serde_json::Value) -> Option<bool> {
    v.as_bool().or_else(|| match v.as_str()? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    })
}

/// The JSON Schema of bridge options, short and Docker names alike.
pub fn schema() -> serde_json::Value {
    use crate::topology::schema as s;
    let mut props = serde_json::Map::new();
    for (short, value) in [
        ("bridge_name", s::ifname()),
        ("icc", s::boolish()),
        ("masquerade", s::boolish()),
        ("host_binding_ipv4", s::ipv4()),
    ] {
        props.insert(short.into(), value.clone());
        if let Some((long, _)) = DOCKER_NAMES.iter().find(|(_, sh)| *sh == short) {
            props.insert((*long).into(), value);
        }
    }
    props.insert(crate::drivers::DOCKER_MTU_OPTION.into(), s::docker_mtu());
    serde_json::json!({ "type": "object", "additionalProperties": false, "properties": props })
}

pub fn check(net: &NetworkInput<'_>, c: &mut Diagnostics) -> Options {
    let name = net.name;
    let mut o = BridgeOptions::default();
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, v) in &net.raw.options {
        let short = DOCKER_NAMES
            .iter()
            .find(|(long, _)| long == key)
            .map_or(key.as_str(), |(_, short)| short);
        if let Some(first) = given.insert(short, key) {
            c.err(
                v,
                format!("network {name}: options.{key} and options.{first} set the same option"),
            );
            continue;
        }
        match short {
            "bridge_name" => match v.value.as_str() {
                Some(s) => match valid_kernel_name(s) {
                    Ok(()) => o.bridge_name = Some(s.to_string()),
                    Err(e) => c.err(v, format!("network {name}: options.{key} '{s}' {e}")),
                },
                None => c.err(v, format!("network {name}: options.{key} must be a string")),
            },
            "icc" | "masquerade" => match boolean(&v.value) {
                Some(b) if short == "icc" => o.icc = b,
                Some(b) => o.masquerade = b,
                None => c.err(
                    v,
                    format!("network {name}: options.{key} must be true or false"),
                ),
            },
            "host_binding_ipv4" => match v.value.as_str().map(str::parse::<Ipv4Addr>) {
                Some(Ok(ip)) if ip.is_unspecified() => o.host_binding_ipv4 = None,
                Some(Ok(ip)) => o.host_binding_ipv4 = Some(ip),
                _ => c.err(
                    v,
                    format!("network {name}: options.{key} must be an IPv4 address"),
                ),
            },
            crate::drivers::DOCKER_MTU_OPTION => {}
            other => c.err(
                v,
                format!(
                    "network {name}: unknown bridge option '{other}' (known: bridge_name, icc, masquerade, host_binding_ipv4, and Docker's com.docker.network.bridge.* names for them)"
                ),
            ),
        }
    }
    Options(Arc::new(o))
}

/// Two networks cannot name the same bridge.
pub fn check_names(nets: &[&Network], c: &mut Diagnostics) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for n in nets {
        let Some(b) = n
            .options
            .get::<BridgeOptions>()
            .and_then(|o| o.bridge_name.clone())
        else {
            continue;
        };
        if let Some(first) = seen.insert(b.clone(), &n.name) {
            c.err(
                n.loc,
                format!(
                    "network {}: bridge_name {b} is also used by network {first}",
                    n.name
                ),
            );
        }
    }
}
