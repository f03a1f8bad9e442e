//! The pace of a watcher between rounds: how long it backs off after a
//! failure, and what memory it keeps while idle.

use std::time::Duration;
use tracing::warn;

/// Longest pause between retries of a reconcile that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Hand the heap pages freed after a reconcile back to the kernel. glibc
/// keeps them otherwise (above its trim threshold, and in the arenas of the
/// threads observe reads with), so an idle watcher would stay the size of
/// its largest apply: 60 MB instead of a few at 1,000 sandboxes.
pub(super) fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only rearranges the
    // allocator's own free lists; it is safe to call at any time.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// The pause before the next attempt: after a failure, 1 s doubling up to
/// [`MAX_BACKOFF`]; after a success, none.
pub(super) fn next_backoff(backoff: Option<Duration>, failed: bool) -> Option<Duration> {
    if failed {
        let next = backoff.map_or(Duration::from_secs(1), |b| (b * 2).min(MAX_BACKOFF));
        warn!(retry_in = ?next, "reconcile failed; backing off");
        Some(next)
    } else {
        None
    }
}
