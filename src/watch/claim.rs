//! One watcher per topology: the claim a `cnm watch` holds for as long as
//! it runs. It is an exclusive flock on `/run/cnm/watchers/claims/<t>`,
//! whose content names the holder (pid, start time, file), so the claim
//! ends with the process however it ends, and a destroy, which deletes
//! the topology's records, leaves it alone. Readers (`cnm status`, the
//! warning of a manual apply) believe the content only while that pid
//! with that start time runs.

use crate::safe::Dir;
use crate::store::{self, Store, StoreError, WatcherRecord};
use nix::fcntl::{Flock, FlockArg};
use std::io::{Seek, Write};

const CLAIMS: &str = "claims";

/// A topology held by this process; released when dropped.
pub struct Claim {
    topology: String,
    dir: Dir,
    file: Flock<std::fs::File>,
}

/// Why a claim could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another watcher runs for the topology.
    #[error("topology {topology} is already kept by cnm watch (pid {}) from {}; stop that watcher first", .holder.pid, .holder.file)]
    Held {
        topology: String,
        holder: WatcherRecord,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Claim {
    /// Claim `topology` for this process, watching `file`; refused at
    /// once when a live watcher holds it.
    pub fn take(store: &Store, topology: &str, file: &str) -> Result<Claim, ClaimError> {
        store::check_topology_name(topology)?;
        let dir = store.watchers_dir_create(CLAIMS)?;
        // A holder that unlinks its claim as it leaves may do so between
        // our open and our lock: the lock is then on a name that is gone.
        // Try again on the new file.
        for _ in 0..8 {
            let f = dir
                .open_or_create(topology, store::RECORD_FILE_MODE)
                .map_err(StoreError::from)?;
            let held = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(held) => held,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    let holder = read(&dir, topology).unwrap_or_else(|| unknown(file));
                    return Err(ClaimError::Held {
                        topology: topology.to_string(),
                        holder,
                    });
                }
                Err((_, e)) => return Err(io(&dir, topology, e.into()).into()),
            };
            if !same_file(&dir, topology, &held) {
                continue;
            }
            let mut claim = Claim {
                topology: topology.to_string(),
                dir,
                file: held,
            };
            claim.write(file)?;
            return Ok(claim);
        }
        Err(io(&dir, topology, std::io::ErrorKind::WouldBlock.into()).into())
    }

    /// Name this process in the claim, in place (a rename would leave the
    /// lock on the old inode).
    fn write(&mut self, file: &str) -> Result<(), StoreError> {
        let me = WatcherRecord::me(file).unwrap_or_else(|| unknown(file));
        let text = serde_json::to_vec(&me).unwrap_or_default();
        let f: &mut std::fs::File = &mut self.file;
        f.set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|()| f.write_all(&text))
            .map_err(|e| io(&self.dir, &self.topology, e))
    }

    /// The topology claimed.
    pub fn topology(&self) -> &str {
        &self.topology
    }
}

impl Drop for Claim {
    /// Remove the claim's file while it is still locked (the lock goes
    /// with the descriptor right after).
    fn drop(&mut self) {
        if let Ok(st) = rustix::fs::fstat(&*self.file) {
            let id = crate::safe::FileId {
                dev: st.st_dev,
                ino: st.st_ino,
            };
            let _ = self.dir.remove_file(&self.topology, Some(id));
        }
    }
}

/// The live watcher that holds `topology`, if any (nothing is created).
pub fn holder(store: &Store, topology: &str) -> Option<WatcherRecord> {
    recorded(store, topology).filter(WatcherRecord::alive)
}

/// The watcher a claim names, alive or not (one killed leaves its claim's
/// file, not its lock).
pub fn recorded(store: &Store, topology: &str) -> Option<WatcherRecord> {
    store::check_topology_name(topology).ok()?;
    let dir = store.watchers_dir(CLAIMS).ok()??;
    read(&dir, topology)
}

fn read(dir: &Dir, topology: &str) -> Option<WatcherRecord> {
    let (text, _) = dir.read_string(topology, store::MAX_RECORD_SIZE).ok()??;
    serde_json::from_str(&text).ok()
}

/// Whether the locked descriptor is still the file at `name`.
fn same_file(dir: &Dir, name: &str, f: &std::fs::File) -> bool {
    let (Ok(Some(at)), Ok(st)) = (dir.stat(name), rustix::fs::fstat(f)) else {
        return false;
    };
    at.id.dev == st.st_dev && at.id.ino == st.st_ino
}

/// A holder whose claim cannot be read (being written): pid 0.
fn unknown(file: &str) -> WatcherRecord {
    WatcherRecord {
        version: store::RECORD_VERSION,
        pid: 0,
        start: 0,
        file: file.to_string(),
    }
}

fn io(dir: &Dir, name: &str, source: std::io::Error) -> StoreError {
    StoreError::Safe(crate::safe::SafeError::Io {
        path: dir.join(name).display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_while_the_first_lives() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let s = Store::at(&t.path().join("run"), &t.path().join("lib"));
        let first = Claim::take(&s, "shop", "/a.yaml")?;
        assert_eq!(holder(&s, "shop").map(|w| w.pid), Some(std::process::id()));
        match Claim::take(&s, "shop", "/b.yaml") {
            Err(ClaimError::Held { holder, .. }) => {
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.file, "/a.yaml");
            }
            other => panic!(
                "second claim: {:?}",
                other.map(|c| c.topology().to_string())
            ),
        }
        // Deleting the topology's records leaves the claim.
        s.topology("shop")?.forget()?;
        assert!(holder(&s, "shop").is_some());
        drop(first);
        assert!(holder(&s, "shop").is_none());
        let again = Claim::take(&s, "shop", "/b.yaml")?;
        assert_eq!(again.topology(), "shop");
        Ok(())
    }
}
