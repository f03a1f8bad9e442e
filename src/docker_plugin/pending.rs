//! What Docker told of an endpoint before cnm records it in the topology
//! (CreateEndpoint's address and MAC, Join's sandbox and interface), kept
//! on disk: the plugin holds nothing in memory that records lack.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where pending endpoints are kept, one file each.
const DIR: &str = "/var/lib/cnm/docker-plugin";
const MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pending {
    pub network: String,
    /// `10.180.0.2/24`, as Docker's IPAM gave it.
    pub address: Option<String>,
    pub address_v6: Option<String>,
    pub mac: String,
    /// Join: the sandbox's namespace path and the host end's name.
    pub sandbox_key: Option<String>,
    pub host_end: Option<String>,
    pub src_name: Option<String>,
    /// ProgramExternalConnectivity: Docker's port map, in the file's syntax.
    #[serde(default)]
    pub ports: Vec<String>,
}

fn dir() -> Result<crate::safe::Dir, String> {
    crate::safe::Dir::create_all(Path::new(DIR), 0o700).map_err(|e| e.to_string())
}

pub fn save(endpoint: &str, p: &Pending) -> Result<(), String> {
    let text = serde_json::to_vec(p).map_err(|e| e.to_string())?;
    dir()?
        .write(&format!("{endpoint}.json"), &text, 0o600, None, true)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub fn load(endpoint: &str) -> Result<Option<Pending>, String> {
    let Some((text, _)) = dir()?
        .read_string(&format!("{endpoint}.json"), MAX_BYTES)
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| e.to_string())
}

pub fn forget(endpoint: &str) {
    if let Ok(d) = dir() {
        let _ = d.remove_file(&format!("{endpoint}.json"), None);
    }
}

/// Every pending endpoint that has joined.
pub fn all() -> Vec<String> {
    let Ok(d) = dir() else { return Vec::new() };
    d.list()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .filter(|ep| {
            load(ep)
                .ok()
                .flatten()
                .is_some_and(|p| p.sandbox_key.is_some())
        })
        .collect()
}
