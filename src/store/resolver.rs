//! The embedded resolver's files, under `/run/cnm/resolver` (runtime
//! state: the resolver and the namespaces it serves do not survive a
//! reboot either):
//!
//! - `topologies/<topology>.json`: each topology's configuration, written
//!   by `apply`, removed by `destroy`;
//! - `identity`: the running resolver's pid and start time, written by the
//!   resolver once it holds `lock`;
//! - `status`: what it serves, rewritten after every (re)load;
//! - `log`: its standard error when `apply` started it.

use super::{
    check_topology_name, read_json, root, write_json, Durable, Result, DIR_MODE, FILE_MODE,
};

use crate::safe::Dir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A configuration of thousands of sandboxes is a few MiB; more is not ours.
const MAX_CONFIG: u64 = 64 << 20;
/// The log is cut when `apply` finds it bigger than this.
const MAX_LOG: u64 = 1 << 20;

/// The running resolver: a pid alone may have been reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolverIdentity {
    pub version: u32,
    pub pid: u32,
    /// Field 22 of /proc/PID/stat.
    pub start: u64,
}

impl ResolverIdentity {
    /// Whether that process still runs (a zombie does not).
    pub fn alive(&self) -> bool {
        super::watcher::running(self.pid, self.start)
    }
}

/// What the resolver serves since its last (re)load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolverStatus {
    pub version: u32,
    pub pid: u32,
    pub start: u64,
    /// Counts its loads: a cnm that signalled it waits for a newer one.
    #[serde(default)]
    pub reloads: u64,
    /// Topology → SHA-256 (hex) of the configuration it loaded.
    pub topologies: BTreeMap<String, String>,
    /// Namespace → where it listens there.
    pub sandboxes: BTreeMap<String, Bound>,
}

/// One sandbox's sockets: bound in the namespace with this inode, or why not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// The port it listens at on 127.0.0.11.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ResolverStore {
    run: PathBuf,
}

impl super::Store {
    pub fn resolver(&self) -> ResolverStore {
        ResolverStore {
            run: self.run.clone(),
        }
    }
}

impl ResolverStore {
    fn dir(&self) -> Result<Dir> {
        let (d, _) = root(&self.run)?.create_subdir("resolver", DIR_MODE)?;
        d.ensure_private(DIR_MODE)?;
        Ok(d)
    }

    fn existing(&self, rel: &[&str]) -> Result<Option<Dir>> {
        let mut path = vec!["resolver"];
        path.extend_from_slice(rel);
        super::open_trusted(&self.run, &path)
    }

    fn configs_dir(&self) -> Result<Dir> {
        let (d, _) = self.dir()?.create_subdir("topologies", DIR_MODE)?;
        d.ensure_private(DIR_MODE)?;
        Ok(d)
    }

    /// One topology's configuration, as written.
    pub fn config(&self, topology: &str) -> Result<Option<Vec<u8>>> {
        check_topology_name(topology)?;
        let Some(d) = self.existing(&["topologies"])? else {
            return Ok(None);
        };
        Ok(d.read(&format!("{topology}.json"), MAX_CONFIG)?
            .map(|(b, _)| b))
    }

    pub fn write_config(&self, topology: &str, data: &[u8]) -> Result<()> {
        check_topology_name(topology)?;
        self.configs_dir()?
            .write(&format!("{topology}.json"), data, FILE_MODE, None, false)?;
        Ok(())
    }

    pub fn remove_config(&self, topology: &str) -> Result<()> {
        check_topology_name(topology)?;
        if let Some(d) = self.existing(&["topologies"])? {
            d.remove_file(&format!("{topology}.json"), None)?;
        }
        Ok(())
    }

    /// Topologies with a configuration (names that fail the check are
    /// not cnm's and are ignored).
    pub fn topologies(&self) -> Result<Vec<String>> {
        let Some(d) = self.existing(&["topologies"])? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<String> = d
            .list()?
            .into_iter()
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .filter(|n| check_topology_name(n).is_ok())
            .collect();
        out.sort();
        Ok(out)
    }

    pub fn identity(&self) -> Result<Option<ResolverIdentity>> {
        match self.existing(&[])? {
            Some(d) => read_json(&d, "identity"),
            None => Ok(None),
        }
    }

    pub fn write_identity(&self, id: &ResolverIdentity) -> Result<()> {
        write_json(&self.dir()?, "identity", id, Durable::No)
    }

    pub fn status(&self) -> Result<Option<ResolverStatus>> {
        let Some(d) = self.existing(&[])? else {
            return Ok(None);
        };
        // Thousands of sandboxes make it bigger than a usual record.
        let Some((b, _)) = d.read("status", MAX_CONFIG)? else {
            return Ok(None);
        };
        serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| super::StoreError::Corrupt {
                path: d.join("status").display().to_string(),
                why: e.to_string(),
            })
    }

    pub fn write_status(&self, s: &ResolverStatus) -> Result<()> {
        let text = serde_json::to_vec(s).unwrap_or_default();
        // Rewritten on every reload and regenerated by the next one.
        self.dir()?.write("status", &text, FILE_MODE, None, false)?;
        Ok(())
    }

    /// Forget resolver `id`, gone: its identity and status, unless the
    /// identity is already another's (a resolver that took over).
    pub fn clear_process_of(&self, id: &ResolverIdentity) -> Result<()> {
        if self.identity().ok().flatten().is_some_and(|cur| cur != *id) {
            return Ok(());
        }
        if let Some(d) = self.existing(&[])? {
            d.remove_file("identity", None)?;
            d.remove_file("status", None)?;
        }
        Ok(())
    }

    /// The file whose flock makes one resolver per host.
    /// Where the running resolver's lock is (it holds the file open).
    pub fn lock_path(&self) -> PathBuf {
        self.run.join("resolver").join("lock")
    }

    pub fn lock_file(&self) -> Result<std::fs::File> {
        Ok(self.dir()?.open_or_create("lock", FILE_MODE)?)
    }

    /// The resolver's log, for its standard error: appended to, and
    /// emptied first when it has grown past 1 MiB.
    pub fn log_file(&self) -> Result<std::fs::File> {
        use std::io::Seek;
        let mut f = self.dir()?.open_or_create("log", FILE_MODE)?;
        if f.metadata().map(|m| m.len()).unwrap_or(0) > MAX_LOG {
            let _ = f.set_len(0);
        }
        let _ = f.seek(std::io::SeekFrom::End(0));
        Ok(f)
    }

    /// The log's text (bounded), for error messages.
    pub fn log_text(&self) -> String {
        let Ok(Some(d)) = self.existing(&[]) else {
            return String::new();
        };
        match d.read("log", MAX_LOG * 2) {
            Ok(Some((b, _))) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        }
    }

    /// The log's path, for messages.
    pub fn log_path(&self) -> String {
        self.run.join("resolver/log").display().to_string()
    }
}
