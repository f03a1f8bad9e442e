//! Per-sandbox records (namespaces, written files), through the cache.

use super::*;

impl TopologyStore {
    /// Namespaces cnm created for this topology: sandbox → record.
    pub fn namespaces(&self) -> Result<BTreeMap<String, NsRecord>> {
        self.cached(|c| &mut c.namespaces, || self.read_namespaces())
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
        self.cached(|c| &mut c.files, || self.read_files())
    }

    /// The files records of `sandboxes` only: a plan that reads a few
    /// sandboxes (the rest trusted) reads a few records, not all of them.
    pub fn files_of<'a>(
        &self,
        sandboxes: impl IntoIterator<Item = &'a str>,
    ) -> Result<BTreeMap<String, FilesRecord>> {
        let mut out = BTreeMap::new();
        if let Some(all) = &self.cache().files {
            for s in sandboxes {
                if let Some(rec) = all.get(s) {
                    out.insert(s.to_string(), rec.clone());
                }
            }
            return Ok(out);
        }
        let Some(d) = self.sub(&self.lib, "sandboxes")? else {
            return Ok(out);
        };
        for s in sandboxes {
            if check_object_name("sandbox name", s).is_err() {
                continue;
            }
            if let Some(rec) = read_json::<FilesRecord>(&d, s)? {
                out.insert(s.to_string(), rec);
            }
        }
        Ok(out)
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
}
