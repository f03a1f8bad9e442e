//! What `cnm watch` tells about itself: its last convergence, kept beside
//! its claim (`/run/cnm/watchers/status/<t>`, read by `cnm status`; a
//! destroy of the topology leaves it), and
//! systemd's notification protocol (`READY=1` once the first apply has
//! run, `STATUS=` after each one) when `NOTIFY_SOCKET` is set.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The last convergence of a watcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchStatus {
    pub version: u32,
    pub pid: u32,
    /// The file it watches.
    pub file: String,
    /// When the watcher started (seconds since the epoch).
    pub started: u64,
    /// How many applies it ran.
    pub applies: u64,
    pub last: Option<Convergence>,
}

/// One apply of a watcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convergence {
    /// When it ended (seconds since the epoch).
    pub at: u64,
    /// `converged` or `failed`.
    pub result: String,
    /// What started it (`start`, `file changed`, a drift, `resync`).
    pub reason: String,
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    pub ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Convergence {
    /// One line: `converged at T (file changed): 2 added, 0 changed, 0 destroyed in 35 ms`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} at {} ({}): {} added, {} changed, {} destroyed in {} ms",
            self.result,
            humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(self.at)),
            self.reason,
            self.added,
            self.changed,
            self.destroyed,
            self.ms
        );
        if let Some(e) = &self.error {
            s.push_str(&format!(": {}", e.lines().next().unwrap_or_default()));
        }
        s
    }
}

const STATUSES: &str = "status";

/// Record a watcher's status for topology `name` (regenerated after each
/// apply: not synced).
pub fn record(
    store: &crate::store::Store,
    name: &str,
    s: &WatchStatus,
) -> Result<(), crate::store::StoreError> {
    crate::store::check_topology_name(name)?;
    let d = store.watchers_dir_create(STATUSES)?;
    let text = serde_json::to_vec(s).unwrap_or_default();
    d.write(name, &text, crate::store::RECORD_FILE_MODE, None, false)?;
    Ok(())
}

/// The last status a watcher of topology `name` recorded.
pub fn read(store: &crate::store::Store, name: &str) -> Option<WatchStatus> {
    crate::store::check_topology_name(name).ok()?;
    let d = store.watchers_dir(STATUSES).ok()??;
    let (text, _) = d.read_string(name, crate::store::MAX_RECORD_SIZE).ok()??;
    serde_json::from_str(&text).ok()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Send `state` to systemd when it asked for notifications. Best effort:
/// a service manager that is gone changes nothing here.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    // `@name`: a socket in the abstract namespace.
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|a| socket.send_to_addr(state.as_bytes(), &a))
        }
        None => socket.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = sent {
        tracing::debug!("cannot notify the service manager: {e}");
    }
}
