//! The configuration a runtime passes on standard input, as cnm reads it:
//! `{"cniVersion", "name", "type": "cnm", "network": {…topology file's
//! network keys…}}`, plus what runtimes inject (`runtimeConfig`,
//! `prevResult`, GC's `cni.dev/valid-attachments`). Other keys are ignored,
//! as a chained plugin's configuration holds keys for others.

use super::attachments::{Attachment, TOPOLOGY_PREFIX};
use crate::cni::{code, CniError};
use crate::topology::file::FileNetwork;
use serde_json::Value;
use std::collections::BTreeSet;

/// A checked configuration.
#[derive(Debug)]
pub struct NetConf {
    /// `cniVersion` as written.
    pub version: String,
    /// The network's `name` (the conflist's).
    pub name: String,
    /// The topology it becomes, `cni-<name>`.
    pub topology: String,
    /// `network`, as written (checked by [`NetConf::network`]).
    network: Value,
    /// GC: the attachments to keep (`None`: not given).
    pub valid_attachments: Option<BTreeSet<Attachment>>,
}

/// `cniVersion` of a configuration, if it has a readable one (errors are
/// written in it).
pub fn version_of(config: &Value) -> Option<&str> {
    config.get("cniVersion").and_then(Value::as_str)
}

impl NetConf {
    /// Read a configuration. Its version is checked by the caller (STATUS
    /// and GC are answered whatever it declares).
    pub fn read(config: &Value) -> Result<NetConf, CniError> {
        let invalid = |m: String| CniError::new(code::INVALID_NETWORK_CONFIG, m);
        let version = version_of(config)
            .ok_or_else(|| invalid("cniVersion is missing or not a string".into()))?
            .to_string();
        let name = config
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("name is missing or not a string".into()))?
            .to_string();
        let topology = format!("{TOPOLOGY_PREFIX}{name}");
        crate::naming::valid_identifier(&topology, crate::store::MAX_TOPOLOGY_NAME).map_err(
            |e| {
                invalid(format!(
                    "name '{}': topology {topology} {e}",
                    name.escape_debug()
                ))
            },
        )?;
        let network = match config.get("network") {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => {
                return Err(invalid(
                    "network must be an object (a topology file's network keys)".into(),
                ))
            }
        };
        Ok(NetConf {
            version,
            name,
            topology,
            network,
            valid_attachments: valid_attachments(config)?,
        })
    }

    /// The network, checked as a topology file's would be (unknown keys,
    /// addresses, options): errors name the key (`network.subnet`).
    pub fn network(&self) -> Result<FileNetwork, CniError> {
        let candidate = serde_json::json!({
            "version": 1,
            "name": self.topology,
            "dns": { "embedded": false },
            "networks": { &self.name: &self.network },
        });
        let text = serde_json::to_string_pretty(&candidate).unwrap_or_default();
        if let Err(e) = crate::spec::parse("network", &text) {
            let prefix = format!("networks.{}.", self.name);
            let msgs: Vec<String> = e
                .diagnostics
                .iter()
                .map(|d| match &d.key {
                    Some(k) => format!(
                        "network.{}: {}",
                        k.strip_prefix(&prefix).unwrap_or(k),
                        d.message
                    ),
                    None => d.message.clone(),
                })
                .collect();
            return Err(CniError::new(code::INVALID_NETWORK_CONFIG, msgs.join("; ")));
        }
        serde_json::from_value(self.network.clone())
            .map_err(|e| CniError::new(code::INVALID_NETWORK_CONFIG, format!("network: {e}")))
    }
}

/// GC's list of attachments to keep: `cni.dev/valid-attachments`, or the
/// older `cni.dev/attachments`.
fn valid_attachments(config: &Value) -> Result<Option<BTreeSet<Attachment>>, CniError> {
    let Some(list) = ["cni.dev/valid-attachments", "cni.dev/attachments"]
        .iter()
        .find_map(|k| config.get(*k))
    else {
        return Ok(None);
    };
    let bad = || {
        CniError::new(
            code::INVALID_NETWORK_CONFIG,
            "cni.dev/valid-attachments must be a list of {containerID, ifname}",
        )
    };
    let items = list.as_array().ok_or_else(bad)?;
    let mut out = BTreeSet::new();
    for item in items {
        let field = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        out.insert(Attachment {
            container_id: field("containerID").ok_or_else(bad)?,
            ifname: field("ifname").ok_or_else(bad)?,
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bad_subnet_is_named_in_the_message() {
        let c = NetConf::read(
            &json!({"cniVersion": "1.0.0", "name": "pods", "type": "cnm",
            "network": {"subnet": "10.160.0.0/33"}}),
        )
        .unwrap();
        let e = c.network().unwrap_err();
        assert_eq!(e.code, code::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("subnet"), "{e}");
        let c = NetConf::read(&json!({"cniVersion": "1.0.0", "name": "pods",
            "network": {"subnett": "10.160.0.0/24"}}))
        .unwrap();
        assert!(c.network().unwrap_err().msg.contains("subnett"));
    }

    #[test]
    fn names_too_long_for_a_topology_are_refused() {
        let e = NetConf::read(&json!({"cniVersion": "1.0.0", "name": "x".repeat(40)})).unwrap_err();
        assert_eq!(e.code, code::INVALID_NETWORK_CONFIG);
        let c = NetConf::read(&json!({"cniVersion": "0.4.0", "name": "pods",
            "network": {"subnet": "10.160.0.0/24", "options": {"icc": false}}}))
        .unwrap();
        assert_eq!(
            c.network().unwrap().subnet.as_deref(),
            Some("10.160.0.0/24")
        );
    }

    #[test]
    fn gc_reads_either_key() {
        let c = NetConf::read(&json!({"cniVersion": "1.1.0", "name": "pods",
            "cni.dev/attachments": [{"containerID": "c1", "ifname": "eth0"}]}))
        .unwrap();
        assert_eq!(c.valid_attachments.unwrap().len(), 1);
    }
}
