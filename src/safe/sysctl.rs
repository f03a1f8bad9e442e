//! Writing a sysctl under /proc/sys, resolved below that directory without
//! following links, never created (a key the kernel does not have is an
//! error, not a new file).

use super::{check_component, explain, io_err, resolve, Dir, Result};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::path::Path;

pub const PROC_SYS: &str = "/proc/sys";

/// Set `key` (`net/ipv4/ip_forward`) to `value`.
pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let root = Path::new(PROC_SYS);
    let path = root.join(key);
    super::writable(&path)?;
    for comp in key.split('/') {
        check_component(comp).map_err(|e| io_err(&path, e))?;
    }
    let dir = Dir::open(root)?.ok_or_else(|| io_err(root, Errno::NOENT))?;
    let fd = rustix::fs::openat2(
        dir.fd(),
        key,
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        resolve(),
    )
    .map_err(|e| explain(&path, e, "sysctl"))?;
    let mut bytes = value.as_bytes();
    while !bytes.is_empty() {
        let n = rustix::io::write(&fd, bytes).map_err(|e| io_err(&path, e))?;
        bytes = &bytes[n..];
    }
    Ok(())
}
