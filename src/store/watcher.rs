//! The record of the `cnm watch` that keeps a topology, and how to tell
//! that process is still the one running.

use super::RECORD_VERSION;
use serde::{Deserialize, Serialize};

/// The `cnm watch` that keeps a topology converged, for as long as it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherRecord {
    pub version: u32,
    pub pid: u32,
    /// The process's start time (field 22 of /proc/PID/stat): a pid alone
    /// may have been reused.
    pub start: u64,
    /// The file it watches (canonical path).
    pub file: String,
}

impl WatcherRecord {
    /// The running process's record.
    pub fn me(file: &str) -> Option<WatcherRecord> {
        let pid = std::process::id();
        Some(WatcherRecord {
            version: RECORD_VERSION,
            pid,
            start: start_time(pid)?,
            file: file.to_string(),
        })
    }

    /// Whether that process is still the one running.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Start time of process `pid` (clock ticks since boot), from /proc.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether process `pid` with start time `start` still runs: the same
/// process (not a reused pid) and not a zombie waiting to be reaped.
pub fn running(pid: u32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next();
    let started = fields.nth(18).and_then(|s| s.parse::<u64>().ok());
    !matches!(state, Some("Z") | Some("X") | None) && started == Some(start)
}
