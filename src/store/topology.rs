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
        if let Some(c) = &self.cache().namespaces {
            return Ok(c.clone());
        }
        let read = self.read_namespaces()?;
        self.cache().namespaces = Some(read.clone());
        Ok(read)
    }

    fn read_namespaces(&self) -> Result<BTreeMap<String, NsRecord>> {
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
                    ..Default::default()
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
        write_json(&d, sandbox, rec, Durable::No)?;
        if let Some(c) = &mut self.cache().namespaces {
            c.insert(sandbox.to_string(), rec.clone());
        }
        Ok(())
    }

    pub fn forget_namespace(&self, sandbox: &str) -> Result<()> {
        check_object_name("sandbox name", sandbox)?;
        if let Some(d) = self.sub(&self.run, "sandboxes")? {
            d.remove_file(sandbox, None)?;
        }
        if let Some(c) = &mut self.cache().namespaces {
            c.remove(sandbox);
        }
        Ok(())
    }

    /// Files cnm wrote, per sandbox.
    pub fn files(&self) -> Result<BTreeMap<String, FilesRecord>> {
        if let Some(c) = &self.cache().files {
            return Ok(c.clone());
        }
        let read = self.read_files()?;
        self.cache().files = Some(read.clone());
        Ok(read)
    }

    fn read_files(&self) -> Result<BTreeMap<String, FilesRecord>> {
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
        self.record_files_all(&[(sandbox.to_string(), rec.clone())])
    }

    /// Several sandboxes' files records, made durable together: each is
    /// written without its own fsync, then the filesystem is synced once
    /// (a thousand fsyncs would cost seconds on a disk).
    pub fn record_files_all(&self, recs: &[(String, FilesRecord)]) -> Result<()> {
        let mut written = None;
        for (sandbox, rec) in recs {
            check_object_name("sandbox name", sandbox)?;
            if rec.dir.is_none() && rec.files.is_empty() {
                if let Some(d) = self.sub(&self.lib, "sandboxes")? {
                    d.remove_file(sandbox, None)?;
                }
                if let Some(c) = &mut self.cache().files {
                    c.remove(sandbox);
                }
                continue;
            }
            let d = match written.take() {
                Some(d) => d,
                None => self.sub_create(&self.lib, "sandboxes")?,
            };
            let rec = FilesRecord {
                version: RECORD_VERSION,
                ..rec.clone()
            };
            write_json(&d, sandbox, &rec, Durable::No)?;
            if let Some(c) = &mut self.cache().files {
                c.insert(sandbox.clone(), rec);
            }
            written = Some(d);
        }
        if let Some(d) = written {
            d.sync_filesystem();
        }
        Ok(())
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
        // /run does not outlive a reboot: a sync would protect nothing a
        // crashed process leaves behind (the page cache keeps it).
        d.write("journal", &text, FILE_MODE, None, false)?;
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

    /// The last nftables listing observe kept (see `firewall::observe`).
    pub fn nft_kept(&self) -> Result<Option<String>> {
        let Some(d) = self.run_dir()? else {
            return Ok(None);
        };
        Ok(d.read_string(NFT_KEPT, MAX_KEPT)?.map(|(s, _)| s))
    }

    /// Keep a listing: regenerable, so not synced to disk. A read-only
    /// command keeps nothing (it reads the tables each time instead).
    pub fn set_nft_kept(&self, text: &str) -> Result<()> {
        if self.reading_only || crate::safe::read_only() {
            return Ok(());
        }
        let d = self.run_dir_create()?;
        d.write(NFT_KEPT, text.as_bytes(), FILE_MODE, None, false)?;
        Ok(())
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
        if let Some(c) = &self.cache().applied {
            return Ok(c.clone());
        }
        let read: Option<AppliedRecord> = match self.lib_dir()? {
            Some(d) => read_json(&d, "applied")?,
            None => None,
        };
        self.cache().applied = Some(read.clone());
        Ok(read)
    }

    pub fn record_applied(&self, rec: &AppliedRecord) -> Result<()> {
        self.roots()?;
        let d = Dir::create_all(&self.lib, DIR_MODE)?;
        let rec = AppliedRecord {
            version: RECORD_VERSION,
            ..rec.clone()
        };
        write_json(&d, "applied", &rec, Durable::Yes)?;
        self.cache().applied = Some(Some(rec));
        Ok(())
    }

    /// The applied record's file as it is now (identity, size, change
    /// time): watch compares it to see the record change.
    pub fn applied_stamp(&self) -> Result<Option<crate::safe::Entry>> {
        match self.lib_dir()? {
            Some(d) => Ok(d.stat("applied")?),
            None => Ok(None),
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
        write_json_lib(
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
        write_json_lib(
            &d,
            "learned",
            &LearnedRecord {
                version: RECORD_VERSION,
                endpoints: all,
            },
        )
    }

    /// Objects held by plugins for this topology, by key.
    pub fn plugin_objects(&self) -> Result<BTreeMap<String, crate::model::PluginRes>> {
        match self.lib_dir()? {
            Some(d) => Ok(read_json::<PluginsRecord>(&d, "plugins")?
                .map(|r| r.objects)
                .unwrap_or_default()),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Record every object held by plugins, durably (before a call, as
    /// pending; after it, with the answer).
    pub fn record_plugin_objects(
        &self,
        objects: &BTreeMap<String, crate::model::PluginRes>,
    ) -> Result<()> {
        self.roots()?;
        let d = Dir::create_all(&self.lib, DIR_MODE)?;
        write_json_lib(
            &d,
            "plugins",
            &PluginsRecord {
                version: RECORD_VERSION,
                objects: objects.clone(),
            },
        )
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
