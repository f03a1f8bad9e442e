//! Everything cnm keeps on disk, in one place, on the rules of [`safe`]:
//!
//! - `/run/cnm` (runtime; gone after a reboot, like what it describes):
//!   the lock, and per topology the namespaces cnm created (with their
//!   inodes), the journal of objects being created, and the fingerprint of
//!   the firewall tables it wrote.
//! - `/var/lib/cnm` (survives a reboot, like what it describes): per
//!   topology, the identity of the files cnm wrote under `/etc/netns`.
//!
//! Directories are 0700 and files 0600. Every name that becomes part of a
//! path here (topology, sandbox) passes [`crate::spec::valid_identifier`]
//! first, and names read back from the directories are checked again;
//! record contents are data, never paths.

pub mod safe;

use crate::spec::valid_identifier;
use safe::{Dir, FileId, SafeError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use safe::Kind;

/// Runtime state: lock, journal, namespace records, firewall fingerprint.
pub const RUN_DIR: &str = "/run/cnm";
/// Persistent records: identities of files cnm wrote.
pub const LIB_DIR: &str = "/var/lib/cnm";

/// Mode of every directory cnm keeps its records in.
const DIR_MODE: u32 = 0o700;
/// Mode of every record file.
const FILE_MODE: u32 = 0o600;
/// Records are small; anything bigger is not one of ours.
const MAX_RECORD: u64 = 1 << 20;

/// Longest topology name (it prefixes namespace names and marks).
pub const MAX_TOPOLOGY_NAME: usize = 32;
/// Longest network, sandbox, endpoint or host name.
pub const MAX_OBJECT_NAME: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Safe(#[from] SafeError),
    #[error("{what} '{}' {why}", .name.escape_debug())]
    BadName {
        what: &'static str,
        name: String,
        why: String,
    },
    #[error("{path}: not a record cnm can read ({why})")]
    Corrupt { path: String, why: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Check a topology name before it becomes part of a path.
pub fn check_topology_name(name: &str) -> Result<()> {
    valid_identifier(name, MAX_TOPOLOGY_NAME).map_err(|why| StoreError::BadName {
        what: "topology name",
        name: name.to_string(),
        why,
    })
}

/// Check a sandbox (or other object) name before it becomes part of a path.
pub fn check_object_name(what: &'static str, name: &str) -> Result<()> {
    valid_identifier(name, MAX_OBJECT_NAME).map_err(|why| StoreError::BadName {
        what,
        name: name.to_string(),
        why,
    })
}

/// The two record roots. `Store::system()` is the real one; tests point it
/// elsewhere.
#[derive(Debug, Clone)]
pub struct Store {
    run: PathBuf,
    lib: PathBuf,
}

impl Default for Store {
    fn default() -> Self {
        Store::system()
    }
}

impl Store {
    pub fn system() -> Store {
        Store {
            run: PathBuf::from(RUN_DIR),
            lib: PathBuf::from(LIB_DIR),
        }
    }

    pub fn at(run: &Path, lib: &Path) -> Store {
        Store {
            run: run.to_path_buf(),
            lib: lib.to_path_buf(),
        }
    }

    /// Take the host-wide apply lock (`/run/cnm/lock`), waiting (and saying
    /// so once) while another cnm holds it.
    pub fn lock(&self) -> Result<Lock> {
        let dir = root(&self.run)?;
        let file = dir.open_or_create("lock", FILE_MODE)?;
        Ok(Lock::take(file, &dir.join("lock"))?)
    }

    /// Topologies that have records, by name (names that fail the check
    /// are ignored: nothing cnm wrote).
    pub fn topologies(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for root in [&self.run, &self.lib] {
            if let Some(d) = open_trusted(root, &["topologies"])? {
                out.extend(
                    d.list()?
                        .into_iter()
                        .filter(|n| check_topology_name(n).is_ok()),
                );
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The records of one topology; the name is checked first.
    pub fn topology(&self, name: &str) -> Result<TopologyStore> {
        check_topology_name(name)?;
        Ok(TopologyStore {
            name: name.to_string(),
            run_root: self.run.clone(),
            lib_root: self.lib.clone(),
            run: self.run.join("topologies").join(name),
            lib: self.lib.join("topologies").join(name),
        })
    }
}

/// A namespace cnm created: its name and the inode of the namespace (the
/// nsfs inode, which names it for as long as it lives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsRecord {
    pub version: u32,
    pub netns: String,
    /// `None` in records written before version 1 (a plain netns name).
    pub ino: Option<u64>,
}

/// What cnm wrote under `/etc/netns/<netns>/` for one sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesRecord {
    pub version: u32,
    /// The directory itself, when cnm created it (else someone else's).
    pub dir: Option<FileId>,
    /// File name (`hosts`, `resolv.conf`) → identity of cnm's file.
    pub files: BTreeMap<String, FileId>,
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
    /// ([`crate::spec::file::FileTopology`]).
    pub topology: serde_json::Value,
    #[serde(default)]
    pub claims: Claims,
}

/// Host-wide things a topology holds, which no other may take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subnets of its networks (both families), `10.0.0.0/24`.
    pub subnets: Vec<ipnetwork::IpNetwork>,
    /// Bridge names.
    pub bridges: Vec<String>,
    /// VXLAN network identifiers.
    pub vnis: Vec<u32>,
    /// Published host ports.
    pub ports: Vec<PortClaim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortClaim {
    pub protocol: String,
    /// `None`: every host address.
    pub host_ip: Option<std::net::IpAddr>,
    pub first: u16,
    pub last: u16,
}

/// Values drivers learned during applies, by endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedRecord {
    pub version: u32,
    pub endpoints: BTreeMap<String, BTreeMap<String, String>>,
}

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

/// The records of one topology: `<root>/topologies/<name>/` under each root.
#[derive(Debug, Clone)]
pub struct TopologyStore {
    name: String,
    run_root: PathBuf,
    lib_root: PathBuf,
    run: PathBuf,
    lib: PathBuf,
}

impl TopologyStore {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn run_dir(&self) -> Result<Option<Dir>> {
        open_trusted(&self.run_root, &["topologies", &self.name])
    }

    fn run_dir_create(&self) -> Result<Dir> {
        self.roots()?;
        Ok(Dir::create_all(&self.run, DIR_MODE)?)
    }

    /// Before writing records: both roots exist, are ours and private.
    fn roots(&self) -> Result<()> {
        root(&self.run_root)?;
        root(&self.lib_root)?;
        Ok(())
    }

    /// `sub` of this topology's directory under the run or lib root.
    fn sub(&self, base: &Path, sub: &str) -> Result<Option<Dir>> {
        let root = if base == self.run {
            &self.run_root
        } else {
            &self.lib_root
        };
        open_trusted(root, &["topologies", &self.name, sub])
    }

    fn sub_create(&self, base: &Path, sub: &str) -> Result<Dir> {
        self.roots()?;
        Ok(Dir::create_all(&base.join(sub), DIR_MODE)?)
    }

    /// Namespaces cnm created for this topology: sandbox → record.
    pub fn namespaces(&self) -> Result<BTreeMap<String, NsRecord>> {
        let mut out = BTreeMap::new();
        let Some(d) = self.sub(&self.run, "sandboxes")? else {
            return Ok(out);
        };
        for s in d.list()? {
            if check_object_name("sandbox name", &s).is_err() {
                continue; // not a name cnm writes
            }
            let Some((text, _)) = d.read_string(&s, MAX_RECORD)? else {
                continue;
            };
            let rec = match serde_json::from_str::<NsRecord>(&text) {
                Ok(r) => r,
                // Before version 1: the namespace name on one line.
                Err(_) if !text.trim_start().starts_with('{') => NsRecord {
                    version: 0,
                    netns: text.trim().to_string(),
                    ino: None,
                },
                Err(e) => {
                    return Err(StoreError::Corrupt {
                        path: d.join(&s).display().to_string(),
                        why: e.to_string(),
                    })
                }
            };
            out.insert(s, rec);
        }
        Ok(out)
    }

    pub fn record_namespace(&self, sandbox: &str, rec: &NsRecord) -> Result<()> {
        check_object_name("sandbox name", sandbox)?;
        let d = self.sub_create(&self.run, "sandboxes")?;
        write_json(&d, sandbox, rec)
    }

    pub fn forget_namespace(&self, sandbox: &str) -> Result<()> {
        check_object_name("sandbox name", sandbox)?;
        if let Some(d) = self.sub(&self.run, "sandboxes")? {
            d.remove_file(sandbox, None)?;
        }
        Ok(())
    }

    /// Files cnm wrote, per sandbox.
    pub fn files(&self) -> Result<BTreeMap<String, FilesRecord>> {
        let mut out = BTreeMap::new();
        let Some(d) = self.sub(&self.lib, "sandboxes")? else {
            return Ok(out);
        };
        for s in d.list()? {
            if check_object_name("sandbox name", &s).is_err() {
                continue;
            }
            if let Some(rec) = read_json::<FilesRecord>(&d, &s)? {
                out.insert(s, rec);
            }
        }
        Ok(out)
    }

    /// Replace the files record of one sandbox (removed when empty).
    pub fn record_files(&self, sandbox: &str, rec: &FilesRecord) -> Result<()> {
        check_object_name("sandbox name", sandbox)?;
        if rec.dir.is_none() && rec.files.is_empty() {
            if let Some(d) = self.sub(&self.lib, "sandboxes")? {
                d.remove_file(sandbox, None)?;
            }
            return Ok(());
        }
        let d = self.sub_create(&self.lib, "sandboxes")?;
        let rec = FilesRecord {
            version: RECORD_VERSION,
            ..rec.clone()
        };
        write_json(&d, sandbox, &rec)
    }

    pub fn journal(&self) -> Result<Journal> {
        let Some(d) = self.run_dir()? else {
            return Ok(Journal::default());
        };
        let Some((text, _)) = d.read_string("journal", MAX_RECORD)? else {
            return Ok(Journal::default());
        };
        // Journals before version 1 listed final link names, which could
        // adopt a same-named foreign link: they are not trusted.
        Ok(serde_json::from_str(&text).unwrap_or_default())
    }

    /// Add entries to the journal, durably, before creating the objects.
    pub fn journal_add(&self, links: Vec<JournalLink>, netns: Vec<String>) -> Result<()> {
        if links.is_empty() && netns.is_empty() {
            return Ok(());
        }
        let mut j = self.journal()?;
        j.version = RECORD_VERSION;
        j.links.extend(links);
        j.netns.extend(netns);
        let d = self.run_dir_create()?;
        let text = serde_json::to_vec(&j).unwrap_or_default();
        d.write("journal", &text, FILE_MODE, None, true)?;
        Ok(())
    }

    /// After a run that completed: nothing is in flight any more.
    pub fn journal_clear(&self) -> Result<()> {
        if let Some(d) = self.run_dir()? {
            d.remove_file("journal", None)?;
        }
        Ok(())
    }

    /// Fingerprint of the firewall tables as cnm last wrote them.
    pub fn nft_digest(&self) -> Result<Option<String>> {
        let Some(d) = self.run_dir()? else {
            return Ok(None);
        };
        Ok(d.read_string("nft.digest", MAX_RECORD)?
            .map(|(s, _)| s.trim().to_string()))
    }

    pub fn set_nft_digest(&self, digest: Option<&str>) -> Result<()> {
        match digest {
            Some(dg) => {
                let d = self.run_dir_create()?;
                d.write("nft.digest", dg.as_bytes(), FILE_MODE, None, false)?;
            }
            None => {
                if let Some(d) = self.run_dir()? {
                    d.remove_file("nft.digest", None)?;
                }
            }
        }
        Ok(())
    }

    /// What the last successful apply applied.
    pub fn applied(&self) -> Result<Option<AppliedRecord>> {
        match self.lib_dir()? {
            Some(d) => read_json(&d, "applied"),
            None => Ok(None),
        }
    }

    pub fn record_applied(&self, rec: &AppliedRecord) -> Result<()> {
        self.roots()?;
        let d = Dir::create_all(&self.lib, DIR_MODE)?;
        let rec = AppliedRecord {
            version: RECORD_VERSION,
            ..rec.clone()
        };
        write_json(&d, "applied", &rec)
    }

    /// The watcher that holds this topology, if one was recorded.
    pub fn watcher(&self) -> Result<Option<WatcherRecord>> {
        match self.run_dir()? {
            Some(d) => read_json(&d, "watcher"),
            None => Ok(None),
        }
    }

    pub fn record_watcher(&self, w: Option<&WatcherRecord>) -> Result<()> {
        match w {
            Some(w) => write_json(&self.run_dir_create()?, "watcher", w),
            None => {
                if let Some(d) = self.run_dir()? {
                    d.remove_file("watcher", None)?;
                }
                Ok(())
            }
        }
    }

    fn lib_dir(&self) -> Result<Option<Dir>> {
        open_trusted(&self.lib_root, &["topologies", &self.name])
    }

    /// Values drivers learned while making endpoints (Terraform's "known
    /// after apply"), by endpoint.
    pub fn learned(&self) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        match self.lib_dir()? {
            Some(d) => Ok(read_json::<LearnedRecord>(&d, "learned")?
                .map(|r| r.endpoints)
                .unwrap_or_default()),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Record what a driver learned making `endpoint`, durably: the next
    /// plans compare the kernel with it.
    pub fn record_learned(&self, endpoint: &str, values: &BTreeMap<String, String>) -> Result<()> {
        check_object_name("endpoint name", endpoint)?;
        let mut all = self.learned()?;
        all.insert(endpoint.to_string(), values.clone());
        self.roots()?;
        let d = Dir::create_all(&self.lib, DIR_MODE)?;
        write_json(
            &d,
            "learned",
            &LearnedRecord {
                version: RECORD_VERSION,
                endpoints: all,
            },
        )
    }

    /// Forget what was learned about endpoints no longer there.
    pub fn forget_learned(&self, endpoints: &[String]) -> Result<()> {
        let mut all = self.learned()?;
        let before = all.len();
        all.retain(|e, _| !endpoints.contains(e));
        if all.len() == before {
            return Ok(());
        }
        let d = Dir::create_all(&self.lib, DIR_MODE)?;
        write_json(
            &d,
            "learned",
            &LearnedRecord {
                version: RECORD_VERSION,
                endpoints: all,
            },
        )
    }

    /// Drop every record of the topology (after a destroy).
    pub fn forget(&self) -> Result<()> {
        for base in [&self.run, &self.lib] {
            if let (Some(parent), Some(name)) = (base.parent(), base.file_name()) {
                if let Some(d) = Dir::open(parent)? {
                    d.remove_tree(&name.to_string_lossy())?;
                }
            }
        }
        Ok(())
    }

    /// Whether any record of this topology exists.
    pub fn exists(&self) -> Result<bool> {
        Ok(Dir::open(&self.run)?.is_some() || Dir::open(&self.lib)?.is_some())
    }
}

/// Open `root/rel...`, checking on the way that nobody but the user
/// running cnm can have put records there: the root is ours (a sticky
/// world-writable one is tolerated, as on a fresh tmpfs), everything below
/// it ours and private. Records decide what cnm may delete.
fn open_trusted(root: &Path, rel: &[&str]) -> Result<Option<Dir>> {
    let Some(mut dir) = Dir::open(root)? else {
        return Ok(None);
    };
    dir.check_private(true)?;
    for c in rel {
        let Some(next) = dir.subdir(c)? else {
            return Ok(None);
        };
        next.check_private(false)?;
        dir = next;
    }
    Ok(Some(dir))
}

/// A state root (`/run/cnm`, `/var/lib/cnm`): created 0700, and whoever
/// made it, it must be ours and private before records there are trusted.
fn root(path: &Path) -> Result<Dir> {
    let d = Dir::create_all(path, DIR_MODE)?;
    d.ensure_private(DIR_MODE)?;
    Ok(d)
}

fn read_json<T: serde::de::DeserializeOwned>(d: &Dir, name: &str) -> Result<Option<T>> {
    let Some((text, _)) = d.read_string(name, MAX_RECORD)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            path: d.join(name).display().to_string(),
            why: e.to_string(),
        })
}

fn write_json<T: Serialize>(d: &Dir, name: &str, value: &T) -> Result<()> {
    let text = serde_json::to_vec(value).unwrap_or_default();
    // Records are small and rewritten rarely: make them durable.
    d.write(name, &text, FILE_MODE, None, true)?;
    Ok(())
}

/// One apply at a time per host: an exclusive flock.
pub struct Lock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl Lock {
    fn take(file: std::fs::File, path: &Path) -> std::result::Result<Lock, SafeError> {
        use nix::fcntl::{Flock, FlockArg};
        let err = |e: nix::errno::Errno| SafeError::Io {
            path: path.display().to_string(),
            source: e.into(),
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => Ok(Lock { _held: held }),
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                // A closed stderr must not stop the wait.
                let _ = writeln!(
                    std::io::stderr(),
                    "cnm: another cnm is changing this host ({} is held); waiting for it to finish",
                    path.display()
                );
                Flock::lock(file, FlockArg::LockExclusive)
                    .map(|held| Lock { _held: held })
                    .map_err(|(_, e)| err(e))
            }
            Err((_, e)) => Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::at(&t.path().join("run"), &t.path().join("lib"));
        for bad in [".", "..", "../x", "a/b", "", "a\0b", "-x"] {
            assert!(s.topology(bad).is_err(), "{bad:?} accepted");
        }
        let ts = s.topology("shop").unwrap();
        assert!(ts.record_namespace("../evil", &ns("x")).is_err());
    }

    fn ns(n: &str) -> NsRecord {
        NsRecord {
            version: RECORD_VERSION,
            netns: n.into(),
            ino: Some(7),
        }
    }

    #[test]
    fn records_round_trip_and_legacy_namespace_records_load() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::at(&t.path().join("run"), &t.path().join("lib"));
        let ts = s.topology("shop").unwrap();
        ts.record_namespace("web", &ns("shop-web")).unwrap();
        // A record written by cnm before version 1.
        std::fs::write(
            t.path().join("run/topologies/shop/sandboxes/db"),
            "shop-db\n",
        )
        .unwrap();
        let all = ts.namespaces().unwrap();
        assert_eq!(all["web"], ns("shop-web"));
        assert_eq!(all["db"].netns, "shop-db");
        assert_eq!(all["db"].ino, None);
        ts.journal_add(
            vec![JournalLink {
                tmp: "cn-1".into(),
                mark: "m".into(),
                netns: None,
            }],
            vec!["shop-web".into()],
        )
        .unwrap();
        assert_eq!(ts.journal().unwrap().links.len(), 1);
        ts.journal_clear().unwrap();
        assert!(ts.journal().unwrap().is_empty());
        assert_eq!(s.topologies().unwrap(), vec!["shop".to_string()]);
        ts.forget().unwrap();
        assert!(s.topologies().unwrap().is_empty());
    }
}
