//! Creating and writing files: O_EXCL under a random temporary name, mode
//! set with fchmod, atomic rename over the old file.

use super::mark::set_mark;
use super::random::random_hex;
use super::{
    check_component, explain, io_err, kind_of, resolve, Dir, FileId, Kind, Result, SafeError,
};
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::io::Write;

impl Dir {
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
        super::writable(&path)?;
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
            let tmp = format!(".{}.{}{TEMP_SUFFIX}", trim(name, 64), random_hex(8));
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
        super::writable(&path)?;
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
        super::writable(&path)?;
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
}

/// How every temporary name of [`Dir::write`] ends.
const TEMP_SUFFIX: &str = ".cnm-tmp";

/// Whether `name` has the shape of a temporary name of [`Dir::write`]:
/// `.<name>.<16 hex digits>.cnm-tmp`.
pub(super) fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_suffix(TEMP_SUFFIX) else {
        return false;
    };
    let Some((base, hex)) = rest.rsplit_once('.') else {
        return false;
    };
    base.len() > 1
        && base.starts_with('.')
        && hex.len() == 16
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn trim(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
