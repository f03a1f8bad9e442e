//! Why a watcher reconciles: a value, decided on by kind (a resync and the
//! first round read everything), shown in the log and the status line.

use std::fmt;

/// Why a round runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The watcher started.
    Start,
    /// The topology file (or record) changed.
    FileChanged,
    /// The full re-plan (`--resync`).
    Resync,
    /// The last reconcile failed; trying again after the backoff.
    Retry,
    /// Something changed again while the apply verified its work.
    RacedApply,
    /// An event from the kernel or a check (its description).
    Kernel(String),
}

impl Reason {
    /// A round that reads everything, trusting no namespace.
    pub fn reads_all(&self) -> bool {
        matches!(self, Reason::Start | Reason::Resync)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Start => f.write_str("start"),
            Reason::FileChanged => f.write_str("file changed"),
            Reason::Resync => f.write_str("resync"),
            Reason::Retry => f.write_str("retry"),
            Reason::RacedApply => f.write_str("changed again during apply"),
            Reason::Kernel(what) => f.write_str(what),
        }
    }
}
