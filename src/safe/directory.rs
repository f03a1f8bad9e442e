//! Opening, creating, listing and checking directories, every name
//! resolved below a handle without following links.

use super::{
    check_component, explain, io_err, kind_of, resolve, Dir, Entry, FileId, Result, SafeError,
};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::path::Path;

impl Dir {
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
        super::writable(&path)?;
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
                ctime: (st.st_ctime, st.st_ctime_nsec as i64),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err(&path, e)),
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
            super::writable(&self.path)?;
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

    /// Flush everything written to this directory's filesystem (syncfs):
    /// one call makes a batch of writes made without fsync durable.
    /// Best effort, like [`Dir::sync`].
    pub fn sync_filesystem(&self) {
        let _ = rustix::fs::syncfs(&self.fd);
    }

    /// fsync the directory, so renames and unlinks in it are durable.
    /// Best effort: a failure here loses nothing already written.
    pub fn sync(&self) {
        let _ = rustix::fs::fsync(&self.fd);
    }
}
