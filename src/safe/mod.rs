//! Filesystem access for cnm's own paths, safe for a root tool that shares
//! a host with other software:
//! - no symbolic link is followed at any component (`openat2` with
//!   `RESOLVE_NO_SYMLINKS`; a leaf `O_NOFOLLOW` alone would still follow a
//!   link planted higher up);
//! - files are created with `O_EXCL` under a random temporary name, given
//!   their mode with `fchmod` (the umask and default ACLs do not count),
//!   renamed over the old file atomically, and the directory is fsynced;
//! - a file is deleted only when its inode is the one cnm recorded.
//!
//! Written on rustix (thin syscall wrappers): std's `fs` cannot open
//! relative to a directory handle or refuse links in the middle of a path.

mod directory;
mod mark;
mod random;
mod read;
mod remove;
mod sysctl;
mod write;

pub use mark::{set_mark, MARK_XATTR};
pub use random::random_hex;
pub use sysctl::write_sysctl;

use rustix::fd::OwnedFd;
use rustix::fs::{FileType, ResolveFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Identity of a file: device and inode. Recorded when cnm creates a file,
/// compared before cnm deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(st: &rustix::fs::Stat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// What sits at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// An entry found with `lstat` semantics (links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub id: FileId,
    pub size: u64,
    /// Change time: seconds, nanoseconds.
    pub ctime: (i64, i64),
}

#[derive(Debug, thiserror::Error)]
pub enum SafeError {
    #[error("{0} is a symbolic link; cnm never follows links in its own paths: remove it")]
    Symlink(String),
    #[error("{path} is not a {expected}; cnm will not use it")]
    WrongType {
        path: String,
        expected: &'static str,
    },
    #[error("{path} (owner uid {uid}) can be changed by someone other than the user running cnm; cnm will not trust records there (chown root and chmod 0700 it)")]
    Foreign { path: String, uid: u32 },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A command that only reads tried to write (a bug in cnm, caught
    /// before it changed anything).
    #[error("{0}: a read-only command may not change cnm's files")]
    ReadOnly(String),
}

pub type Result<T> = std::result::Result<T, SafeError>;

/// Set once a process has promised to only read (`plan`, `show`,
/// `status`, `graph`): from then on every change to cnm's files through
/// this module is refused, so a read-only command can never leave state
/// behind, whichever path it takes.
static READ_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Refuse every later write, creation and removal (see `READ_ONLY`).
pub fn forbid_writes() {
    READ_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this process promised to only read.
pub fn read_only() -> bool {
    READ_ONLY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Before a change at `path`: an error in a read-only process.
fn writable(path: &Path) -> Result<()> {
    if read_only() {
        return Err(SafeError::ReadOnly(path.display().to_string()));
    }
    Ok(())
}

fn io_err(path: &Path, e: Errno) -> SafeError {
    SafeError::Io {
        path: path.display().to_string(),
        source: e.into(),
    }
}

/// How names are resolved below a directory handle: never through a link,
/// never above the handle.
fn resolve() -> ResolveFlags {
    ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::BENEATH
}

/// A name inside a directory must be one plain component.
fn check_component(name: &str) -> std::result::Result<(), Errno> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Errno::INVAL);
    }
    Ok(())
}

/// An open directory of cnm's. Every operation is relative to its handle.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The path of a name inside this directory, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

fn kind_of(st: &rustix::fs::Stat) -> Kind {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

/// Turn an open error into a message naming the path: ELOOP from
/// RESOLVE_NO_SYMLINKS or O_NOFOLLOW means a link was met.
/// (O_DIRECTORY with O_NOFOLLOW on a link gives ENOTDIR.)
fn explain(path: &Path, e: Errno, expected: &'static str) -> SafeError {
    match (e, first_link(path)) {
        (Errno::LOOP | Errno::NOTDIR, Some(link)) => SafeError::Symlink(link.display().to_string()),
        (Errno::LOOP, None) => SafeError::Symlink(path.display().to_string()),
        (Errno::NOTDIR, None) => SafeError::WrongType {
            path: path.display().to_string(),
            expected,
        },
        (e, _) => io_err(path, e),
    }
}

/// The first component of `path` that is a symbolic link (for messages).
fn first_link(path: &Path) -> Option<PathBuf> {
    let mut cur = PathBuf::new();
    for comp in path.components() {
        cur.push(comp);
        if std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(cur);
        }
    }
    None
}

#[cfg(test)]
mod tests;
