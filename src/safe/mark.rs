//! cnm's ownership mark: the `trusted.cnm` extended attribute on files
//! and directories.

use super::{check_component, resolve, Dir};
use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags, XattrFlags};

/// The extended attribute holding cnm's ownership mark on files and
/// directories. `trusted.*` attributes can be set only with CAP_SYS_ADMIN,
/// so no unprivileged user can forge one.
pub const MARK_XATTR: &str = "trusted.cnm";

/// Put cnm's mark on a file. Filesystems without trusted attributes simply
/// do not keep it; the recorded inode still proves ownership there.
pub fn set_mark(fd: impl AsFd, mark: &str) {
    if super::read_only() {
        return;
    }
    let _ = rustix::fs::fsetxattr(fd, MARK_XATTR, mark.as_bytes(), XattrFlags::empty());
}

fn read_mark(fd: impl AsFd) -> Option<String> {
    let mut buf = [0u8; 256];
    let n = rustix::fs::fgetxattr(fd, MARK_XATTR, &mut buf).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

impl Dir {
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
}
