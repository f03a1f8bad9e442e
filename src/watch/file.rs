//! File change notifications. The parent directory is watched, not the
//! file: editors and `git checkout` replace the file by renaming over it,
//! which a watch on the file itself loses after the first time.

use super::{Trigger, WatchError};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::Path;
use tokio::sync::mpsc::UnboundedSender;

/// Watch `path`; every change to it sends [`Trigger::File`]. Keep the
/// returned watcher alive for as long as notifications are wanted.
pub fn watch(path: &Path, tx: UnboundedSender<Trigger>) -> Result<RecommendedWatcher, WatchError> {
    let err = |source| WatchError::Notify {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        if ev
            .paths
            .iter()
            .any(|p| p.file_name() == Some(name.as_os_str()))
        {
            let _ = tx.send(Trigger::File);
        }
    })
    .map_err(err)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(err)?;
    Ok(watcher)
}
