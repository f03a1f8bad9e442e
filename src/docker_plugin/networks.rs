//! Docker's networks as edits of the topology `docker`: CreateNetwork adds
//! one, named by the first 12 hex digits of its ID (as `docker network ls`
//! prints it), with the pool, gateway and options Docker's IPAM and the
//! user gave; DeleteNetwork removes it, and the topology goes with the
//! last one.

use crate::topology::file::{FileIpv6, FileNetwork, FileTopDns, FileTopology};
use serde_json::Value;

/// The topology Docker's networks live in.
pub const TOPOLOGY: &str = "docker";

/// A network's name in the topology: its ID's first 12 characters.
pub fn name_of(network_id: &str) -> Result<String, String> {
    let short: String = network_id.chars().take(12).collect();
    if short.len() < 12 || !short.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "NetworkID '{}' is not Docker's hex ID",
            network_id.escape_debug()
        ));
    }
    Ok(short.to_ascii_lowercase())
}

/// The network a CreateNetwork request describes.
pub fn from_request(req: &Value) -> Result<FileNetwork, String> {
    let opts = &req["Options"];
    let generic = opts["com.docker.network.generic"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut net = FileNetwork {
        internal: opts["com.docker.network.internal"]
            .as_bool()
            .unwrap_or(false),
        options: generic
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(_) | Value::Bool(_) | Value::Number(_) => (k, v),
                other => (k, Value::String(other.to_string())),
            })
            .collect(),
        ..FileNetwork::default()
    };
    let (subnet, gateway) = pool(&req["IPv4Data"])?;
    net.subnet = subnet;
    net.gateway = gateway;
    if opts["com.docker.network.enable_ipv6"].as_bool() == Some(true) {
        if let (Some(subnet), gateway) = pool(&req["IPv6Data"])? {
            net.ipv6 = Some(FileIpv6 {
                subnet,
                gateway,
                ip_range: None,
            });
        }
    }
    Ok(net)
}

/// The first pool of `IPv4Data`/`IPv6Data`, and its gateway as a plain
/// address (Docker sends it as a CIDR).
fn pool(data: &Value) -> Result<(Option<String>, Option<String>), String> {
    let Some(first) = data.as_array().and_then(|a| a.first()) else {
        return Ok((None, None));
    };
    let subnet = first["Pool"].as_str().map(str::to_string);
    let gateway = first["Gateway"]
        .as_str()
        .map(|g| g.split('/').next().unwrap_or(g).to_string());
    if subnet.is_none() {
        return Err("IPv4Data has no Pool".into());
    }
    Ok((subnet, gateway))
}

/// The topology with network `name` as `net` (kept as it is when present:
/// Docker retries).
pub fn add(before: Option<FileTopology>, name: &str, net: &FileNetwork) -> FileTopology {
    let mut t = before.unwrap_or_else(|| FileTopology {
        version: 1,
        name: TOPOLOGY.to_string(),
        ..FileTopology::default()
    });
    // Docker serves its containers' names and writes their files.
    t.dns = Some(FileTopDns { embedded: false });
    t.networks
        .entry(name.to_string())
        .or_insert_with(|| net.clone());
    t
}

/// The topology without network `name` and its endpoints (`None`:
/// nothing is left).
pub fn remove(before: Option<FileTopology>, name: &str) -> Option<FileTopology> {
    let mut t = before?;
    t.networks.remove(name);
    t.endpoints.retain(|_, e| e.network != name);
    let used: std::collections::BTreeSet<String> =
        t.endpoints.values().map(|e| e.sandbox.clone()).collect();
    t.sandboxes.retain(|s, _| used.contains(s));
    (!t.networks.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_create_request_becomes_a_network() {
        let req = json!({
            "NetworkID": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Options": {
                "com.docker.network.generic": { "com.docker.network.bridge.enable_icc": "false" },
                "com.docker.network.enable_ipv6": false,
                "com.docker.network.internal": true
            },
            "IPv4Data": [{ "AddressSpace": "LocalDefault", "Pool": "10.180.0.0/24", "Gateway": "10.180.0.1/24" }],
            "IPv6Data": []
        });
        let n = from_request(&req).unwrap();
        assert_eq!(n.subnet.as_deref(), Some("10.180.0.0/24"));
        assert_eq!(n.gateway.as_deref(), Some("10.180.0.1"));
        assert!(n.internal);
        assert_eq!(n.options["com.docker.network.bridge.enable_icc"], "false");
        assert_eq!(
            name_of(req["NetworkID"].as_str().unwrap()).unwrap(),
            "0123456789ab"
        );
        assert!(name_of("../x").is_err());
        let t = add(None, "0123456789ab", &n);
        assert!(!t.dns.as_ref().unwrap().embedded);
        assert_eq!(
            add(Some(t.clone()), "0123456789ab", &FileNetwork::default()),
            t
        );
        assert!(remove(Some(t), "0123456789ab").is_none());
    }
}
