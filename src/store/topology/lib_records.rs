//! Records under the lib root: the applied record, what drivers learned,
//! and the objects plugins hold.

use super::*;

impl TopologyStore {
    /// What the last successful apply applied.
    pub fn applied(&self) -> Result<Option<AppliedRecord>> {
        self.cached(
            |c| &mut c.applied,
            || match self.lib_dir()? {
                Some(d) => read_json(&d, "applied"),
                None => Ok(None),
            },
        )
    }

    /// `f` of what the last successful apply applied, without copying the
    /// record (it holds the whole topology).
    pub fn with_applied<R>(&self, f: impl FnOnce(&AppliedRecord) -> R) -> Result<Option<R>> {
        if let Some(cached) = &self.cache().applied {
            return Ok(cached.as_ref().map(f));
        }
        Ok(self.applied()?.as_ref().map(f))
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

    pub(super) fn lib_dir(&self) -> Result<Option<Dir>> {
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
        self.write_learned(all)
    }

    /// Forget what was learned about endpoints no longer there.
    pub fn forget_learned(&self, endpoints: &[String]) -> Result<()> {
        let mut all = self.learned()?;
        let before = all.len();
        all.retain(|e, _| !endpoints.contains(e));
        if all.len() == before {
            return Ok(());
        }
        self.write_learned(all)
    }

    fn write_learned(&self, all: BTreeMap<String, BTreeMap<String, String>>) -> Result<()> {
        let d = Dir::create_all(&self.lib, DIR_MODE)?;
        let rec = LearnedRecord {
            version: RECORD_VERSION,
            endpoints: all,
        };
        write_json_lib(&d, "learned", &rec)
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
}
