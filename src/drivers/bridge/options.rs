//! The bridge driver's options: `bridge_name`, `icc`.

use crate::drivers::{DriverOptions, NetworkInput, Options};
use crate::spec::{valid_kernel_name, Diagnostics, Network};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeOptions {
    /// The bridge's kernel name, when the file fixes it.
    pub bridge_name: Option<String>,
    /// Inter-container connectivity (`false`: enforced by the firewall).
    pub icc: bool,
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
        m
    }
}

pub fn check(net: &NetworkInput<'_>, c: &mut Diagnostics) -> Options {
    let name = net.name;
    let mut o = BridgeOptions {
        bridge_name: None,
        icc: true,
    };
    for (key, v) in &net.raw.options {
        match key.as_str() {
            "bridge_name" => match v.value.as_str() {
                Some(s) => match valid_kernel_name(s) {
                    Ok(()) => o.bridge_name = Some(s.to_string()),
                    Err(e) => c.err(v, format!("network {name}: options.bridge_name '{s}' {e}")),
                },
                None => c.err(
                    v,
                    format!("network {name}: options.bridge_name must be a string"),
                ),
            },
            "icc" => match v.value.as_bool() {
                Some(b) => o.icc = b,
                None => c.err(
                    v,
                    format!("network {name}: options.icc must be true or false"),
                ),
            },
            other => c.err(
                v,
                format!(
                    "network {name}: unknown bridge option '{other}' (known: bridge_name, icc)"
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
