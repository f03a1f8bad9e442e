//! File change notifications. The parent directory is watched, not the
//! file: editors and `git checkout` replace the file by renaming over it,
//! which a watch on the file itself loses after the first time. And the
//! file may be a link that changes without an event on its own name: a
//! Kubernetes ConfigMap mount swaps the `..data` link of the directory. So
//! every event in the directory compares what the path resolves to now
//! (device, inode, size, change time) with what it resolved to before.
//!
//! A change is sent at once (no fixed debounce), but never while the file
//! is still open for writing: a file cut at a line break can parse, and
//! would delete what its second half holds. Whether anyone has it open
//! for writing is the kernel's answer to a read lease (`F_SETLEASE` with
//! `F_RDLCK` is refused while any process holds it open for writing);
//! the writer's close then sends `IN_CLOSE_WRITE`, which is looked at
//! again. A rename into place (`IN_MOVED_TO`) names a file nobody writes.

use super::{Trigger, WatchError};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;

/// What `path` resolves to, through links: (device, inode, size, ctime).
/// Not the modification time, which `touch` can set to anything.
fn identity(path: &Path) -> Option<(u64, u64, u64, i64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.ctime(), m.ctime_nsec()))
}

/// Whether some process holds the file at `path` open for writing. A
/// filesystem without leases (or any other failure) answers no: the
/// change is then applied as soon as it is seen, as before.
pub fn open_for_writing(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns, with integer
    // arguments only; the lease (if granted) is released right away.
    let taken = unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) };
    if taken == 0 {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

/// A writer opening the file while this process holds its lease for a
/// moment makes the kernel send SIGIO, whose default action would end
/// the watcher: ignore it (nothing else here uses it).
fn ignore_lease_breaks() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no handler to
    // run and is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGIO, libc::SIG_IGN);
    }
}

/// Watch `path`; every change to what it names sends [`Trigger::File`],
/// once no process holds it open for writing.
/// Keep the returned watcher alive for as long as notifications are wanted.
pub fn watch(path: &Path, tx: UnboundedSender<Trigger>) -> Result<RecommendedWatcher, WatchError> {
    let err = |source| WatchError::Notify {
        path: path.display().to_string(),
        source,
    };
    ignore_lease_breaks();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let target = path.to_path_buf();
    // What the path was when a change was last sent, and whether a change
    // is held back until its writer closes the file.
    let state = Mutex::new((identity(path), false));
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        let closed_after_writing = matches!(
            ev.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
        );
        // Opens and reads (cnm's own among them) change nothing.
        if matches!(ev.kind, EventKind::Access(_)) && !closed_after_writing {
            return;
        }
        let named = ev
            .paths
            .iter()
            .any(|p| p.file_name() == Some(name.as_os_str()));
        let Ok(mut st) = state.lock() else { return };
        let now = identity(&target);
        let moved = st.0 != now;
        if !(named || moved || st.1) {
            return;
        }
        if open_for_writing(&target) {
            st.1 = true;
            return;
        }
        let held = st.1;
        *st = (now, false);
        // A write that changed nothing (the same bytes): no apply, unless
        // one was held back for it.
        if moved || held || !closed_after_writing {
            let _ = tx.send(Trigger::File);
        }
    })
    .map_err(err)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(err)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;
    use tokio::sync::mpsc;

    async fn next(rx: &mut mpsc::UnboundedReceiver<Trigger>, within: Duration) -> Option<Trigger> {
        tokio::time::timeout(within, rx.recv()).await.ok().flatten()
    }

    #[tokio::test]
    async fn renamed_into_place_is_sent_and_open_for_writing_is_held() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, "version: 1\n").expect("write");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _w = watch(&path, tx).expect("watch");

        // A rename into place: sent (no debounce stands before it; how
        // soon is the kernel's, so only that it comes is checked here).
        let new = dir.path().join("new.yaml");
        std::fs::write(&new, "version: 1\nname: a\n").expect("write");
        std::fs::rename(&new, &path).expect("rename");
        assert_eq!(
            next(&mut rx, Duration::from_secs(5)).await,
            Some(Trigger::File)
        );
        while next(&mut rx, Duration::from_millis(200)).await.is_some() {}

        // Written while still open: nothing until the writer closes it.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .expect("open");
        f.write_all(b"version: 1\nname: half\n").expect("write");
        f.flush().expect("flush");
        if !open_for_writing(&path) {
            eprintln!("SKIPPED: this filesystem grants no leases; held-back writes untested");
            return;
        }
        assert_eq!(next(&mut rx, Duration::from_millis(500)).await, None);
        drop(f);
        assert_eq!(
            next(&mut rx, Duration::from_secs(5)).await,
            Some(Trigger::File)
        );
    }
}
