//! `cnm watch`: keep the kernel equal to a file. Applies on start, then again
//! when the file changes (at once, once its writer closed it), when the kernel drifts (netlink
//! events on owned objects) and on a periodic full resync (for what events
//! cannot show: edited files, flushed tables). An invalid file is logged
//! and ignored: the last good topology stays the one enforced.

pub mod claim;
mod file;
mod kernel;
mod nft;
pub mod status;

use crate::apply::{self, ApplyError};
use crate::plan::Op;
use crate::spec::{self, Topology};
use crate::store::Store;
use claim::Claim;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Why a reconcile runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The topology file changed.
    File,
    /// Something owned changed in the kernel (description for the log).
    Kernel(String),
}

pub struct Options {
    /// Full re-plan at least this often.
    pub resync: Duration,
    /// Multi-host files: which host this machine is (`--host`).
    pub host: Option<String>,
    /// Bursts of kernel events within this window become one reconcile
    /// (file changes are applied at once, see `gather`).
    pub debounce: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {source}")]
    Notify { path: String, source: notify::Error },
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
    #[error("{0}")]
    Held(String),
}

/// Longest pause between retries of a reconcile that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub async fn run(path: PathBuf, opts: Options) -> Result<(), WatchError> {
    let source = std::fs::canonicalize(&path)
        .ok()
        .map(|p| p.display().to_string());
    // The claim is released when it is dropped, however the loop ends.
    let mut held: Option<Claim> = None;
    watch_loop(&path, &source, &opts, &mut held).await
}

async fn watch_loop(
    path: &Path,
    source: &Option<String>,
    opts: &Options,
    held: &mut Option<Claim>,
) -> Result<(), WatchError> {
    let path = path.to_path_buf();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _watcher = file::watch(&path, tx.clone())?;
    let mut monitors = kernel::Monitors::new(tx);
    let mut sigterm = signal(SignalKind::terminate()).map_err(WatchError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(WatchError::Signal)?;

    let mut topology: Option<Topology> = None;
    let mut report = status::WatchStatus {
        version: crate::store::RECORD_VERSION,
        pid: std::process::id(),
        file: source.clone().unwrap_or_else(|| path.display().to_string()),
        started: status::now(),
        applies: 0,
        last: None,
    };
    let mut reload = true;
    let mut backoff: Option<Duration> = None;
    let mut why = "start".to_string();
    let mut raced = 0;
    loop {
        if reload {
            reload_topology(&path, source, opts.host.as_deref(), held, &mut topology).await?;
        }
        // Namespaces and files that sent no event since they were last
        // read need not be read again; a resync and the round after a
        // failure read everything.
        let quiet = monitors.take_quiet();
        let trust = if why == "resync" || why == "start" || backoff.is_some() || raced > 0 {
            apply::Trust::Nothing
        } else {
            apply::Trust::UnchangedAmong(quiet)
        };
        let result = match &topology {
            Some(t) => {
                let (result, last) = reconcile(t, &why, trust).await;
                report.applies += 1;
                if report.last.is_none() {
                    status::notify("READY=1");
                }
                status::notify(&format!("STATUS={}", last.line()));
                report.last = Some(last);
                if let Err(e) = status::record(&Store::system(), &t.name, &report) {
                    warn!("cannot record the watcher's status: {e}");
                }
                result
            }
            None => Ok(()),
        };
        // Something changed again while the apply verified its work (drift
        // racing the repair): plan again at once, a few times, before
        // backing off.
        if matches!(result, Err(ApplyError::NotConverged(_))) && raced < 3 {
            raced += 1;
            reload = false;
            why = "changed again during apply".into();
            continue;
        }
        raced = 0;
        backoff = next_backoff(backoff, result.is_err());
        if let Some(t) = &topology {
            monitors.refresh(&t.name).await;
        }
        release_memory();
        // Events that arrived meanwhile are mostly echoes of our own changes,
        // but a real drift may hide among them: look again (a no-op plan is
        // cheap and changes nothing, so this settles).
        if let Some(trig) = drain(&mut rx).filter(|t| *t == Trigger::File || backoff.is_none()) {
            reload = trig == Trigger::File;
            why = match trig {
                Trigger::File => "file changed".into(),
                Trigger::Kernel(w) => w,
            };
            continue;
        }

        let quiet = backoff.unwrap_or(opts.resync);
        let deadline = Instant::now() + quiet;
        let trig = tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = tokio::time::sleep(quiet) => None,
            t = rx.recv() => t,
            _ = resolver_gone(topology.as_ref()) => {
                Some(Trigger::Kernel("the resolver is not running".into()))
            }
            sandbox = borrowed_moved(topology.as_ref()) => {
                Some(Trigger::Kernel(format!("the namespace sandbox {sandbox} borrows is another one")))
            }
        };
        (reload, why) = match trig {
            None => (
                backoff.is_some(),
                if backoff.is_some() {
                    "retry".into()
                } else {
                    "resync".into()
                },
            ),
            Some(first) => gather(&mut rx, first, opts.debounce, backoff.is_some(), deadline).await,
        };
    }
    info!("stopping; the network stays as it is");
    Ok(())
}

/// Hand the heap pages freed after a reconcile back to the kernel. glibc
/// keeps them otherwise (above its trim threshold, and in the arenas of the
/// threads observe reads with), so an idle watcher would stay the size of
/// its largest apply: 60 MB instead of a few at 1,000 sandboxes.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only rearranges the
    // allocator's own free lists; it is safe to call at any time.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// How often watch looks whether the embedded resolver still runs.
const RESOLVER_CHECK: Duration = Duration::from_secs(1);

/// Resolves when the resolver this topology was given has died (checked
/// every second: a look at /proc); never without a topology.
async fn resolver_gone(t: Option<&Topology>) {
    let Some(name) = t.map(|t| t.name.clone()) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(RESOLVER_CHECK).await;
        if crate::resolver::control::needs_restart(&name) {
            return;
        }
    }
}

/// How often watch looks whether a borrowed namespace (`netns:`) is
/// another one now (a container started again): no event says so.
const BORROWED_CHECK: Duration = Duration::from_secs(1);

/// Resolves, with the sandbox's name, when the namespace a sandbox of
/// this machine borrows is found and is not the one recorded (a stopped
/// container is left to the next resync: it is an error to plan, not a
/// change to chase); never without borrowed sandboxes.
async fn borrowed_moved(t: Option<&Topology>) -> String {
    let refs: Vec<(String, crate::spec::NetnsRef)> = t
        .map(|t| {
            t.sandboxes
                .values()
                .filter(|s| t.this_host.is_none() || s.host == t.this_host)
                .filter_map(|s| Some((s.name.clone(), s.netns.clone()?)))
                .collect()
        })
        .unwrap_or_default();
    let (Some(t), false) = (t, refs.is_empty()) else {
        return std::future::pending().await;
    };
    let name = t.name.clone();
    loop {
        tokio::time::sleep(BORROWED_CHECK).await;
        let Ok(records) = crate::store::Store::system()
            .topology(&name)
            .and_then(|s| s.namespaces())
        else {
            continue;
        };
        for (sandbox, r) in &refs {
            // Not attached yet: the reconcile that attaches it is due.
            let Some(recorded) = records.get(sandbox).and_then(|r| r.ino) else {
                continue;
            };
            if let Ok(now) = crate::netns::borrowed::identity(r).await {
                if now != recorded {
                    return sandbox.clone();
                }
            }
        }
    }
}

/// Load the file again and take its topology for this watcher; the last
/// valid topology stays the enforced one when that fails. An error only
/// when there is none yet.
async fn reload_topology(
    path: &Path,
    source: &Option<String>,
    host: Option<&str>,
    held: &mut Option<Claim>,
    topology: &mut Option<Topology>,
) -> Result<(), WatchError> {
    if let Some(t) = load(path, host) {
        match hold(&t.name, source, held).await {
            Ok(()) => *topology = Some(t),
            Err(e) if topology.is_none() => return Err(e),
            Err(e) => error!("{e}; the last valid topology stays applied"),
        }
    }
    Ok(())
}

/// The pause before the next attempt: after a failure, 1 s doubling up to
/// [`MAX_BACKOFF`]; after a success, none.
fn next_backoff(backoff: Option<Duration>, failed: bool) -> Option<Duration> {
    if failed {
        let next = backoff.map_or(Duration::from_secs(1), |b| (b * 2).min(MAX_BACKOFF));
        warn!(retry_in = ?next, "reconcile failed; backing off");
        Some(next)
    } else {
        None
    }
}

/// The triggers already queued, as one: a file change wins over kernel
/// events.
fn drain(rx: &mut mpsc::UnboundedReceiver<Trigger>) -> Option<Trigger> {
    let mut pending = None;
    while let Ok(trig) = rx.try_recv() {
        if pending != Some(Trigger::File) {
            pending = Some(trig);
        }
    }
    pending
}

/// Gather the burst `first` starts, then decide whether to reload the
/// file, and why. Kernel events come in bursts (one change, several
/// messages): they wait `debounce`. A file change does not wait: it is
/// sent only once its writer has closed the file or renamed it into place
/// (see `file`). While backing off, a repair waits until `deadline`
/// unless the file changed.
async fn gather(
    rx: &mut mpsc::UnboundedReceiver<Trigger>,
    first: Trigger,
    debounce: Duration,
    backing_off: bool,
    deadline: Instant,
) -> (bool, String) {
    if first != Trigger::File {
        tokio::time::sleep(debounce).await;
    }
    let mut file = first == Trigger::File;
    let mut what = match &first {
        Trigger::Kernel(w) => w.clone(),
        Trigger::File => "file changed".into(),
    };
    while let Ok(t) = rx.try_recv() {
        if t == Trigger::File {
            file = true;
            what = "file changed".into();
        }
    }
    // A failing repair waits out its backoff unless the file changed.
    if !file && backing_off {
        tokio::time::sleep_until(deadline.into()).await;
    }
    (file, what)
}

/// Take topology `name` for this watcher: refused while another running
/// watcher holds it. A new name (the file renamed its topology) releases
/// the old one, and topologies this file applied before under other names
/// are pruned (GitOps: what the source no longer describes goes).
async fn hold(
    name: &str,
    source: &Option<String>,
    held: &mut Option<Claim>,
) -> Result<(), WatchError> {
    if held.as_ref().is_some_and(|c| c.topology() == name) {
        return Ok(());
    }
    let store = Store::system();
    let claim = Claim::take(&store, name, source.as_deref().unwrap_or_default())
        .map_err(|e| WatchError::Held(e.to_string()))?;
    // The old claim (another name) goes as the new one is taken.
    *held = Some(claim);
    if let Some(src) = source {
        prune(&store, src, name).await;
    }
    Ok(())
}

/// Destroy topologies last applied from `source` under another name than
/// `keep`, unless another running watcher holds them.
async fn prune(store: &Store, source: &str, keep: &str) {
    for name in store.topologies().unwrap_or_default() {
        let Ok(ts) = store.topology(&name) else {
            continue;
        };
        let from_here = ts
            .applied()
            .ok()
            .flatten()
            .is_some_and(|r| r.source.as_deref() == Some(source));
        let kept_elsewhere =
            claim::holder(store, &name).is_some_and(|w| w.pid != std::process::id());
        if name == keep || !from_here || kept_elsewhere {
            continue;
        }
        warn!(topology = %name, "no longer in {source} (its topology is now {keep}): destroying it");
        match apply::destroy(&name, &name, |_| Ok(())).await {
            Ok(plan) => info!(topology = %name, destroyed = plan.summary().destroy, "pruned"),
            Err(e) => error!(topology = %name, "cannot prune: {e}"),
        }
    }
}

/// Parse the file; on error log every located problem and keep the old one.
fn load(path: &Path, host: Option<&str>) -> Option<Topology> {
    let loaded = spec::load(path)
        .map_err(|e| e.to_string())
        .and_then(|mut t| {
            t.select_host(host)?;
            Ok(t)
        });
    match loaded {
        Ok(t) => Some(t),
        Err(e) => {
            for line in e.to_string().lines() {
                error!("{line}");
            }
            error!(
                "ignoring this version of {}; the last valid one stays applied",
                path.display()
            );
            None
        }
    }
}

/// One apply, and how it went (for `cnm status` and systemd).
async fn reconcile(
    t: &Topology,
    why: &str,
    trust: apply::Trust,
) -> (Result<(), ApplyError>, status::Convergence) {
    let start = Instant::now();
    let result = converge(t, why, trust, start).await;
    let (summary, error) = match &result {
        Ok(s) => (s.clone(), None),
        Err(e) => (Default::default(), Some(e.to_string())),
    };
    let last = status::Convergence {
        at: status::now(),
        result: if error.is_none() {
            "converged"
        } else {
            "failed"
        }
        .into(),
        reason: why.to_string(),
        added: summary.add,
        changed: summary.change,
        destroyed: summary.destroy,
        ms: start.elapsed().as_millis() as u64,
        error,
    };
    (result.map(|_| ()), last)
}

async fn converge(
    t: &Topology,
    why: &str,
    trust: apply::Trust,
    start: Instant,
) -> Result<crate::plan::Summary, ApplyError> {
    let reg = crate::drivers::Registry::builtin();
    match apply::converge_trusting(reg, t, trust, |_| Ok(())).await {
        Ok(plan) if plan.is_empty() => {
            tracing::debug!(topology = %t.name, reason = why, "converged, nothing to do");
            Ok(plan.summary())
        }
        Ok(plan) => {
            for a in &plan.actions {
                let op = match a.op {
                    Op::Create => "create",
                    Op::Update => "update",
                    Op::Delete => "delete",
                    Op::Replace => "replace",
                };
                info!(topology = %t.name, op, object = %a.resource.label(), "applied");
            }
            let s = plan.summary();
            info!(
                topology = %t.name, reason = why, added = s.add, changed = s.change, destroyed = s.destroy,
                ms = start.elapsed().as_millis() as u64, "converged"
            );
            Ok(s)
        }
        Err(e) => {
            error!(topology = %t.name, reason = why, "{e}");
            Err(e)
        }
    }
}
