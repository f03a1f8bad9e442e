//! libnetwork's plugin protocol (see NOTES-protocols A–C): discovery, the
//! HTTP transport, activation, and the objects cnm asks plugins for
//! (networks, pools, addresses), which are recorded because no plugin can
//! be asked what it holds. The remote network driver built on this lives
//! in `drivers/remote`; remote IPAM is used by `desired` for any network
//! with `ipam: { driver: NAME }`.

pub mod client;
pub mod discovery;
pub mod objects;

pub use client::{Client, Patience};
pub use discovery::{Addr, Found};

pub use crate::errors::PluginError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The subsystem of network drivers and of IPAM drivers.
pub const NETWORK_DRIVER: &str = "NetworkDriver";
pub const IPAM_DRIVER: &str = "IpamDriver";

/// An activated plugin.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: String,
    pub client: Client,
    pub via: std::path::PathBuf,
    /// What `Plugin.Activate` said it implements.
    pub implements: Vec<String>,
    /// An IPAM plugin's default local address space.
    pub address_space: Option<String>,
    /// The IPAM handshake (capabilities, address spaces) is done: a
    /// plugin found again under the lock is not asked twice.
    pub ipam_ready: bool,
    /// One call at a time, in the order they are made (FIFO): a plugin
    /// sees the same sequence for the same plan, as with Docker.
    turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Plugin {
    pub fn implements(&self, subsystem: &str) -> bool {
        self.implements.iter().any(|i| i == subsystem)
    }

    /// `Subsystem.Method` on this plugin.
    pub async fn call(
        &self,
        subsystem: &str,
        method: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, PluginError> {
        let _turn = self.turn.lock().await;
        self.client
            .call(&format!("{subsystem}.{method}"), body, what)
            .await
    }
}

/// `Plugin.Activate` answers, once per plugin and process (as Docker
/// caches them).
fn activated() -> &'static Mutex<BTreeMap<String, Vec<String>>> {
    static A: std::sync::OnceLock<Mutex<BTreeMap<String, Vec<String>>>> =
        std::sync::OnceLock::new();
    A.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Find and activate plugin `name`. `Ok(None)`: not found anywhere.
pub async fn connect(name: &str, patience: Patience) -> Result<Option<Plugin>, PluginError> {
    let Some(found) = discovery::find(name)? else {
        return Ok(None);
    };
    let client = Client {
        plugin: name.to_string(),
        addr: found.addr.clone(),
        patience,
    };
    let cached = activated().lock().ok().and_then(|m| m.get(name).cloned());
    let implements = match cached {
        Some(i) => i,
        None => {
            let reply = client.call("Plugin.Activate", None, "activation").await?;
            let i: Vec<String> = reply
                .get("Implements")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if let Ok(mut m) = activated().lock() {
                m.insert(name.to_string(), i.clone());
            }
            i
        }
    };
    Ok(Some(Plugin {
        name: name.to_string(),
        client,
        via: found.via,
        implements,
        address_space: None,
        ipam_ready: false,
        turn: Default::default(),
    }))
}

/// A stable 64-hex-character ID for an object of a topology (Docker sends
/// 64-hex IDs): the same file gives the same IDs, so re-running is
/// idempotent for the plugin too.
pub fn stable_id(topology: &str, kind: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("cnm\0{topology}\0{kind}\0{name}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
