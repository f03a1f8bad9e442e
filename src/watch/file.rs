//! File change notifications. The parent directory is watched, not the
//! file: editors and `git checkout` replace the file by renaming over it,
//! which a watch on the file itself loses after the first time. And the
//! file may be a link that changes without an event on its own name: a
//! Kubernetes ConfigMap mount swaps the `..data` link of the directory. So
//! every event in the directory compares what the path resolves to now
//! (device, inode, size, change time) with what it resolved to before.

use super::{Trigger, WatchError};
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

/// Watch `path`; every change to what it names sends [`Trigger::File`].
/// Keep the returned watcher alive for as long as notifications are wanted.
pub fn watch(path: &Path, tx: UnboundedSender<Trigger>) -> Result<RecommendedWatcher, WatchError> {
    let err = |source| WatchError::Notify {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let target = path.to_path_buf();
    let last = Mutex::new(identity(path));
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        let named = ev
            .paths
            .iter()
            .any(|p| p.file_name() == Some(name.as_os_str()));
        let now = identity(&target);
        let moved = last.lock().map(|mut l| {
            let changed = *l != now;
            *l = now;
            changed
        });
        if named || moved.unwrap_or(true) {
            let _ = tx.send(Trigger::File);
        }
    })
    .map_err(err)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(err)?;
    Ok(watcher)
}
