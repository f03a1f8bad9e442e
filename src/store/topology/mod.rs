//! The records of one topology: reading and writing each kind under the
//! run and lib roots.

use super::{
    check_object_name, open_trusted, read_json, root, write_json, AppliedRecord, Durable,
    FilesRecord, Journal, JournalLink, LearnedRecord, NsRecord, PluginsRecord, Result, StoreError,
    DIR_MODE, FILE_MODE, MAX_RECORD, RECORD_VERSION,
};
use crate::safe::Dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

mod journal;
mod lib_records;
mod sandboxes;

/// The records of one topology: `<root>/topologies/<name>/` under each root.
/// Clones share a write-through cache of the per-sandbox records and the
/// applied record (an apply of 1,000 sandboxes read each of them up to
/// seven times): one store lives for one apply, under cnm's lock, and
/// every write of those records goes through it.
#[derive(Debug, Clone)]
pub struct TopologyStore {
    name: String,
    run_root: PathBuf,
    lib_root: PathBuf,
    run: PathBuf,
    lib: PathBuf,
    cache: Arc<Mutex<Cache>>,
    /// Keep no cache on disk (see [`TopologyStore::reading_only`]).
    reading_only: bool,
}

/// Per-sandbox records as last read or written; `None`: not read yet.
#[derive(Debug, Default)]
struct Cache {
    namespaces: Option<BTreeMap<String, NsRecord>>,
    files: Option<BTreeMap<String, FilesRecord>>,
    /// The applied record (read once: several steps of an apply ask).
    applied: Option<Option<AppliedRecord>>,
}

/// The kept nftables listing, and its bound (a rule's line is ~100 bytes).
const NFT_KEPT: &str = "nft.kept";
const MAX_KEPT: u64 = 64 << 20;

impl TopologyStore {
    /// The records of topology `name` (already checked) under both roots.
    pub(super) fn new(name: &str, run_root: &Path, lib_root: &Path) -> TopologyStore {
        TopologyStore {
            name: name.to_string(),
            run_root: run_root.to_path_buf(),
            lib_root: lib_root.to_path_buf(),
            run: run_root.join("topologies").join(name),
            lib: lib_root.join("topologies").join(name),
            cache: Arc::default(),
            reading_only: false,
        }
    }

    /// This store for a look that must leave no trace (is a topology
    /// applied at all?): what observe would keep to read faster next time
    /// (the firewall's listing) is not kept.
    pub fn reading_only(mut self) -> TopologyStore {
        self.reading_only = true;
        self
    }

    /// The cache, whatever a panicking holder left (it only mirrors disk).
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cached record: the cache's copy, or `read` once and kept.
    fn cached<T: Clone>(
        &self,
        slot: fn(&mut Cache) -> &mut Option<T>,
        read: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if let Some(c) = slot(&mut self.cache()) {
            return Ok(c.clone());
        }
        let value = read()?;
        *slot(&mut self.cache()) = Some(value.clone());
        Ok(value)
    }

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

    /// Drop every record of the topology (after a destroy).
    pub fn forget(&self) -> Result<()> {
        *self.cache() = Cache::default();
        for base in [&self.run, &self.lib] {
            if let (Some(parent), Some(name)) = (base.parent(), base.file_name()) {
                if let Some(d) = Dir::open(parent)? {
                    d.remove_tree(&name.to_string_lossy())?;
                }
            }
        }
        Ok(())
    }

    /// After a destroy that could not give everything back to its plugins:
    /// drop every record but what plugins may still hold (their objects,
    /// and what endpoints noted), so that a later destroy releases it.
    pub fn forget_all_but_plugins(&self) -> Result<()> {
        *self.cache() = Cache::default();
        if let (Some(parent), Some(name)) = (self.run.parent(), self.run.file_name()) {
            if let Some(d) = Dir::open(parent)? {
                d.remove_tree(&name.to_string_lossy())?;
            }
        }
        if let Some(d) = self.lib_dir()? {
            for entry in d.list()? {
                if entry == "plugins" || entry == "learned" {
                    continue;
                }
                match d.stat(&entry)? {
                    Some(e) if e.kind == super::Kind::Dir => d.remove_tree(&entry)?,
                    Some(_) => {
                        d.remove_file(&entry, None)?;
                    }
                    None => {}
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

/// A record under /var/lib: synced.
fn write_json_lib<T: serde::Serialize>(d: &Dir, name: &str, value: &T) -> Result<()> {
    write_json(d, name, value, Durable::Yes)
}
