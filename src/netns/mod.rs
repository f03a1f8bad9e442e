//! Named network namespaces under /run/netns, made the way iproute2 makes
//! them (so `ip netns exec` works on them), without spawning `ip`, and
//! without following a link anywhere on the way (see [`crate::safe`]).
//!
//! A namespace is created unmounted (on a short-lived thread that
//! unshares), marked while nobody can see it (its loopback's IFLA_IFALIAS,
//! set by the caller), and only then bound to `/run/netns/<name>`: a
//! namespace there either carries cnm's mark or is not cnm's.

mod checked;
pub use checked::open_checked;

use crate::safe::{Dir, FileId, Kind, SafeError};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub use crate::naming::NETNS_DIR;

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The /run/netns directory, when it exists.
pub fn dir() -> Result<Option<Dir>, SafeError> {
    Dir::open(Path::new(NETNS_DIR))
}

/// Names of all entries under /run/netns.
pub fn list() -> Result<BTreeSet<String>, SafeError> {
    Ok(match dir()? {
        Some(d) => d.list()?.into_iter().collect(),
        None => BTreeSet::new(),
    })
}

/// What is at /run/netns/NAME.
#[derive(Debug)]
pub enum Found {
    Missing,
    /// A mounted namespace, open, with its inode.
    Namespace(File, u64),
    /// An empty regular file: the mount point of an interrupted create.
    Placeholder(FileId),
    /// Anything else (a link, a directory, a file with content).
    Other,
}

/// Look at /run/netns/NAME without following links.
pub fn find(d: &Dir, name: &str) -> Result<Found, SafeError> {
    let Some(entry) = d.stat(name)? else {
        return Ok(Found::Missing);
    };
    if entry.kind != Kind::File {
        return Ok(Found::Other);
    }
    match d.open_file(name)? {
        None => Ok(Found::Missing),
        Some((f, id)) => {
            let nsfs = nix::sys::statfs::fstatfs(&f)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
            if nsfs {
                Ok(Found::Namespace(f, id.ino))
            } else if entry.size == 0 {
                Ok(Found::Placeholder(id))
            } else {
                Ok(Found::Other)
            }
        }
    }
}

/// Open a mounted namespace by name; `None` when it is not one.
pub fn open(name: &str) -> io::Result<Option<File>> {
    let Some(d) = dir().map_err(io::Error::other)? else {
        return Ok(None);
    };
    match find(&d, name).map_err(io::Error::other)? {
        Found::Namespace(f, _) => Ok(Some(f)),
        _ => Ok(None),
    }
}

/// The namespace's identity (its nsfs inode).
pub fn id_of(ns: &File) -> io::Result<u64> {
    Ok(rustix::fs::fstat(ns)?.st_ino)
}

/// The inode of the namespace named `name` now (`None`: none by that name).
pub fn ino_now(name: &str) -> Option<u64> {
    id_of(&open(name).ok()??).ok()
}

/// Call `changed` with the name of every entry of /run/netns that is
/// removed or replaced (inotify). Whoever holds a namespace (a socket in
/// it) keeps it, and its interfaces, alive after its name is gone: holders
/// use this to let go at once. `None` when /run/netns cannot be watched.
/// Keep the returned watcher for as long as notifications are wanted.
pub fn watch_names(changed: impl Fn(&str) + Send + 'static) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_) | EventKind::Create(_)) {
            return;
        }
        for name in ev.paths.iter().filter_map(|p| p.file_name()?.to_str()) {
            changed(name);
        }
    })
    .ok()?;
    w.watch(Path::new(NETNS_DIR), RecursiveMode::NonRecursive)
        .ok()?;
    Some(w)
}

/// /run/netns, created 0755 if missing and made a shared mount point so
/// that namespaces bound there are visible to other mount namespaces
/// (iproute2 does the same). Returns the directory as it is now mounted.
pub fn prepare_dir() -> Result<Dir, SafeError> {
    let d = Dir::create_all(Path::new(NETNS_DIR), 0o755)?;
    let err = |e: nix::errno::Errno| SafeError::Io {
        path: NETNS_DIR.into(),
        source: e.into(),
    };
    let target = fd_path(d.fd());
    let shared = |t: &str| {
        mount(
            None::<&str>,
            t,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared(&target) {
        Ok(()) => Ok(d),
        Err(nix::errno::Errno::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then share it.
            mount(
                Some(target.as_str()),
                target.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(err)?;
            // The old handle points under the new mount: open it again.
            let d = Dir::open(Path::new(NETNS_DIR))?.ok_or(SafeError::WrongType {
                path: NETNS_DIR.into(),
                expected: "directory",
            })?;
            shared(&fd_path(d.fd())).map_err(err)?;
            Ok(d)
        }
        Err(e) => Err(err(e)),
    }
}

/// `/proc/self/fd/N`: a path the kernel resolves to exactly the open file,
/// so mount and umount act on what was opened safely.
fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Create `n` new network namespaces, not yet named. Short-lived threads
/// unshare once per namespace and keep a handle to each (no fork of this
/// multi-threaded process; a thread's own namespace dies with it).
pub fn create_unnamed(n: usize) -> io::Result<Vec<File>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // The kernel sets namespaces up in parallel (under a shared lock): one
    // thread per core, each making its share.
    let threads = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1)
        .clamp(1, 4)
        .min(n.div_ceil(32));
    let per = n.div_ceil(threads);
    let makers: Vec<_> = (0..threads)
        .map(|i| {
            let count = per.min(n - (i * per).min(n));
            std::thread::spawn(move || -> io::Result<Vec<File>> {
                (0..count)
                    .map(|_| {
                        unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                        File::open("/proc/thread-self/ns/net")
                    })
                    .collect()
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for m in makers {
        all.extend(
            m.join()
                .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))?,
        );
    }
    Ok(all)
}

/// Give namespace `ns` the name NAME: bind it onto a new empty file
/// /run/netns/NAME (created with O_EXCL, so nothing that exists there is
/// taken over). Returns the namespace's inode.
pub fn bind(d: &Dir, name: &str, ns: &File) -> Result<u64, SafeError> {
    let (placeholder, _) = d.create_new(name, 0)?;
    let result = mount(
        Some(fd_path(ns).as_str()),
        fd_path(&placeholder).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    );
    if let Err(e) = result {
        let _ = d.remove_file(name, None);
        return Err(SafeError::Io {
            path: d.join(name).display().to_string(),
            source: e.into(),
        });
    }
    id_of(ns).map_err(|source| SafeError::Io {
        path: d.join(name).display().to_string(),
        source,
    })
}

/// Remove the named namespace if it is the one with inode `ino` (any
/// namespace when `None`), or the empty placeholder of an interrupted
/// create. Missing is fine. Returns whether it is gone.
pub fn delete(name: &str, ino: Option<u64>) -> Result<bool, SafeError> {
    let Some(d) = dir()? else {
        return Ok(true);
    };
    match find(&d, name)? {
        Found::Missing => Ok(true),
        Found::Other => Ok(false),
        Found::Placeholder(id) => d.remove_file(name, Some(id)),
        Found::Namespace(f, found) => {
            if ino.is_some_and(|want| want != found) {
                return Ok(false);
            }
            drop(f);
            let target = format!("{}/{name}", fd_path(d.fd()));
            match umount2(
                target.as_str(),
                MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
            ) {
                Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => {
                    return Err(SafeError::Io {
                        path: d.join(name).display().to_string(),
                        source: e.into(),
                    })
                }
            }
            match find(&d, name)? {
                Found::Placeholder(id) => d.remove_file(name, Some(id)),
                Found::Missing => Ok(true),
                _ => Ok(false),
            }
        }
    }
}

/// Move the calling thread into the namespace behind `file`.
pub fn enter(file: &File) -> io::Result<()> {
    setns(file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Run `f` on a short-lived thread inside the namespace behind `ns` (for
/// what is per namespace outside netlink: /proc/sys/net).
pub fn inside<T: Send + 'static>(
    ns: &File,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let ns = ns.try_clone()?;
    std::thread::spawn(move || -> io::Result<T> {
        enter(&ns)?;
        Ok(f())
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?
}
