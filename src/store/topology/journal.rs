//! The journal of half-done work and the firewall's fingerprint and kept
//! listing: records under the run root.

use super::*;

impl TopologyStore {
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
    /// command keeps nothing (it reads the tables each time instead), nor
    /// does a plan of a topology without records (a watcher whose runtime
    /// topology was just destroyed must not leave a directory behind).
    pub fn set_nft_kept(&self, text: &str) -> Result<()> {
        if self.reading_only || crate::safe::read_only() {
            return Ok(());
        }
        let Some(d) = self.run_dir()? else {
            return Ok(());
        };
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
}
