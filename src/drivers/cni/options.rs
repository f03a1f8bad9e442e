//! The cni driver's options: the chain, inline (`plugins:`, a conflist's
//! `plugins` list) or by name (`conflist:`, a network configuration list
//! in /etc/cni/net.d).

use crate::drivers::{DriverOptions, NetworkInput, Options};
use crate::topology::{Diagnostics, Loc};
use serde_json::Value;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest chain accepted (conflists in the wild hold a handful).
pub const MAX_PLUGINS: usize = 32;

/// Where the chain comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `plugins:`, each an object with a `type`.
    Inline(Vec<Value>),
    /// `conflist:`, by its `name`.
    Conflist(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CniOptions {
    pub source: Source,
    /// Where the chain is written (for plan errors about it).
    pub loc: Loc,
    /// The chain gives addresses (an inline chain with an `ipam` section;
    /// a conflist on a network without `subnet:`), not cnm.
    pub own_ipam: bool,
}

impl DriverOptions for CniOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn to_file(&self) -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        match &self.source {
            Source::Inline(p) => m.insert("plugins".into(), Value::Array(p.clone())),
            Source::Conflist(n) => m.insert("conflist".into(), Value::String(n.clone())),
        };
        m
    }
}

pub fn check(net: &NetworkInput<'_>, c: &mut Diagnostics) -> Options {
    let name = net.name;
    let mut source = None;
    let mut loc = net.loc;
    for (key, v) in &net.raw.options {
        match key.as_str() {
            "plugins" => {
                loc = v.into();
                source = plugins(name, &v.value)
                    .map_err(|e| c.err(v, e))
                    .ok()
                    .map(Source::Inline);
            }
            "conflist" => {
                loc = v.into();
                match v.value.as_str() {
                    Some(n) if crate::naming::valid_identifier(n, 128).is_ok() => {
                        source = Some(Source::Conflist(n.to_string()))
                    }
                    _ => c.err(
                        v,
                        format!("network {name}: options.conflist must be the name of a network configuration list (letters, digits, '_', '.', '-')"),
                    ),
                }
            }
            other => c.err(
                v,
                format!("network {name}: unknown cni option '{other}' (known: plugins, conflist)"),
            ),
        }
    }
    let both = net.raw.options.contains_key("plugins") && net.raw.options.contains_key("conflist");
    if both {
        c.err(
            net.loc,
            format!("network {name}: give options.plugins or options.conflist, not both"),
        );
    } else if !net.raw.options.contains_key("plugins") && !net.raw.options.contains_key("conflist")
    {
        c.err(
            net.loc,
            format!("network {name}: driver cni needs options.plugins (a chain of CNI plugins) or options.conflist (a name in /etc/cni/net.d)"),
        );
    }
    let source = source.unwrap_or(Source::Inline(Vec::new()));
    let own_ipam = match &source {
        Source::Inline(p) => p.iter().any(|p| p.get("ipam").is_some()),
        Source::Conflist(_) => net.raw.subnet.is_none(),
    };
    // A subnet beside a chain's own IPAM is refused by the engine, as on
    // every network whose addresses cnm does not give.
    Options(Arc::new(CniOptions {
        source,
        loc,
        own_ipam,
    }))
}

/// `plugins:`: 1 to [`MAX_PLUGINS`] objects, each with a string `type`.
fn plugins(network: &str, v: &Value) -> Result<Vec<Value>, String> {
    let list = v.as_array().ok_or_else(|| {
        format!("network {network}: options.plugins must be a list of CNI plugin configurations")
    })?;
    if list.is_empty() || list.len() > MAX_PLUGINS {
        return Err(format!(
            "network {network}: options.plugins must hold 1 to {MAX_PLUGINS} plugins"
        ));
    }
    for (i, p) in list.iter().enumerate() {
        let kind = p.get("type").and_then(Value::as_str);
        if !p.is_object() || kind.is_none() {
            return Err(format!("network {network}: options.plugins[{i}] must be an object with a type (bridge, macvlan, ...)"));
        }
        if p.get("name").is_some() || p.get("cniVersion").is_some() {
            return Err(format!(
                "network {network}: options.plugins[{i}]: name and cniVersion are cnm's to set (the name is <topology>-<network>, the version negotiated)"
            ));
        }
    }
    Ok(list.clone())
}
