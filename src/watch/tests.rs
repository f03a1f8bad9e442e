//! The watch loop's pacing, on a paused clock.

use super::*;

/// How long `gather` waits after `first`, on a paused clock (sleeps
/// advance it exactly).
async fn waited(first: Trigger) -> Duration {
    let (_tx, mut rx) = mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    let deadline = Instant::now();
    gather(&mut rx, first, Duration::from_millis(50), false, deadline).await;
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_file_change_is_applied_without_a_debounce() {
    assert_eq!(waited(Trigger::File).await, Duration::ZERO);
    // Kernel events do wait for the rest of their burst.
    let kernel = waited(Trigger::Kernel("link deleted".into())).await;
    assert_eq!(kernel, Duration::from_millis(50));
}
