//! Leftovers of an interrupted apply, and the host sysctls cnm needs.

use super::*;

/// Something an interrupted apply left behind, found through the journal:
/// a link still under its temporary name, or the empty mount point of a
/// namespace. Only ever deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrayRes {
    /// What was left behind, and where.
    pub what: StrayKind,
}

/// What kind of leftover a [`StrayRes`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum StrayKind {
    /// A link named `ifname` (a temporary name) in the host namespace, or
    /// in sandbox namespace `netns`.
    Link {
        /// The temporary name.
        ifname: String,
        /// The ownership mark the journal recorded for it
        /// (`cnm:<topology>:<kind>:<name>`).
        mark: String,
        /// The sandbox namespace it is in; `None`: the host namespace.
        #[serde(skip_serializing_if = "Option::is_none")]
        netns: Option<String>,
    },
    /// An empty file at `/run/netns/<netns>` with this identity.
    Mountpoint {
        /// The namespace's name.
        netns: String,
        /// The empty file's identity, checked again before it is deleted.
        #[serde(skip)]
        id: Option<FileId>,
    },
    /// An endpoint a driver noted making (a plugin's) whose interface is
    /// gone: the driver is told to let it go.
    Endpoint {
        /// The endpoint's name.
        endpoint: String,
        /// The network it joined.
        network: String,
        /// The driver that made it.
        driver: String,
    },
}

/// A sysctl cnm needs (e.g. IPv4 forwarding). cnm sets these and never
/// resets them: other software on the host may rely on them too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SysctlRes {
    /// Path under /proc/sys, e.g. `net/ipv4/ip_forward`.
    pub key: String,
    /// The value cnm sets (`1`); observed: the kernel's value.
    pub value: String,
}
