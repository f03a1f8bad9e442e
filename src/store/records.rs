//! The records cnm keeps per topology, as serialized: namespaces, files,
//! the journal, the last apply with its claims, learned values.

use crate::safe::FileId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A namespace cnm created: its name and the inode of the namespace (the
/// nsfs inode, which names it for as long as it lives).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsRecord {
    pub version: u32,
    pub netns: String,
    /// `None` in records written before version 1 (a plain netns name).
    pub ino: Option<u64>,
    /// A borrowed namespace (`netns:` as written) bound at `netns`: cnm
    /// removes only that name, never the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrowed: Option<String>,
    /// Sysctls cnm set inside (paths under /proc/sys), read back by observe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<String>,
}

/// What cnm wrote under `/etc/netns/<netns>/` for one sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesRecord {
    pub version: u32,
    /// The directory itself, when cnm created it (else someone else's).
    pub dir: Option<FileId>,
    /// File name (`hosts`, `resolv.conf`) → identity of cnm's file.
    pub files: BTreeMap<String, FileId>,
    /// File name → the file as cnm wrote it (see [`FileStamp`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub written: BTreeMap<String, FileStamp>,
}

/// A file cnm wrote: its identity, change time and size just after, and
/// its content. A file that still has that identity, ctime and size holds
/// that content (any write moves the ctime, which, unlike the mtime, no
/// one can set back), so observe need not read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub id: FileId,
    /// Seconds and nanoseconds.
    pub ctime: (i64, i64),
    pub size: u64,
    pub content: String,
}

/// Objects about to be created, written (durably) before the kernel is
/// asked: after a crash the next run knows they are cnm's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    /// Links created under a unique temporary name, with the mark they get.
    #[serde(default)]
    pub links: Vec<JournalLink>,
    /// Namespace mount points (placeholder files) about to be created.
    #[serde(default)]
    pub netns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLink {
    pub tmp: String,
    pub mark: String,
    /// The sandbox namespace it is made in; `None`: the host's.
    #[serde(default)]
    pub netns: Option<String>,
}

impl Journal {
    pub fn is_empty(&self) -> bool {
        self.links.is_empty() && self.netns.is_empty()
    }
}

pub const RECORD_VERSION: u32 = 1;

/// What the last successful apply of a topology applied, from which file,
/// and what it holds on this host (checked against other topologies).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppliedRecord {
    pub version: u32,
    /// The file it was applied from (canonical path); `None`: stdin.
    #[serde(default)]
    pub source: Option<String>,
    /// Which of the file's `hosts:` this machine is.
    #[serde(default)]
    pub this_host: Option<String>,
    /// The topology as applied, in the file's form
    /// ([`crate::topology::file::FileTopology`]).
    pub topology: serde_json::Value,
    #[serde(default)]
    pub claims: Claims,
    /// Subnets, addresses and interface names it allocated, kept across a
    /// reboot.
    #[serde(default)]
    pub allocations: crate::model::Allocations,
}

/// Host-wide things a topology holds, which no other may take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subnets of its networks (both families), `10.0.0.0/24`.
    pub subnets: Vec<ipnetwork::IpNetwork>,
    /// Names of the links it makes (bridges, VXLAN devices).
    pub bridges: Vec<String>,
    /// What its drivers claim beyond link names, by kind (`vni` → `7000`).
    #[serde(default)]
    pub held: BTreeMap<String, Vec<String>>,
    /// Published host ports.
    pub ports: Vec<PortClaim>,
    /// VXLAN identifiers, as cnm recorded them before drivers made their
    /// own claims: read as `held["vni"]`, never written.
    #[serde(default, skip_serializing)]
    pub vnis: Vec<u32>,
}

impl Claims {
    /// The values of `kind` held (with those of older records).
    pub fn holds(&self, kind: &str, value: &str) -> bool {
        self.held
            .get(kind)
            .is_some_and(|v| v.iter().any(|x| x == value))
            || (kind == "vni" && self.vnis.iter().any(|v| v.to_string() == value))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortClaim {
    pub protocol: String,
    /// `None`: every host address.
    pub host_ip: Option<std::net::IpAddr>,
    pub first: u16,
    pub last: u16,
}

/// Objects cnm asked plugins for (pools, addresses, networks) with their
/// answers, by key: the only record of what a plugin holds for cnm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginsRecord {
    pub version: u32,
    pub objects: BTreeMap<String, crate::model::PluginRes>,
}

/// Values drivers learned during applies, by endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedRecord {
    pub version: u32,
    pub endpoints: BTreeMap<String, BTreeMap<String, String>>,
}
