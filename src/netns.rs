//! Named network namespaces under /run/netns, made the way iproute2 makes
//! them (so `ip netns exec` works on them), without spawning `ip`.

use crate::naming::NETNS_DIR;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Names of all namespaces under /run/netns.
pub fn list() -> io::Result<BTreeSet<String>> {
    match std::fs::read_dir(NETNS_DIR) {
        Ok(rd) => Ok(rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

/// True when /run/netns/NAME is a mounted namespace, not just the empty
/// placeholder file left by an interrupted create.
pub fn is_namespace(name: &str) -> bool {
    nix::sys::statfs::statfs(&path(name))
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

pub fn open(name: &str) -> io::Result<File> {
    File::open(path(name))
}

/// /run/netns must be a shared mount point so that namespaces bound there are
/// visible to other mount namespaces (iproute2 does the same).
fn prepare_dir() -> io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)?;
    let shared = || {
        mount(
            None::<&str>,
            NETNS_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then share it.
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(io::Error::from)?;
            shared().map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Create the named namespace. Runs on a short-lived thread: `unshare` moves
/// only that thread into the new namespace, which is then pinned by a bind
/// mount of /proc/thread-self/ns/net (no fork of this multi-threaded process).
pub fn create(name: &str) -> io::Result<()> {
    prepare_dir()?;
    let target = path(name);
    // A placeholder from a create that was killed before its bind mount.
    if target.exists() && !is_namespace(name) {
        std::fs::remove_file(&target)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)?;
    let t = target.clone();
    let result = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &t,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(io::Error::from)
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")));
    if result.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    result
}

/// Remove the named namespace. Missing is fine (idempotent).
pub fn delete(name: &str) -> io::Result<()> {
    let target = path(name);
    match umount2(&target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(&target) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Move the calling thread into the namespace behind `file`.
pub fn enter(file: &File) -> io::Result<()> {
    setns(file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}
