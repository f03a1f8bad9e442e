//! The resolver as `apply`, `destroy`, `plan` and `watch` see it: one
//! process per host, started by the first apply that needs it (as netavark
//! starts aardvark-dns), reloaded by SIGHUP when names change, stopped by
//! the destroy of the last topology it serves. Observed as a resource:
//! whether it runs (pid and start time, never a pid alone) and whether it
//! serves this topology's configuration in the namespaces that exist now.

pub use crate::errors::ControlError;
use crate::model::ResolverRes;
use crate::resolver::config::Config;
use crate::store::{ResolverIdentity, ResolverStore, Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod process;
use process::*;

/// How long apply waits for the resolver to serve what it was given
/// (binding in thousands of namespaces takes a moment).
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(5);

/// The configuration's identity, as the resolver reports what it loaded.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The resolver as desired for a configuration: running and serving it.
pub fn desired(topology: &str, cfg: &Config) -> ResolverRes {
    ResolverRes {
        topology: topology.to_string(),
        sandboxes: cfg.sandboxes.len(),
        names: cfg.name_count(),
        config: cfg.to_bytes(),
        running: true,
        current: true,
    }
}

/// The resolver as observed for `topology`: `None` when cnm gave it no
/// configuration for it. `namespaces`: netns → inode, as observed.
pub fn observe(
    topology: &str,
    namespaces: &BTreeMap<String, u64>,
) -> Result<Option<ResolverRes>, StoreError> {
    let store = Store::system().resolver();
    let Some(bytes) = store.config(topology)? else {
        return Ok(None);
    };
    let cfg: Option<Config> = serde_json::from_slice(&bytes).ok();
    let identity = store.identity().ok().flatten().filter(|i| i.alive());
    let current = match (&identity, &cfg) {
        (Some(id), Some(cfg)) => serves(&store, id, None, topology, &digest(&bytes), cfg, |n| {
            namespaces.get(n).copied()
        })
        .is_ok_and(|done| done),
        _ => false,
    };
    Ok(Some(ResolverRes {
        topology: topology.to_string(),
        sandboxes: cfg.as_ref().map_or(0, |c| c.sandboxes.len()),
        names: cfg.as_ref().map_or(0, Config::name_count),
        config: bytes,
        running: identity.is_some(),
        current,
    }))
}

/// Whether the running resolver `id` serves `cfg` (of this digest) in the
/// namespaces `ino_of` names, in a load after `after` (a status from
/// before a reload was asked for proves nothing): `Ok(false)` not yet, an
/// error when it said it cannot.
fn serves(
    store: &ResolverStore,
    id: &ResolverIdentity,
    after: Option<u64>,
    topology: &str,
    digest: &str,
    cfg: &Config,
    ino_of: impl Fn(&str) -> Option<u64>,
) -> Result<bool, String> {
    let Some(st) = store.status().ok().flatten() else {
        return Ok(false);
    };
    if st.pid != id.pid || st.start != id.start || after.is_some_and(|n| st.reloads <= n) {
        return Ok(false);
    }
    if st.topologies.get(topology).map(String::as_str) != Some(digest) {
        return Ok(false);
    }
    for (netns, s) in &cfg.sandboxes {
        let Some(b) = st.sandboxes.get(netns) else {
            return Ok(false);
        };
        if let Some(e) = &b.error {
            return Err(e.clone());
        }
        if b.ino.is_none() || b.ino != ino_of(netns) || b.port.unwrap_or(53) != s.port {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The load count of the status resolver `id` wrote last, if any.
fn reloads_of(store: &ResolverStore, id: &ResolverIdentity) -> Option<u64> {
    store
        .status()
        .ok()
        .flatten()
        .filter(|s| s.pid == id.pid && s.start == id.start)
        .map(|s| s.reloads)
}

/// How long a running resolver gets to confirm a reload (it swaps names
/// in place: milliseconds, even at thousands of sandboxes). One that has
/// not confirmed by then is hung, and replaced.
const RELOAD_PATIENCE: Duration = Duration::from_secs(1);

/// How often a resolver that dies or hangs is replaced within one apply.
const REPLACEMENTS: usize = 3;

/// Why waiting for the resolver ended without it serving.
enum Waited {
    /// It said it cannot serve (a bind failed).
    Failed(String),
    /// The process died, or did not confirm in time: replace it.
    Gone(Option<ResolverIdentity>),
}

/// Give the resolver `topology`'s configuration and wait until it serves
/// it: write it, then reload the running resolver or start one. A
/// resolver that dies while being waited for, or does not confirm a
/// reload within `RELOAD_PATIENCE` (frozen), is killed and replaced by
/// one that loads every topology's configuration.
pub fn ensure(topology: &str, config: &[u8]) -> Result<(), ControlError> {
    let store = Store::system().resolver();
    store.write_config(topology, config)?;
    let cfg: Config = serde_json::from_slice(config)
        .map_err(|e| ControlError::NotServing(format!("cannot read its configuration: {e}")))?;
    let want = Want {
        topology,
        digest: digest(config),
        cfg: &cfg,
    };
    for _ in 0..REPLACEMENTS {
        let (asked, after, patience) = match store.identity()? {
            Some(id) if id.alive() => {
                let after = reloads_of(&store, &id);
                signal(&id, nix::sys::signal::Signal::SIGHUP);
                (Some(id), after, RELOAD_PATIENCE)
            }
            dead => {
                if let Some(id) = dead {
                    store.clear_process_of(&id)?;
                }
                stop_unrecorded();
                (None, None, WAIT)
            }
        };
        let spawned = match asked {
            Some(_) => None,
            None => Some(spawn(&store)?),
        };
        match wait_serving(
            &store,
            asked.as_ref(),
            after,
            &want,
            patience,
            spawned.as_deref(),
        ) {
            Ok(()) => return Ok(()),
            Err(Waited::Failed(e)) => {
                return Err(ControlError::NotServing(format!("cannot serve: {e}")))
            }
            Err(Waited::Gone(id)) => replace(&store, id.as_ref())?,
        }
    }
    Err(ControlError::NotServing(format!(
        "did not load the configuration after {REPLACEMENTS} starts (its log: {}{})",
        store.log_path(),
        log_tail(&store)
    )))
}

/// What a resolver must serve to count.
struct Want<'a> {
    topology: &'a str,
    digest: String,
    cfg: &'a Config,
}

/// Wait until a resolver serves `want` (in a load after `after` when it
/// was `asked` to reload), checking all the while that the process is
/// alive: one that dies, or says nothing within `patience`, is
/// `Waited::Gone`; so is a process just `spawned` that left before any
/// resolver ran (it found the lock still held).
fn wait_serving(
    store: &ResolverStore,
    asked: Option<&ResolverIdentity>,
    after: Option<u64>,
    want: &Want<'_>,
    patience: Duration,
    spawned: Option<&AtomicBool>,
) -> Result<(), Waited> {
    let deadline = Instant::now() + patience;
    loop {
        let current = store.identity().ok().flatten();
        let running = current.as_ref().is_some_and(ResolverIdentity::alive);
        if !running && spawned.is_some_and(|s| s.load(Ordering::Acquire)) {
            tracing::debug!("the resolver started left at once; starting another");
            return Err(Waited::Gone(None));
        }
        // The one signalled is gone, or another took its place.
        if let Some(a) = asked {
            if !a.alive() || current.as_ref() != Some(a) {
                return Err(Waited::Gone(current.filter(ResolverIdentity::alive)));
            }
        }
        if let Some(id) = current.as_ref().filter(|i| i.alive()) {
            let after = if asked == Some(id) { after } else { None };
            match serves(
                store,
                id,
                after,
                want.topology,
                &want.digest,
                want.cfg,
                current_ino,
            ) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(Waited::Failed(e)),
            }
        }
        if Instant::now() > deadline {
            tracing::warn!(
                "the resolver did not load the configuration within {} ms; replacing it",
                patience.as_millis()
            );
            return Err(Waited::Gone(current.or_else(|| asked.cloned())));
        }
        std::thread::sleep(POLL);
    }
}

/// Kill a resolver that died or hung (SIGKILL: a frozen process does not
/// act on SIGTERM) and forget it; the caller starts another.
fn replace(store: &ResolverStore, id: Option<&ResolverIdentity>) -> Result<(), ControlError> {
    if let Some(id) = id {
        signal(id, nix::sys::signal::Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(2);
        while id.alive() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        // Its first thread is a zombie before the others have closed the
        // files they share: the successor needs the lock free.
        lock_released(store, deadline);
        store.clear_process_of(id)?;
    }
    Ok(())
}

/// Wait until no process holds the resolver's lock, or `deadline`.
fn lock_released(store: &ResolverStore, deadline: Instant) {
    use nix::fcntl::{Flock, FlockArg};
    let Ok(mut file) = store.lock_file() else {
        return;
    };
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_released_on_drop) => return,
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(POLL);
            }
            Err(_) => return,
        }
    }
}

/// Take `topology`'s configuration away: the resolver reloads without it,
/// or stops when no topology needs it any more. A resolver that does not
/// confirm the reload within `RELOAD_PATIENCE` is killed, and a new one
/// serves the other topologies: it must not keep the sockets, and so the
/// namespaces, of what is being destroyed.
pub fn remove(topology: &str) -> Result<(), ControlError> {
    let store = Store::system().resolver();
    let running = store.identity()?.filter(ResolverIdentity::alive);
    let others = store.topologies()?.into_iter().any(|t| t != topology);
    if !others {
        // The last one: stop it before its configuration goes, so that a
        // destroy killed in between still finds it here next time.
        if let Some(id) = &running {
            stop(id);
            store.clear_process_of(id)?;
        } else {
            stop_unrecorded();
        }
        store.remove_config(topology)?;
        return Ok(());
    }
    store.remove_config(topology)?;
    let Some(id) = running else {
        return Ok(());
    };
    let after = reloads_of(&store, &id);
    signal(&id, nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + RELOAD_PATIENCE;
    while Instant::now() < deadline && id.alive() {
        let st = store.status().ok().flatten();
        let done = st.is_some_and(|s| {
            s.pid == id.pid
                && after.is_none_or(|n| s.reloads > n)
                && !s.topologies.contains_key(topology)
        });
        if done {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    tracing::warn!(
        "the resolver did not reload within {} ms; replacing it",
        RELOAD_PATIENCE.as_millis()
    );
    replace(&store, Some(&id))?;
    // The other topologies' names are back as soon as a new one binds.
    stop_unrecorded();
    spawn(&store).map(drop)
}

/// After a destroy: when no topology gives the resolver a configuration
/// any more, no resolver of cnm's may run, recorded or not (a destroy
/// whose records were lost planned no resolver to stop).
pub fn stop_if_idle() -> Result<(), ControlError> {
    let store = Store::system().resolver();
    if !store.topologies()?.is_empty() {
        return Ok(());
    }
    if let Some(id) = store.identity()?.filter(ResolverIdentity::alive) {
        stop(&id);
        store.clear_process_of(&id)?;
    }
    stop_unrecorded();
    Ok(())
}

/// A topology whose configuration the resolver has, while no resolver
/// runs: what `watch` restarts at once.
pub fn needs_restart(topology: &str) -> bool {
    let store = Store::system().resolver();
    matches!(store.config(topology), Ok(Some(_)))
        && !store.identity().ok().flatten().is_some_and(|i| i.alive())
}
