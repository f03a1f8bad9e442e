//! The plugin's whole state, kept in `DIR/state.json` so that a restarted
//! plugin still knows its networks, endpoints, pools and addresses.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

const FILE: &str = "state.json";
const TMP: &str = ".state.json.tmp";

/// BTreeMaps everywhere: the file comes out sorted, so tests can compare it.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub networks: BTreeMap<String, Network>,
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    #[serde(default)]
    pub pools: BTreeMap<String, Pool>,
    /// Allocated addresses per PoolID; a pool with none has no entry.
    #[serde(default)]
    pub addresses: BTreeMap<String, BTreeSet<IpAddr>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// `Options` and `IPv4Data`/`IPv6Data` as received in CreateNetwork.
    pub options: Map<String, Value>,
    pub ipv4_data: Vec<Value>,
    pub ipv6_data: Vec<Value>,
    pub bridge: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub mac: String,
    pub address: String,
    pub address_ipv6: String,
    pub joined: bool,
    pub sandbox_key: String,
    /// `com.docker.network.portmap` of ProgramExternalConnectivity, or null.
    pub ports: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub pool: String,
    /// Empty when the pool has no sub-pool.
    pub sub_pool: String,
    pub v6: bool,
}

impl State {
    /// The state saved in `dir`, or an empty one if there is none yet.
    pub fn load(dir: &Path) -> Result<State> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).with_context(|| format!("parse {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    /// Write-fsync-rename: a crash leaves either the old or the new file,
    /// never a torn one.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(TMP);
        let path = dir.join(FILE);
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("write {}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        // The rename itself is durable only once the directory is synced.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("sync {}", dir.display()))
    }
}
