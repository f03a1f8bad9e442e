//! `cnm watch`: keep the kernel equal to a file (or to a topology's record,
//! `--topology`). Applies on start, then again when the file changes (at
//! once, once its writer closed it), when the kernel drifts (netlink events
//! on owned objects) and on a periodic full resync (for what events cannot
//! show: edited files, flushed tables). An invalid file is logged and
//! ignored: the last good topology stays the one enforced.

mod checks;
pub mod claim;
mod file;
mod kernel;
mod nft;
mod pace;
mod reason;
mod reconcile;
mod source;
pub mod status;

pub use source::Source;

use crate::apply::{self, ApplyError};
use crate::spec::file::FileTopology;
use crate::spec::Topology;
use crate::store::Store;
use claim::Claim;
use pace::{next_backoff, release_memory};
use reason::Reason;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Why a reconcile runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The topology file (or record) changed.
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
    #[error("{0}")]
    NoTopology(String),
}

/// Watch `source` until SIGINT or SIGTERM.
pub async fn run(source: Source, opts: Options) -> Result<(), WatchError> {
    let mut w = Watch::new(source, opts)?;
    w.run().await
}

/// The next round: whether to load the source again, and why it runs.
struct Round {
    reload: bool,
    why: Reason,
}

/// A watcher's state between rounds.
struct Watch {
    source: Source,
    opts: Options,
    rx: mpsc::UnboundedReceiver<Trigger>,
    /// Kept alive for the file's notifications (none for a record).
    _file: Option<notify::RecommendedWatcher>,
    monitors: kernel::Monitors,
    sigterm: Signal,
    sigint: Signal,
    /// The claim on the topology, released when dropped.
    held: Option<Claim>,
    /// The topology enforced, and the form it was loaded in (a reload
    /// that finds the same one applies nothing).
    topology: Option<Topology>,
    loaded: Option<FileTopology>,
    /// A record's file as last loaded (`--topology`).
    record_seen: Option<crate::safe::Entry>,
    report: status::WatchStatus,
    backoff: Option<Duration>,
    raced: u32,
    /// What the last desired state left to reuse (an edit recomputes only
    /// what it touches).
    memo: std::sync::Arc<std::sync::Mutex<crate::desired::Incremental>>,
}

impl Watch {
    fn new(source: Source, opts: Options) -> Result<Watch, WatchError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let file = match &source {
            Source::File(p) => Some(file::watch(p, tx.clone())?),
            Source::Record(_) => None,
        };
        let sig = |k| signal(k).map_err(WatchError::Signal);
        Ok(Watch {
            report: status::WatchStatus {
                version: crate::store::RECORD_VERSION,
                pid: std::process::id(),
                file: source.shown(),
                started: status::now(),
                applies: 0,
                last: None,
            },
            source,
            opts,
            rx,
            _file: file,
            monitors: kernel::Monitors::new(tx),
            sigterm: sig(SignalKind::terminate())?,
            sigint: sig(SignalKind::interrupt())?,
            held: None,
            topology: None,
            loaded: None,
            record_seen: None,
            backoff: None,
            raced: 0,
            memo: Default::default(),
        })
    }

    async fn run(&mut self) -> Result<(), WatchError> {
        let mut round = Round {
            reload: true,
            why: Reason::Start,
        };
        loop {
            let changed = !round.reload || self.reload().await?;
            if changed || round.why != Reason::FileChanged {
                if let Some(next) = self.reconcile_round(&round.why).await {
                    round = next;
                    continue;
                }
            }
            match self.wait().await {
                Some(next) => round = next,
                None => break,
            }
        }
        info!("stopping; the network stays as it is");
        Ok(())
    }

    /// Load the source again and take its topology; the last valid one
    /// stays enforced when that fails (an error only when there is none
    /// yet). Returns whether the topology changed.
    async fn reload(&mut self) -> Result<bool, WatchError> {
        if let Source::Record(n) = &self.source {
            let store = Store::system().topology(n).ok();
            self.record_seen = store.and_then(|s| s.applied_stamp().ok().flatten());
            // Its runtime removed it (a CNI network's last DEL): nothing to
            // keep until it is applied again.
            if self.record_seen.is_none() && self.report.applies > 0 {
                if self.topology.take().is_some() {
                    self.loaded = None;
                    info!("topology {n} has no record now; waiting for it to be applied again");
                }
                return Ok(false);
            }
        }
        let Some(t) = self.source.load(self.opts.host.as_deref()) else {
            if self.topology.is_none() {
                if let Source::Record(n) = &self.source {
                    return Err(WatchError::NoTopology(format!(
                        "--topology {n}: no topology of that name is applied on this host"
                    )));
                }
            }
            return Ok(false);
        };
        let form = FileTopology::from_spec(&t);
        if self.loaded.as_ref() == Some(&form) && self.topology.is_some() {
            return Ok(false);
        }
        match source::hold(&t.name, &self.source, &mut self.held).await {
            Ok(()) => {
                self.topology = Some(t);
                self.loaded = Some(form);
                Ok(true)
            }
            Err(e) if self.topology.is_none() => Err(e),
            Err(e) => {
                error!("{e}; the last valid topology stays applied");
                Ok(false)
            }
        }
    }

    /// One reconcile and what follows at once: `Some` round when it must
    /// run again without waiting (drift raced the repair, events came in
    /// meanwhile).
    async fn reconcile_round(&mut self, why: &Reason) -> Option<Round> {
        // Namespaces and files that sent no event since they were last
        // read need not be read again; a resync and the round after a
        // failure read everything.
        let quiet = self.monitors.take_quiet();
        let read_all = why.reads_all() || self.backoff.is_some() || self.raced > 0;
        let trust = if read_all {
            apply::Trust::Nothing
        } else {
            apply::Trust::UnchangedAmong(quiet)
        };
        let result = self.reconcile(why, trust).await;
        // Something changed again while the apply verified its work (drift
        // racing the repair): plan again at once, a few times, before
        // backing off.
        if matches!(result, Err(ApplyError::NotConverged(_))) && self.raced < 3 {
            self.raced += 1;
            return Some(Round {
                reload: false,
                why: Reason::RacedApply,
            });
        }
        self.raced = 0;
        self.backoff = next_backoff(self.backoff, result.is_err());
        if let Some(t) = &self.topology {
            self.monitors.refresh(&t.name).await;
        }
        release_memory();
        // Events that arrived meanwhile are mostly echoes of our own changes,
        // but a real drift may hide among them: look again (a no-op plan is
        // cheap and changes nothing, so this settles).
        let backing_off = self.backoff.is_some();
        drain(&mut self.rx)
            .filter(|t| *t == Trigger::File || !backing_off)
            .map(round_of)
    }

    /// Apply the enforced topology, and tell how it went.
    async fn reconcile(&mut self, why: &Reason, trust: apply::Trust) -> Result<(), ApplyError> {
        let Some(t) = &self.topology else {
            return Ok(());
        };
        let record = match &self.source {
            Source::Record(n) => Some((n.as_str(), self.opts.host.as_deref())),
            Source::File(_) => None,
        };
        let (result, last) = reconcile::reconcile(t, record, why, trust, self.memo.clone()).await;
        self.report.applies += 1;
        if self.report.last.is_none() {
            status::notify("READY=1");
        }
        status::notify(&format!("STATUS={}", last.line()));
        self.report.last = Some(last);
        if let Err(e) = status::record(&Store::system(), &t.name, &self.report) {
            warn!("cannot record the watcher's status: {e}");
        }
        // A record read under the lock is the topology enforced now.
        result.map(|applied| {
            if let Some(t) = applied {
                self.loaded = Some(FileTopology::from_spec(&t));
                self.topology = Some(t);
            }
        })
    }

    /// Wait for the next reason to reconcile; `None` on SIGTERM or SIGINT.
    async fn wait(&mut self) -> Option<Round> {
        let quiet = self.backoff.unwrap_or(self.opts.resync);
        let deadline = Instant::now() + quiet;
        let t = self.topology.as_ref();
        let record = match &self.source {
            Source::Record(n) => Some(n.as_str()),
            Source::File(_) => None,
        };
        let trig = tokio::select! {
            _ = self.sigterm.recv() => return None,
            _ = self.sigint.recv() => return None,
            _ = tokio::time::sleep(quiet) => None,
            t = self.rx.recv() => t,
            _ = checks::resolver_gone(t) => {
                Some(Trigger::Kernel("the resolver is not running".into()))
            }
            sandbox = checks::borrowed_moved(t) => {
                Some(Trigger::Kernel(format!("the namespace sandbox {sandbox} borrows is another one")))
            }
            _ = record_changed(record, self.record_seen) => Some(Trigger::File),
        };
        let backing_off = self.backoff.is_some();
        Some(match trig {
            None => Round {
                reload: backing_off,
                why: if backing_off {
                    Reason::Retry
                } else {
                    Reason::Resync
                },
            },
            Some(first) => {
                gather(
                    &mut self.rx,
                    first,
                    self.opts.debounce,
                    backing_off,
                    deadline,
                )
                .await
            }
        })
    }
}

/// For `--topology`: resolves when the record changed; never for a file.
async fn record_changed(name: Option<&str>, seen: Option<crate::safe::Entry>) {
    match name {
        Some(n) => checks::record_moved(n, seen).await,
        None => std::future::pending().await,
    }
}

/// The round a trigger starts.
fn round_of(trig: Trigger) -> Round {
    match trig {
        Trigger::File => Round {
            reload: true,
            why: Reason::FileChanged,
        },
        Trigger::Kernel(w) => Round {
            reload: false,
            why: Reason::Kernel(w),
        },
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
) -> Round {
    if first != Trigger::File {
        tokio::time::sleep(debounce).await;
    }
    let mut round = round_of(first);
    while let Ok(t) = rx.try_recv() {
        if t == Trigger::File {
            round = round_of(t);
        }
    }
    // A failing repair waits out its backoff unless the file changed.
    if !round.reload && backing_off {
        tokio::time::sleep_until(deadline.into()).await;
    }
    round
}

#[cfg(test)]
mod tests;
