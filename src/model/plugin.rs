//! Objects cnm asks a libnetwork plugin for: an IPAM pool, an address, a
//! driver's network, a node. They live in the plugin, which cannot be
//! asked what it holds, so what was observed of them is what cnm recorded
//! when the plugin answered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What is asked for; the order is the order of creation (a pool before
/// its gateway, before the network that is given both, before endpoint
/// addresses) and, reversed, of deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginCall {
    /// `IpamDriver.RequestPool` / `ReleasePool`.
    Pool,
    /// `IpamDriver.RequestAddress` for a network's gateway.
    Gateway,
    /// `NetworkDriver.CreateNetwork` / `DeleteNetwork`.
    Network,
    /// `NetworkDriver.DiscoverNew` / `DiscoverDelete` for another host.
    Node,
    /// `IpamDriver.RequestAddress` / `ReleaseAddress` for an endpoint.
    Address,
}

/// One object held by a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRes {
    /// Unique within the topology (`pool front v4`).
    pub key: String,
    /// Which call makes (and releases) it.
    pub call: PluginCall,
    /// The plugin's name.
    pub plugin: String,
    /// The network it is for.
    pub network: String,
    /// The endpoint of an address; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// The request's body: what is asked for. A change means a replace.
    /// Values not known before an earlier object is made are
    /// [`crate::model::KNOWN_AFTER_APPLY`].
    pub request: Value,
    /// Observed only: the plugin's answer (`PoolID`, `Pool`, `Address`).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub returned: Value,
    /// Observed only: the call was made and its answer never recorded (a
    /// crash): the object is released if possible and asked for again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl PluginRes {
    /// Whether the request still waits on a value an earlier object gives.
    pub fn waits(&self) -> bool {
        fn has(v: &Value) -> bool {
            match v {
                Value::String(s) => s == crate::model::KNOWN_AFTER_APPLY,
                Value::Array(a) => a.iter().any(has),
                Value::Object(o) => o.values().any(has),
                _ => false,
            }
        }
        has(&self.request)
    }

    /// A string field of the answer.
    pub fn returned_str(&self, field: &str) -> Option<&str> {
        self.returned
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A string field of the request.
    pub fn request_str(&self, field: &str) -> Option<&str> {
        self.request
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}
