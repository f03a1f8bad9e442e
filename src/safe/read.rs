//! Reading regular files: links and anything but a regular file refused,
//! size bounded.

use super::{
    check_component, explain, io_err, kind_of, resolve, Dir, FileId, Kind, Result, SafeError,
};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::io::Read;

impl Dir {
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
}
