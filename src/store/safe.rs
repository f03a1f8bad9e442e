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

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, XattrFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
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
}

pub type Result<T> = std::result::Result<T, SafeError>;

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

    /// Open an existing directory by absolute path; `None` when it (or a
    /// parent) does not exist. A link at any component is an error.
    pub fn open(path: &Path) -> Result<Option<Dir>> {
        match rustix::fs::openat2(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: path.to_path_buf(),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(explain(path, e, "directory")),
        }
    }

    /// Open a directory by absolute path, creating every missing component
    /// with `mode` (set with fchmod, whatever the umask). Components that
    /// exist keep their mode.
    pub fn create_all(path: &Path, mode: u32) -> Result<Dir> {
        if let Some(d) = Dir::open(path)? {
            return Ok(d);
        }
        let mut dir = Dir::open(Path::new("/"))?.ok_or_else(|| io_err(path, Errno::NOENT))?;
        for comp in path.components().skip(1) {
            let name = comp.as_os_str().to_string_lossy().to_string();
            dir = dir.create_subdir(&name, mode)?.0;
        }
        Ok(dir)
    }

    /// Open a subdirectory; `None` when missing.
    pub fn subdir(&self, name: &str) -> Result<Option<Dir>> {
        let path = self.join(name);
        check_component(name).map_err(|e| io_err(&path, e))?;
        match rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            resolve(),
        ) {
            Ok(fd) => Ok(Some(Dir { fd, path })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(explain(&path, e, "directory")),
        }
    }

    /// Open or create a subdirectory. Returns it and whether it was created
    /// now; a created one gets `mode`.
    pub fn create_subdir(&self, name: &str, mode: u32) -> Result<(Dir, bool)> {
        if let Some(d) = self.subdir(name)? {
            return Ok((d, false));
        }
        let path = self.join(name);
        let created = match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(io_err(&path, e)),
        };
        let d = self
            .subdir(name)?
            .ok_or_else(|| io_err(&path, Errno::NOENT))?;
        if created {
            rustix::fs::fchmod(&d.fd, Mode::from_raw_mode(mode)).map_err(|e| io_err(&path, e))?;
            self.sync();
        }
        Ok((d, created))
    }

    /// What is at `name`, without following a link.
    pub fn stat(&self, name: &str) -> Result<Option<Entry>> {
        let path = self.join(name);
        check_component(name).map_err(|e| io_err(&path, e))?;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Entry {
                kind: kind_of(&st),
                id: FileId::of(&st),
                size: st.st_size as u64,
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Open a regular file for reading; `None` when missing. Links and
    /// anything but a regular file are errors.
    pub fn open_file(&self, name: &str) -> Result<Option<(std::fs::File, FileId)>> {
        let path = self.join(name);
        check_component(name).map_err(|e| io_err(&path, e))?;
        let fd = match rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
            resolve(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(explain(&path, e, "regular file")),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(&path, e))?;
        if kind_of(&st) != Kind::File {
            return Err(SafeError::WrongType {
                path: path.display().to_string(),
                expected: "regular file",
            });
        }
        Ok(Some((std::fs::File::from(fd), FileId::of(&st))))
    }

    /// Read a regular file of at most `max` bytes; `None` when missing.
    pub fn read(&self, name: &str, max: u64) -> Result<Option<(Vec<u8>, FileId)>> {
        let Some((f, id)) = self.open_file(name)? else {
            return Ok(None);
        };
        let path = self.join(name);
        let mut buf = Vec::new();
        f.take(max + 1)
            .read_to_end(&mut buf)
            .map_err(|source| SafeError::Io {
                path: path.display().to_string(),
                source,
            })?;
        if buf.len() as u64 > max {
            return Err(SafeError::TooLarge {
                path: path.display().to_string(),
                max,
            });
        }
        Ok(Some((buf, id)))
    }

    /// A UTF-8 file (see [`Dir::read`]).
    pub fn read_string(&self, name: &str, max: u64) -> Result<Option<(String, FileId)>> {
        match self.read(name, max)? {
            None => Ok(None),
            Some((b, id)) => {
                String::from_utf8(b)
                    .map(|s| Some((s, id)))
                    .map_err(|_| SafeError::WrongType {
                        path: self.join(name).display().to_string(),
                        expected: "UTF-8 text file",
                    })
            }
        }
    }

    /// Replace `name` with `data` atomically and return the new file's
    /// identity. The content goes to a new file (random name, O_EXCL, mode
    /// set with fchmod, `mark` as its `trusted.cnm` attribute when the
    /// filesystem keeps one), which is then renamed over `name`. A link or
    /// a directory at `name` is an error. `durable`: fsync file and
    /// directory (skip it for files cnm can regenerate).
    pub fn write(
        &self,
        name: &str,
        data: &[u8],
        mode: u32,
        mark: Option<&str>,
        durable: bool,
    ) -> Result<FileId> {
        let path = self.join(name);
        match self.stat(name)? {
            Some(e) if e.kind == Kind::Symlink => {
                return Err(SafeError::Symlink(path.display().to_string()))
            }
            Some(e) if e.kind != Kind::File => {
                return Err(SafeError::WrongType {
                    path: path.display().to_string(),
                    expected: "regular file",
                })
            }
            _ => {}
        }
        let (fd, tmp) = self.create_temp(name)?;
        let tmp_path = self.join(&tmp);
        let result = (|| -> std::result::Result<FileId, SafeError> {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| io_err(&tmp_path, e))?;
            if let Some(m) = mark {
                set_mark(&fd, m);
            }
            let mut f = std::fs::File::from(fd);
            f.write_all(data).map_err(|source| SafeError::Io {
                path: tmp_path.display().to_string(),
                source,
            })?;
            if durable {
                f.sync_all().map_err(|source| SafeError::Io {
                    path: tmp_path.display().to_string(),
                    source,
                })?;
            }
            let st = rustix::fs::fstat(&f).map_err(|e| io_err(&tmp_path, e))?;
            rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name)
                .map_err(|e| io_err(&path, e))?;
            Ok(FileId::of(&st))
        })();
        match result {
            Ok(id) => {
                if durable {
                    self.sync();
                }
                Ok(id)
            }
            Err(e) => {
                let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
                Err(e)
            }
        }
    }

    /// A new empty file under a random name beside `name`, created with
    /// O_EXCL (a planted link or file there is never opened).
    fn create_temp(&self, name: &str) -> Result<(OwnedFd, String)> {
        for _ in 0..8 {
            let tmp = format!(".{}.{}.cnm-tmp", trim(name, 64), random_hex(8));
            match rustix::fs::openat2(
                &self.fd,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
                resolve(),
            ) {
                Ok(fd) => return Ok((fd, tmp)),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_err(&self.join(&tmp), e)),
            }
        }
        Err(io_err(&self.join(name), Errno::EXIST))
    }

    /// Create an empty file that must not exist yet (O_EXCL), with `mode`.
    pub fn create_new(&self, name: &str, mode: u32) -> Result<(OwnedFd, FileId)> {
        let path = self.join(name);
        check_component(name).map_err(|e| io_err(&path, e))?;
        let fd = rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
            resolve(),
        )
        .map_err(|e| explain(&path, e, "file"))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| io_err(&path, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(&path, e))?;
        Ok((fd, FileId::of(&st)))
    }

    /// Open (creating if needed) a file that lives on, such as the lock.
    pub fn open_or_create(&self, name: &str, mode: u32) -> Result<std::fs::File> {
        let path = self.join(name);
        check_component(name).map_err(|e| io_err(&path, e))?;
        let fd = rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
            resolve(),
        )
        .map_err(|e| explain(&path, e, "regular file"))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(&path, e))?;
        if kind_of(&st) != Kind::File {
            return Err(SafeError::WrongType {
                path: path.display().to_string(),
                expected: "regular file",
            });
        }
        if st.st_mode & 0o7777 != mode {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| io_err(&path, e))?;
        }
        Ok(std::fs::File::from(fd))
    }

    /// Delete the file `name` if it is still the one identified by
    /// `expect` (any regular file when `None`). Returns whether it was
    /// deleted; a missing file counts as deleted.
    pub fn remove_file(&self, name: &str, expect: Option<FileId>) -> Result<bool> {
        let path = self.join(name);
        let Some(e) = self.stat(name)? else {
            return Ok(true);
        };
        if e.kind == Kind::Dir || expect.is_some_and(|id| id != e.id) {
            return Ok(false);
        }
        if expect.is_none() && e.kind != Kind::File {
            return Ok(false);
        }
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {
                self.sync();
                Ok(true)
            }
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Remove the empty directory `name` if it is the one identified by
    /// `expect`. A directory that still holds something is left (false).
    pub fn remove_dir(&self, name: &str, expect: FileId) -> Result<bool> {
        let path = self.join(name);
        match self.stat(name)? {
            None => return Ok(true),
            Some(e) if e.kind != Kind::Dir || e.id != expect => return Ok(false),
            Some(_) => {}
        }
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {
                self.sync();
                Ok(true)
            }
            Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Remove a directory tree of cnm's own records. Links inside are
    /// removed as links, never followed.
    pub fn remove_tree(&self, name: &str) -> Result<()> {
        let Some(sub) = self.subdir(name)? else {
            return match self.stat(name)? {
                None => Ok(()),
                Some(_) => match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => Ok(()),
                    Err(e) => Err(io_err(&self.join(name), e)),
                },
            };
        };
        for child in sub.list()? {
            match sub.stat(&child)? {
                Some(e) if e.kind == Kind::Dir => sub.remove_tree(&child)?,
                Some(_) => match rustix::fs::unlinkat(&sub.fd, child.as_str(), AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(io_err(&sub.join(&child), e)),
                },
                None => {}
            }
        }
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {
                self.sync();
                Ok(())
            }
            Err(e) => Err(io_err(&self.join(name), e)),
        }
    }

    /// Names in the directory (not `.` and `..`), UTF-8 ones only.
    pub fn list(&self) -> Result<Vec<String>> {
        let fd = rustix::fs::openat2(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS,
        )
        .map_err(|e| io_err(&self.path, e))?;
        let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| io_err(&self.path, e))?;
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| io_err(&self.path, e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if let Ok(s) = std::str::from_utf8(name) {
                out.push(s.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The `trusted.cnm` mark of a file or directory at `name`, if any.
    pub fn mark_of(&self, name: &str) -> Option<String> {
        check_component(name).ok()?;
        let fd = rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
            resolve(),
        )
        .ok()?;
        read_mark(&fd)
    }

    /// Mark this directory itself as cnm's (see [`set_mark`]).
    pub fn set_mark(&self, mark: &str) {
        set_mark(&self.fd, mark);
    }

    /// The mark of this directory itself.
    pub fn own_mark(&self) -> Option<String> {
        read_mark(&self.fd)
    }

    /// Make sure only root can change what is in this directory: it must
    /// belong to the user running cnm, and loses any group or other
    /// permission bits (cnm's state roots are 0700 whoever made them).
    pub fn ensure_private(&self, mode: u32) -> Result<()> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| io_err(&self.path, e))?;
        let me = rustix::process::geteuid().as_raw();
        if st.st_uid != me {
            return Err(SafeError::Foreign {
                path: self.path.display().to_string(),
                uid: st.st_uid,
            });
        }
        if st.st_mode & 0o7777 != mode {
            rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(mode))
                .map_err(|e| io_err(&self.path, e))?;
        }
        Ok(())
    }

    /// Whether nobody but the user running cnm can change what this
    /// directory holds (read-only check, before trusting records). With
    /// `sticky_ok`, a sticky world-writable directory passes (others may
    /// add names there, not replace cnm's).
    pub fn check_private(&self, sticky_ok: bool) -> Result<()> {
        let st = rustix::fs::fstat(&self.fd).map_err(|e| io_err(&self.path, e))?;
        let writable = st.st_mode & 0o022 != 0;
        let sticky = st.st_mode & 0o1000 != 0;
        if st.st_uid != rustix::process::geteuid().as_raw() || (writable && !(sticky_ok && sticky))
        {
            return Err(SafeError::Foreign {
                path: self.path.display().to_string(),
                uid: st.st_uid,
            });
        }
        Ok(())
    }

    /// This directory's identity.
    pub fn id(&self) -> Result<FileId> {
        rustix::fs::fstat(&self.fd)
            .map(|st| FileId::of(&st))
            .map_err(|e| io_err(&self.path, e))
    }

    /// fsync the directory, so renames and unlinks in it are durable.
    /// Best effort: a failure here loses nothing already written.
    pub fn sync(&self) {
        let _ = rustix::fs::fsync(&self.fd);
    }
}

/// The extended attribute holding cnm's ownership mark on files and
/// directories. `trusted.*` attributes can be set only with CAP_SYS_ADMIN,
/// so no unprivileged user can forge one.
pub const MARK_XATTR: &str = "trusted.cnm";

/// Put cnm's mark on a file. Filesystems without trusted attributes simply
/// do not keep it; the recorded inode still proves ownership there.
pub fn set_mark(fd: impl AsFd, mark: &str) {
    let _ = rustix::fs::fsetxattr(fd, MARK_XATTR, mark.as_bytes(), XattrFlags::empty());
}

fn read_mark(fd: impl AsFd) -> Option<String> {
    let mut buf = [0u8; 256];
    let n = rustix::fs::fgetxattr(fd, MARK_XATTR, &mut buf).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
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

fn trim(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `n` random bytes as hex, from the kernel's generator.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(k) => filled += k,
            Err(Errno::INTR) => continue,
            Err(_) => {
                // Never expected on Linux ≥ 3.17; fall back to time and pid.
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let seed = format!("{t}/{}/{filled}", std::process::id());
                let d = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
                for (slot, b) in buf[filled..].iter_mut().zip(d.iter()) {
                    *slot = *b;
                }
                filled = n;
            }
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn write_sets_mode_whatever_the_umask_and_replaces_atomically() {
        let t = tmp();
        let old = rustix::process::umask(Mode::empty());
        let d = Dir::create_all(&t.path().join("a/b"), 0o700).unwrap();
        rustix::process::umask(old);
        let m = std::fs::metadata(t.path().join("a")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o700);
        let id1 = d.write("f", b"one", 0o644, None, true).unwrap();
        let id2 = d.write("f", b"two", 0o644, None, true).unwrap();
        assert_ne!(id1, id2);
        let m = std::fs::metadata(t.path().join("a/b/f")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o644);
        assert_eq!(d.read_string("f", 10).unwrap().unwrap().0, "two");
        assert_eq!(d.list().unwrap(), vec!["f".to_string()]);
    }

    #[test]
    fn links_are_never_followed() {
        let t = tmp();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let d = Dir::create_all(&t.path().join("d"), 0o755).unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join("d/f")).unwrap();
        assert!(matches!(d.read("f", 100), Err(SafeError::Symlink(_))));
        assert!(matches!(
            d.write("f", b"x", 0o644, None, false),
            Err(SafeError::Symlink(_))
        ));
        assert!(!d.remove_file("f", None).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        // A link in the middle of a path.
        std::os::unix::fs::symlink(t.path().join("d"), t.path().join("l")).unwrap();
        assert!(matches!(
            Dir::open(&t.path().join("l")),
            Err(SafeError::Symlink(p)) if p.ends_with("/l")
        ));
        assert!(Dir::create_all(&t.path().join("l/x"), 0o700).is_err());
    }

    #[test]
    fn remove_checks_identity() {
        let t = tmp();
        let d = Dir::create_all(t.path(), 0o700).unwrap();
        let id = d.write("f", b"x", 0o600, None, false).unwrap();
        let other = d.write("g", b"y", 0o600, None, false).unwrap();
        assert!(!d.remove_file("f", Some(other)).unwrap());
        assert!(d.remove_file("f", Some(id)).unwrap());
        assert!(d.stat("f").unwrap().is_none());
        let (_sub, created) = d.create_subdir("s", 0o755).unwrap();
        assert!(created);
        let sid = d.stat("s").unwrap().unwrap().id;
        std::fs::write(t.path().join("s/foreign"), "x").unwrap();
        assert!(!d.remove_dir("s", sid).unwrap());
        assert!(t.path().join("s/foreign").exists());
    }
}
