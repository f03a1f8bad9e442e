//! Deleting files and directories only when they are the ones cnm
//! recorded; links removed as links, never followed.

use super::write::is_temp_name;
use super::{io_err, kind_of, Dir, FileId, Kind, Result};
use rustix::fs::AtFlags;
use rustix::io::Errno;

impl Dir {
    /// Delete the file `name` if it is still the one identified by
    /// `expect` (any regular file when `None`). Returns whether it was
    /// deleted; a missing file counts as deleted.
    pub fn remove_file(&self, name: &str, expect: Option<FileId>) -> Result<bool> {
        let path = self.join(name);
        let Some(e) = self.stat(name)? else {
            return Ok(true);
        };
        super::writable(&path)?;
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
        super::writable(&path)?;
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {
                self.sync();
                Ok(true)
            }
            Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Delete the temporary files a killed cnm left in this directory
    /// (between creating one and renaming it into place). Call it only on a
    /// directory cnm owns, under cnm's lock. A leftover is a regular file
    /// with the shape of a temporary name, of the user running cnm, that
    /// either carries `mark` or is still empty (killed before the mark was
    /// set); anything else is left alone. Returns how many were deleted.
    pub fn remove_own_temps(&self, mark: &str) -> Result<usize> {
        super::writable(&self.path)?;
        let me = rustix::process::geteuid().as_raw();
        let mut removed = 0;
        for name in self.list()?.into_iter().filter(|n| is_temp_name(n)) {
            let st = match rustix::fs::statat(&self.fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(io_err(&self.join(&name), e)),
            };
            let ours = kind_of(&st) == Kind::File
                && st.st_uid == me
                && (st.st_size == 0 || self.mark_of(&name).as_deref() == Some(mark));
            if !ours {
                continue;
            }
            match rustix::fs::unlinkat(&self.fd, name.as_str(), AtFlags::empty()) {
                Ok(()) => removed += 1,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(io_err(&self.join(&name), e)),
            }
        }
        Ok(removed)
    }

    /// Remove a directory tree of cnm's own records. Links inside are
    /// removed as links, never followed.
    pub fn remove_tree(&self, name: &str) -> Result<()> {
        if self.stat(name)?.is_some() {
            super::writable(&self.join(name))?;
        }
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
}
