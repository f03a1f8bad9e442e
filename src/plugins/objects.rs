//! Asking a plugin for an object ([`PluginRes`]) and giving it back.

use super::{Plugin, PluginError, IPAM_DRIVER, NETWORK_DRIVER};
use crate::model::{PluginCall, PluginRes};
use serde_json::{json, Value};

/// The most bytes of a field kept from an answer (an ID, an address).
const MAX_FIELD: usize = 256;

/// What is kept of an answer (recorded, read back by every plan): only
/// the fields cnm uses, each bounded.
fn kept(obj: &PluginRes, reply: &Value) -> Value {
    let field = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| s.len() <= MAX_FIELD)
            .map(|s| Value::String(s.to_string()))
    };
    let mut out = serde_json::Map::new();
    let keys: &[&str] = match obj.call {
        PluginCall::Pool => &["PoolID", "Pool"],
        PluginCall::Gateway | PluginCall::Address => &["Address"],
        PluginCall::Network | PluginCall::Node => &[],
    };
    for k in keys {
        if let Some(v) = field(reply.get(*k)) {
            out.insert(k.to_string(), v);
        }
    }
    if obj.call == PluginCall::Pool {
        let gw = reply
            .get("Data")
            .and_then(|d| d.get("com.docker.network.gateway"));
        if let Some(g) = field(gw) {
            out.insert("Data".into(), json!({ "com.docker.network.gateway": g }));
        }
    }
    Value::Object(out)
}

/// Make `obj`; returns what is kept of the plugin's answer (recorded).
pub async fn create(p: &Plugin, obj: &PluginRes) -> Result<Value, PluginError> {
    let what = describe(obj);
    let reply = match obj.call {
        PluginCall::Pool => {
            let r = p
                .call(IPAM_DRIVER, "RequestPool", Some(&obj.request), &what)
                .await?;
            require(p, "IpamDriver.RequestPool", &what, &r, &["PoolID", "Pool"])?;
            r
        }
        PluginCall::Gateway | PluginCall::Address => {
            let r = p
                .call(IPAM_DRIVER, "RequestAddress", Some(&obj.request), &what)
                .await?;
            require(p, "IpamDriver.RequestAddress", &what, &r, &["Address"])?;
            r
        }
        PluginCall::Network => {
            p.call(NETWORK_DRIVER, "CreateNetwork", Some(&obj.request), &what)
                .await?
        }
        PluginCall::Node => {
            p.call(NETWORK_DRIVER, "DiscoverNew", Some(&obj.request), &what)
                .await?
        }
    };
    Ok(kept(obj, &reply))
}

/// Give `obj` back. An object whose answer was never recorded (a crash
/// during the call) is given back when the request says enough.
pub async fn delete(p: &Plugin, obj: &PluginRes) -> Result<(), PluginError> {
    let what = describe(obj);
    match obj.call {
        PluginCall::Pool => {
            let Some(id) = obj.returned_str("PoolID") else {
                // Never answered: nothing known to release. An apply killed
                // while the plugin answered leaves a pool only the plugin
                // knows (the IPAM protocol has no way to find it): say so.
                if obj.pending {
                    tracing::warn!(
                        "{what}: an interrupted apply asked for it and never learned its PoolID; the plugin may still hold that pool (release it there)"
                    );
                }
                return Ok(());
            };
            p.call(
                IPAM_DRIVER,
                "ReleasePool",
                Some(&json!({ "PoolID": id })),
                &what,
            )
            .await?;
        }
        PluginCall::Gateway | PluginCall::Address => {
            let address = obj
                .returned_str("Address")
                .or_else(|| obj.request_str("Address"));
            let (Some(pool), Some(address)) = (obj.request_str("PoolID"), address) else {
                return Ok(());
            };
            // ReleaseAddress takes the plain IP.
            let ip = address.split('/').next().unwrap_or(address);
            let body = json!({ "PoolID": pool, "Address": ip });
            p.call(IPAM_DRIVER, "ReleaseAddress", Some(&body), &what)
                .await?;
        }
        PluginCall::Network => {
            let id = obj.request_str("NetworkID").unwrap_or_default();
            let body = json!({ "NetworkID": id });
            p.call(NETWORK_DRIVER, "DeleteNetwork", Some(&body), &what)
                .await?;
        }
        PluginCall::Node => {
            p.call(NETWORK_DRIVER, "DiscoverDelete", Some(&obj.request), &what)
                .await?;
        }
    }
    Ok(())
}

/// The object, for messages.
pub fn describe(obj: &PluginRes) -> String {
    match obj.call {
        PluginCall::Pool => format!("the pool of network {}", obj.network),
        PluginCall::Gateway => format!("the gateway of network {}", obj.network),
        PluginCall::Network => format!("network {}", obj.network),
        PluginCall::Node => format!("node {}", obj.request_str("Address").unwrap_or("?")),
        PluginCall::Address => format!("endpoint {}", obj.endpoint),
    }
}

fn require(
    p: &Plugin,
    call: &str,
    what: &str,
    reply: &Value,
    fields: &[&str],
) -> Result<(), PluginError> {
    for f in fields {
        if reply
            .get(f)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(PluginError::Failed {
                plugin: p.name.clone(),
                call: call.to_string(),
                what: what.to_string(),
                message: format!("the reply has no {f}"),
            });
        }
    }
    Ok(())
}
