//! `cnm resolver`: one process serves every sandbox of every topology.
//!
//! It holds `/run/cnm/resolver/lock` (one per host), records its identity,
//! loads every topology's configuration and, for each sandbox, binds
//! 127.0.0.11 at the sandbox's port (UDP and TCP; its `cnm-dns` table sends
//! port 53 there) inside the sandbox's namespace from a thread
//! that entered it, then serves those sockets (`listen`: UDP in bursts,
//! TCP per connection; `answer`: the reply to one query). SIGHUP reloads: sandboxes whose namespace is unchanged keep
//! their sockets and get the new names in place (no query is dropped);
//! new or recreated namespaces get sockets; gone ones are closed. After
//! each load it writes its status, which `apply` waits for. SIGTERM or
//! SIGINT: it stops and forgets its identity.

mod answer;
mod batch;
mod bind;
mod forward;
mod listen;

use super::config::{Config, CONFIG_VERSION};
use super::lookup::{SandboxView, TopologyNames};
use crate::store::{Bound, ResolverIdentity, ResolverStatus, ResolverStore, Store, RECORD_VERSION};
use listen::{Shared, Slot};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Io(String),
}

/// Run the resolver until SIGTERM or SIGINT. `wait`: when another one
/// holds the lock, wait for it to go (a service manager's restart)
/// instead of leaving at once.
pub fn run(wait: bool) -> Result<(), ServeError> {
    use nix::fcntl::{Flock, FlockArg};
    let store = Store::system().resolver();
    let file = store.lock_file()?;
    let _lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((file, nix::errno::Errno::EWOULDBLOCK)) if wait => {
            Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| ServeError::Io(format!("cannot lock the resolver: {e}")))?
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            tracing::info!("a resolver already runs on this host");
            return Ok(());
        }
        Err((_, e)) => return Err(ServeError::Io(format!("cannot lock the resolver: {e}"))),
    };
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io(format!("cannot start the runtime: {e}")))?;
    rt.block_on(serve(store))
}

/// Two sockets per sandbox: thousands of sandboxes need more descriptors
/// than the usual soft limit of 1024.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::warn!("cannot raise the open file limit: {e}");
        }
    }
}

struct Served {
    ino: u64,
    /// Where its sockets listen on 127.0.0.11.
    port: u16,
    topology: String,
    slot: Slot,
    /// Its tasks; dropped, they stop and close its sockets.
    _running: listen::Running,
}

async fn serve(store: ResolverStore) -> Result<(), ServeError> {
    let sig = |k| signal(k).map_err(|e| ServeError::Io(format!("cannot handle signals: {e}")));
    // Handlers first: a SIGHUP must never find the default action (exit).
    let mut hup = sig(SignalKind::hangup())?;
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let pid = std::process::id();
    let start = crate::store::start_time(pid)
        .ok_or_else(|| ServeError::Io("cannot read this process's start time".into()))?;
    store.write_identity(&ResolverIdentity {
        version: RECORD_VERSION,
        pid,
        start,
    })?;
    let shared = Shared {
        budget: forward::Budget::new(listen::MAX_IN_FLIGHT_ALL),
        maker: forward::Maker::start(),
    };
    let mut trim = tokio::time::interval(TRIM_EVERY);
    let me = ResolverIdentity {
        version: RECORD_VERSION,
        pid,
        start,
    };
    let mut served: BTreeMap<String, Served> = BTreeMap::new();
    let mut reloads = 0;
    // A sandbox's namespace deleted: close its sockets now, so the kernel
    // can tear it down (apply waits for that) before the next reload.
    let (names_tx, mut names_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let _names = crate::netns::watch_names(move |n| {
        let _ = names_tx.send(n.to_string());
    });
    loop {
        reloads += 1;
        // Its identity again: a cnm that saw an earlier resolver die may
        // have removed the file while this one was starting.
        if store.identity().ok().flatten().as_ref() != Some(&me) {
            if let Err(e) = store.write_identity(&me) {
                tracing::warn!("cannot record the resolver's identity: {e}");
            }
        }
        match reload(&store, &mut served, &shared, &me, reloads).await {
            Some(status) => {
                if let Err(e) = store.write_status(&status) {
                    tracing::warn!("cannot write the resolver's status: {e}");
                }
            }
            None => tracing::warn!("reload skipped: what is served stays as it was"),
        }
        let stop = loop {
            tokio::select! {
                _ = hup.recv() => break false,
                _ = term.recv() => break true,
                _ = int.recv() => break true,
                Some(name) = names_rx.recv() => release_if_gone(&mut served, &name),
                _ = trim.tick() => trim_when_quiet(&shared),
            }
        };
        if stop {
            break;
        }
        tracing::info!("reloading");
    }
    // Sockets close with the process; clients retry their query.
    drop(served);
    store.clear_process_of(&me)?;
    tracing::info!("stopped");
    Ok(())
}

/// How often the resolver gives freed memory back when it is quiet.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// After a burst (a flood of forwarded queries that has drained), hand
/// the freed heap pages back to the kernel: glibc keeps them otherwise,
/// and the resolver would stay the size of its worst moment.
fn trim_when_quiet(shared: &Shared) {
    if shared.budget.in_flight() > 64 {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only rearranges the
    // allocator's own free lists; it is safe to call at any time.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Close the sockets of `netns` when the namespace it named is gone (or
/// another took the name). The next reload reports it.
fn release_if_gone(served: &mut BTreeMap<String, Served>, netns: &str) {
    let Some(s) = served.get(netns) else { return };
    if crate::netns::ino_now(netns) != Some(s.ino) {
        served.remove(netns);
        tracing::info!(netns, "namespace gone: its sockets are closed");
    }
}

/// Load every configuration and make the served sandboxes match it. A
/// topology whose configuration cannot be read keeps what it had (and is
/// left out of the status, so its apply sees the failure); `None` when the
/// configurations cannot even be listed: nothing changes.
async fn reload(
    store: &ResolverStore,
    served: &mut BTreeMap<String, Served>,
    shared: &Shared,
    me: &ResolverIdentity,
    reloads: u64,
) -> Option<ResolverStatus> {
    let mut status = ResolverStatus {
        version: RECORD_VERSION,
        pid: me.pid,
        start: me.start,
        reloads,
        ..Default::default()
    };
    let topologies = match store.topologies() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("cannot list the configurations: {e}");
            return None;
        }
    };
    let (mut wanted, kept) = wanted_sandboxes(store, topologies, &mut status);
    // Gone sandboxes first: their sockets close.
    served.retain(|n, s| wanted.contains_key(n) || kept.contains(&s.topology));
    for (n, s) in served.iter().filter(|(_, s)| kept.contains(&s.topology)) {
        status.sandboxes.insert(n.clone(), bound_at(s.ino, s.port));
    }
    let known: BTreeMap<String, (u64, u16)> = served
        .iter()
        .map(|(n, s)| (n.clone(), (s.ino, s.port)))
        .collect();
    let asked: Vec<bind::Wanted> = wanted
        .iter()
        .map(|(n, (_, _, ino, port))| (n.clone(), *ino, *port))
        .collect();
    let bound = match tokio::task::spawn_blocking(move || bind::bind_all(&asked, &known)).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("binding failed: {e}");
            Vec::new()
        }
    };
    for (netns, outcome) in bound {
        let Some((topology, view, _, port)) = wanted.remove(&netns) else {
            continue;
        };
        let bound = settle(served, shared, &netns, outcome, (topology, view, port));
        status.sandboxes.insert(netns, bound);
    }
    tracing::info!(
        sandboxes = served.len(),
        topologies = status.topologies.len(),
        "serving"
    );
    Some(status)
}

/// netns → (topology, view, the inode cnm recorded making it with, port).
type Wanted = BTreeMap<String, (String, SandboxView, Option<u64>, u16)>;

/// The sandboxes every readable configuration asks for, and the topologies
/// whose configuration cannot be read (their sandboxes keep what they had).
fn wanted_sandboxes(
    store: &ResolverStore,
    topologies: Vec<String>,
    status: &mut ResolverStatus,
) -> (Wanted, BTreeSet<String>) {
    let mut wanted: Wanted = BTreeMap::new();
    let mut kept: BTreeSet<String> = BTreeSet::new();
    for topology in topologies {
        match load(store, &topology) {
            Ok((cfg, digest)) => {
                let names = TopologyNames::new(&cfg);
                let made = made_inodes(&topology);
                for (netns, s) in &cfg.sandboxes {
                    let view = SandboxView::new(names.clone(), s);
                    let ino = made.get(netns).copied();
                    wanted.insert(netns.clone(), (topology.clone(), view, ino, s.port));
                }
                status.topologies.insert(topology, digest);
            }
            Err(e) => {
                tracing::warn!("topology {topology}: {e}; its sandboxes keep what they had");
                kept.insert(topology);
            }
        }
    }
    (wanted, kept)
}

/// Serve sandbox `netns` as binding it turned out: the same sockets with
/// the new names, new sockets, or none. What the status says of it.
fn settle(
    served: &mut BTreeMap<String, Served>,
    shared: &Shared,
    netns: &str,
    outcome: bind::Outcome,
    (topology, view, port): (String, SandboxView, u16),
) -> Bound {
    let view = Arc::new(view);
    match outcome {
        bind::Outcome::Same(ino) => {
            if let Some(s) = served.get(netns) {
                match s.slot.write() {
                    Ok(mut v) => *v = view,
                    Err(p) => *p.into_inner() = view,
                }
            }
            bound_at(ino, port)
        }
        bind::Outcome::New(ino, ns, udp, tcp) => {
            served.remove(netns);
            let slot: Slot = Arc::new(RwLock::new(view));
            match listen::start(slot.clone(), ns, shared, udp, tcp) {
                Ok(running) => {
                    let s = Served {
                        ino,
                        port,
                        topology,
                        slot,
                        _running: running,
                    };
                    served.insert(netns.to_string(), s);
                    bound_at(ino, port)
                }
                Err(e) => failed(e.to_string()),
            }
        }
        bind::Outcome::Failed(e) => {
            tracing::warn!("{netns}: {e}");
            served.remove(netns);
            failed(e)
        }
    }
}

/// The namespaces cnm recorded making for `topology`, with their inodes:
/// the resolver binds only in those (a namespace of the same name that is
/// not the one cnm made is not cnm's to listen in).
fn made_inodes(topology: &str) -> BTreeMap<String, u64> {
    let Ok(ts) = Store::system().topology(topology) else {
        return BTreeMap::new();
    };
    ts.namespaces()
        .unwrap_or_default()
        .into_iter()
        .filter(|(sb, r)| r.netns == crate::naming::netns_name(topology, sb))
        .filter_map(|(_, r)| Some((r.netns, r.ino?)))
        .collect()
}

fn bound_at(ino: u64, port: u16) -> Bound {
    Bound {
        ino: Some(ino),
        port: Some(port),
        error: None,
    }
}

fn failed(e: String) -> Bound {
    Bound {
        error: Some(e),
        ..Bound::default()
    }
}

/// One topology's configuration, checked: every name that becomes part of
/// a path passes the identifier check, and each namespace is the one cnm
/// derives for its sandbox (record contents are data, never paths).
fn load(store: &ResolverStore, topology: &str) -> Result<(Config, String), String> {
    let bytes = store
        .config(topology)
        .map_err(|e| e.to_string())?
        .ok_or("its configuration is gone")?;
    let digest = super::control::digest(&bytes);
    let cfg: Config = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if cfg.version != CONFIG_VERSION || cfg.topology != topology {
        return Err(format!(
            "configuration version {} of topology '{}' is not this cnm's",
            cfg.version, cfg.topology
        ));
    }
    for (netns, s) in &cfg.sandboxes {
        crate::store::check_object_name("sandbox", &s.sandbox).map_err(|e| e.to_string())?;
        if *netns != crate::naming::netns_name(topology, &s.sandbox) {
            return Err(format!("namespace '{}' is not cnm's", netns.escape_debug()));
        }
    }
    Ok((cfg, digest))
}
