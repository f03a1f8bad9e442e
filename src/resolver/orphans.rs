//! cnm's own resolvers that run without a record: their identity file was
//! deleted (`rm -rf /run/cnm/*`) while they kept serving, so the sockets
//! they hold on 127.0.0.11 would keep a new resolver from binding there.
//! A process counts as one only on three proofs, never on its name: its
//! executable is cnm's (the same file as the one apply starts, or this
//! binary), its command line is `cnm resolver …`, and it holds either a
//! socket bound to the resolver's address, 127.0.0.11 (looked at through
//! a duplicate of its descriptor taken with `pidfd_getfd`), or the
//! resolver's lock file (an idle resolver, whose namespaces are gone, has
//! no socket left). And it is this host's: it shares this process's mount
//! and network namespaces (on a machine that runs several private hosts,
//! each has its own resolver).

use crate::store::ResolverIdentity;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Every process that proves to be a resolver of cnm's, other than this
/// one. `exes`: the executables that count as cnm's.
pub fn find(exes: &[PathBuf], lock: &Path) -> Vec<ResolverIdentity> {
    let ids: Vec<(u64, u64)> = exes
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| runs_resolver_command(pid))
        .filter(|&pid| on_this_host(pid))
        .filter(|&pid| runs_cnm(pid, exes, &ids))
        .filter(|&pid| holds_resolver_socket_or(pid, lock))
        .filter_map(|pid| {
            Some(ResolverIdentity {
                version: crate::store::RECORD_VERSION,
                pid,
                start: crate::store::start_time(pid)?,
            })
        })
        .collect()
}

/// The same mount and network namespaces as this process.
fn on_this_host(pid: u32) -> bool {
    ["mnt", "net"].iter().all(|ns| {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{ns}"));
        let mine = std::fs::metadata(format!("/proc/self/ns/{ns}"));
        matches!((theirs, mine), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
    })
}

/// `argv[1]` is `resolver` (`cnm resolver`, `cnm resolver --wait -v`).
fn runs_resolver_command(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    cmdline.split(|b| *b == 0).nth(1) == Some(b"resolver".as_slice())
}

/// Its executable is one of `exes`: the same file, or, when that file was
/// replaced since it started (an upgrade: the kernel says `PATH
/// (deleted)`), the same path.
fn runs_cnm(pid: u32, exes: &[PathBuf], ids: &[(u64, u64)]) -> bool {
    let link = format!("/proc/{pid}/exe");
    if let Ok(m) = std::fs::metadata(&link) {
        if ids.contains(&(m.dev(), m.ino())) {
            return true;
        }
    }
    let Ok(target) = std::fs::read_link(&link) else {
        return false;
    };
    let text = target.to_string_lossy();
    let path = Path::new(text.strip_suffix(" (deleted)").unwrap_or(&text));
    exes.iter().any(|e| e == path)
}

/// Whether process `pid` holds a socket bound to 127.0.0.11, or the file
/// `lock` (deleted or not).
fn holds_resolver_socket_or(pid: u32, lock: &Path) -> bool {
    use rustix::process::{pidfd_getfd, pidfd_open, Pid, PidfdFlags, PidfdGetfdFlags};
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    let Ok(pidfd) = pidfd_open(p, PidfdFlags::empty()) else {
        return false;
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let lock = lock.to_string_lossy();
    let deleted = format!("{lock} (deleted)");
    for entry in fds.filter_map(Result::ok) {
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        if *target == *lock || *target == deleted {
            return true;
        }
        let is_socket = target.starts_with("socket:");
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if !is_socket {
            continue;
        }
        let Ok(dup) = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let bound = rustix::net::getsockname(&dup)
            .ok()
            .and_then(|a| std::net::SocketAddrV4::try_from(a).ok());
        if bound.is_some_and(|a| *a.ip() == super::ADDRESS) {
            return true;
        }
    }
    false
}
