//! A sandbox's network namespace, cnm's own or borrowed.

use super::*;

/// A sandbox's network namespace, named under /run/netns.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceRes {
    /// The sandbox's name in the file.
    pub sandbox: String,
    /// The namespace's name under /run/netns (`quick-alpha`).
    pub netns: String,
    /// Loopback is up inside.
    pub lo_up: bool,
    /// Loopback's addresses (127.0.0.1/8 and ::1/128).
    pub lo_addrs: BTreeSet<IpNetwork>,
    /// Observed only: the namespace's inode, checked again before it is
    /// deleted, and the identity of `/etc/netns/<netns>` when cnm created
    /// that directory (removed with the namespace when empty).
    #[serde(skip)]
    pub ino: Option<u64>,
    /// Observed only: the identity of `/etc/netns/<netns>` when cnm created
    /// that directory (see `ino`).
    #[serde(skip)]
    pub etc_dir: Option<FileId>,
    /// `netns:`: a namespace cnm borrows and binds at `netns` (never
    /// made, written or deleted by cnm). `None`: cnm's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub borrowed: Option<Borrowed>,
    /// `sysctls:` set inside, by path under /proc/sys. Observed: the
    /// values of the keys cnm set or is asked to set.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
}

/// A borrowed namespace: what the file names and which namespace that is.
#[derive(Debug, Clone, Serialize)]
pub struct Borrowed {
    /// As written in `netns:` (`pid:42`, `docker:web`, a path).
    pub from: String,
    /// The namespace's identity. Desired: the one `from` names now;
    /// observed: the one bound at the sandbox's name. A container started
    /// again has a new one: the sandbox is attached again.
    pub ino: u64,
    /// Desired: where it was found (opened again, and checked, to bind it).
    #[serde(skip)]
    pub path: String,
}

impl PartialEq for Borrowed {
    fn eq(&self, o: &Self) -> bool {
        self.from == o.from && self.ino == o.ino
    }
}
impl Eq for Borrowed {}

impl PartialEq for NamespaceRes {
    fn eq(&self, o: &Self) -> bool {
        self.sandbox == o.sandbox
            && self.netns == o.netns
            && self.borrowed == o.borrowed
            && self.sysctls == o.sysctls
            && self.lo_up == o.lo_up
            // A borrowed namespace's loopback addresses are its owner's (a
            // container with IPv6 off has no ::1).
            && (self.lo_addrs == o.lo_addrs || self.borrowed.is_some())
    }
}
impl Eq for NamespaceRes {}
