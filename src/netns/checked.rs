//! Opening a namespace cnm did not make: checked to be a network namespace
//! (and not the host's own) before anything uses it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Open a namespace file: it must be on nsfs (statfs) and a network
/// namespace, and not the one cnm runs in (that is the host's).
pub fn open_checked(path: &Path) -> Result<(File, u64), String> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let on_nsfs = nix::sys::statfs::fstatfs(&file)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
    if !on_nsfs {
        return Err(format!("{shown} is not a namespace (not on nsfs)"));
    }
    if !is_net_namespace(&file) {
        return Err(format!(
            "{shown} is a namespace, but not a network namespace"
        ));
    }
    let ino = super::id_of(&file).map_err(|e| format!("cannot stat {shown}: {e}"))?;
    let own = File::open("/proc/self/ns/net")
        .and_then(|f| super::id_of(&f))
        .map_err(|e| format!("cannot stat this process's namespace: {e}"))?;
    if ino == own {
        return Err(format!(
            "{shown} is the host's own network namespace; a sandbox needs one of its own"
        ));
    }
    Ok((file, ino))
}

/// NS_GET_NSTYPE (linux/nsfs.h: `_IO(0xb7, 0x3)`) says which kind of
/// namespace a file is. Hand-rolled: no maintained crate wraps this ioctl.
fn is_net_namespace(f: &File) -> bool {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: the fd is open for the call's duration; the ioctl takes no
    // argument and only returns a value.
    let kind = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE as _) };
    kind == libc::CLONE_NEWNET
}
