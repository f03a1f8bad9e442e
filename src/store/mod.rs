//! Everything cnm keeps on disk, in one place, on the rules of [`crate::safe`]:
//!
//! - `/run/cnm` (runtime; gone after a reboot, like what it describes):
//!   the lock, and per topology the namespaces cnm created (with their
//!   inodes), the journal of objects being created, and the fingerprint of
//!   the firewall tables it wrote.
//! - `/var/lib/cnm` (survives a reboot, like what it describes): per
//!   topology, the identity of the files cnm wrote under `/etc/netns`.
//!
//! Directories are 0700 and files 0600. Every name that becomes part of a
//! path here (topology, sandbox) passes [`crate::naming::valid_identifier`]
//! first, and names read back from the directories are checked again;
//! record contents are data, never paths.

mod lock;
mod records;
mod resolver;
mod topology;
mod watcher;

pub use crate::safe::Kind;
pub use lock::Lock;
pub use records::{
    AppliedRecord, Claims, FileStamp, FilesRecord, Journal, JournalLink, LearnedRecord, NsRecord,
    PluginsRecord, PortClaim, RECORD_VERSION,
};
pub use resolver::{Bound, ResolverIdentity, ResolverStatus, ResolverStore};
pub use topology::TopologyStore;
pub use watcher::{running, start_time, WatcherRecord};

/// Mode of cnm's record files (the watchers' claims are written in place).
pub const RECORD_FILE_MODE: u32 = FILE_MODE;
/// Bound on a record read back.
pub const MAX_RECORD_SIZE: u64 = MAX_RECORD;

pub use crate::errors::StoreError;
use crate::naming::valid_identifier;
use crate::safe::Dir;
use serde::Serialize;
use std::path::{Path, PathBuf};

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

    /// `/run/cnm/watchers/<sub>`, the watchers' own records (claims and
    /// statuses, kept apart from the topologies' records, which a destroy
    /// deletes); `None` when it does not exist (nothing is created).
    pub fn watchers_dir(&self, sub: &str) -> Result<Option<Dir>> {
        open_trusted(&self.run, &["watchers", sub])
    }

    /// [`Store::watchers_dir`], created when missing.
    pub fn watchers_dir_create(&self, sub: &str) -> Result<Dir> {
        root(&self.run)?;
        Ok(Dir::create_all(
            &self.run.join("watchers").join(sub),
            DIR_MODE,
        )?)
    }

    /// Topologies a watcher has claimed, alive or not (see `watch::claim`).
    pub fn watched_topologies(&self) -> Result<Vec<String>> {
        Ok(match self.watchers_dir("claims")? {
            Some(d) => d
                .list()?
                .into_iter()
                .filter(|n| check_topology_name(n).is_ok())
                .collect(),
            None => Vec::new(),
        })
    }

    /// The records of one topology; the name is checked first.
    pub fn topology(&self, name: &str) -> Result<TopologyStore> {
        check_topology_name(name)?;
        Ok(TopologyStore::new(name, &self.run, &self.lib))
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

/// Whether a record must survive a power loss: those under /var/lib do;
/// those under /run end with the boot anyway (a crashed process leaves its
/// writes in the page cache), so syncing them only costs time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    Yes,
    No,
}

fn write_json<T: Serialize>(d: &Dir, name: &str, value: &T, durable: Durable) -> Result<()> {
    let text = serde_json::to_vec(value).unwrap_or_default();
    d.write(name, &text, FILE_MODE, None, durable == Durable::Yes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn names_that_escape_are_refused() -> TestResult {
        let t = tempfile::tempdir()?;
        let s = Store::at(&t.path().join("run"), &t.path().join("lib"));
        for bad in [".", "..", "../x", "a/b", "", "a\0b", "-x"] {
            assert!(s.topology(bad).is_err(), "{bad:?} accepted");
        }
        let ts = s.topology("shop")?;
        assert!(ts.record_namespace("../evil", &ns("x")).is_err());
        Ok(())
    }

    fn ns(n: &str) -> NsRecord {
        NsRecord {
            version: RECORD_VERSION,
            netns: n.into(),
            ino: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn records_round_trip_and_legacy_namespace_records_load() -> TestResult {
        let t = tempfile::tempdir()?;
        let s = Store::at(&t.path().join("run"), &t.path().join("lib"));
        let ts = s.topology("shop")?;
        ts.record_namespace("web", &ns("shop-web"))?;
        // A record written by cnm before version 1.
        std::fs::write(
            t.path().join("run/topologies/shop/sandboxes/db"),
            "shop-db\n",
        )?;
        let all = ts.namespaces()?;
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
        )?;
        assert_eq!(ts.journal()?.links.len(), 1);
        ts.journal_clear()?;
        assert!(ts.journal()?.is_empty());
        assert_eq!(s.topologies()?, vec!["shop".to_string()]);
        ts.forget()?;
        assert!(s.topologies()?.is_empty());
        Ok(())
    }

    #[test]
    fn cached_records_follow_every_write_and_a_new_store_reads_the_disk() -> TestResult {
        let t = tempfile::tempdir()?;
        let s = Store::at(&t.path().join("run"), &t.path().join("lib"));
        let ts = s.topology("shop")?;
        assert!(ts.namespaces()?.is_empty());
        let clone = ts.clone();
        clone.record_namespace("web", &ns("shop-web"))?;
        assert_eq!(ts.namespaces()?["web"], ns("shop-web"));
        let rec = FilesRecord {
            dir: None,
            files: [("hosts".to_string(), crate::safe::FileId { dev: 1, ino: 2 })].into(),
            ..FilesRecord::default()
        };
        assert!(ts.files()?.is_empty());
        clone.record_files("web", &rec)?;
        assert_eq!(ts.files()?["web"].files, rec.files);
        // What the disk holds, read by a store that never cached it.
        let fresh = s.topology("shop")?;
        assert_eq!(fresh.namespaces()?, ts.namespaces()?);
        assert_eq!(fresh.files()?["web"].files, rec.files);
        assert!(ts.applied()?.is_none());
        let applied = AppliedRecord {
            source: Some("shop.yaml".into()),
            ..AppliedRecord::default()
        };
        clone.record_applied(&applied)?;
        let source = |a: Option<AppliedRecord>| a.and_then(|a| a.source);
        assert_eq!(source(ts.applied()?).as_deref(), Some("shop.yaml"));
        assert_eq!(
            source(s.topology("shop")?.applied()?).as_deref(),
            Some("shop.yaml")
        );
        clone.forget_namespace("web")?;
        clone.record_files("web", &FilesRecord::default())?;
        assert!(ts.namespaces()?.is_empty() && ts.files()?.is_empty());
        assert!(s.topology("shop")?.namespaces()?.is_empty());
        Ok(())
    }
}
