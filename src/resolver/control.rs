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

fn current_ino(netns: &str) -> Option<u64> {
    let f = crate::netns::open(netns).ok()??;
    crate::netns::id_of(&f).ok()
}

/// Signal the process `id` names, only while it is that process.
fn signal(id: &ResolverIdentity, sig: nix::sys::signal::Signal) {
    if id.alive() {
        if let Ok(pid) = i32::try_from(id.pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }
}

/// SIGTERM, then SIGKILL if it has not gone within 3 s.
fn stop(id: &ResolverIdentity) {
    use nix::sys::signal::Signal;
    for (sig, wait) in [
        (Signal::SIGTERM, Duration::from_secs(3)),
        (Signal::SIGKILL, Duration::from_secs(2)),
    ] {
        signal(id, sig);
        let deadline = Instant::now() + wait;
        while id.alive() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        if !id.alive() {
            return;
        }
    }
}

/// Stop every resolver of cnm's that runs without a record (see
/// [`super::orphans`]): one resolver per host, whatever was deleted.
fn stop_unrecorded() {
    let mut exes = Vec::new();
    exes.extend(resolver_exe().ok());
    exes.extend(current_exe().ok());
    let lock = Store::system().resolver().lock_path();
    for id in super::orphans::find(&exes, &lock) {
        tracing::warn!(
            pid = id.pid,
            "a resolver of cnm's runs without its record (deleted?); stopping it"
        );
        stop(&id);
    }
}

/// What `cnm resolver` is started from: this very binary when it is `cnm`,
/// else `$CNM_RESOLVER_EXE`, else `cnm` on PATH (a program that embeds
/// cnm's library is not cnm).
fn resolver_exe() -> Result<std::path::PathBuf, ControlError> {
    if let Some(p) = std::env::var_os("CNM_RESOLVER_EXE") {
        return Ok(std::path::PathBuf::from(p));
    }
    let me = current_exe()?;
    if me.file_name().is_some_and(|n| n == "cnm") {
        return Ok(me);
    }
    cnm_on_path().ok_or_else(|| ControlError::Spawn {
        exe: "cnm".into(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the embedded resolver runs as `cnm resolver`: put cnm on PATH or set CNM_RESOLVER_EXE",
        ),
    })
}

/// Start `cnm resolver` from this very binary when it is `cnm` (else
/// `$CNM_RESOLVER_EXE`, else `cnm` on PATH: a program that embeds cnm's
/// library is not cnm), in its own process group
/// (a terminal's Ctrl-C to `cnm watch` must not stop it), its standard
/// error to the log. A thread reaps it should it die while this process
/// lives (watch); otherwise it outlives this process.
/// Start a resolver; the flag says when that process has ended.
fn spawn(store: &ResolverStore) -> Result<Arc<AtomicBool>, ControlError> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let exe = resolver_exe()?;
    let log = store.log_file()?;
    let mut cmd = Command::new(&exe);
    cmd.args(["resolver", "-v"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .process_group(0);
    // Its log level is its own (a RUST_LOG=debug of the apply would log
    // every query into /run): CNM_RESOLVER_LOG, else info.
    let level = std::env::var("CNM_RESOLVER_LOG").unwrap_or_else(|_| "info".into());
    cmd.env("RUST_LOG", format!("{level},hickory_proto=warn"));
    let mut child = cmd.spawn().map_err(|source| ControlError::Spawn {
        exe: exe.display().to_string(),
        source,
    })?;
    let exited = Arc::new(AtomicBool::new(false));
    let flag = exited.clone();
    std::thread::spawn(move || {
        let _ = child.wait();
        flag.store(true, Ordering::Release);
    });
    Ok(exited)
}

/// The first executable `cnm` on PATH.
fn cnm_on_path() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("cnm"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// This binary's path. After a package upgrade replaced it, the kernel
/// shows the old one as `PATH (deleted)`: the new binary is at PATH.
fn current_exe() -> Result<std::path::PathBuf, ControlError> {
    let exe = std::env::current_exe().map_err(|source| ControlError::Spawn {
        exe: "/proc/self/exe".into(),
        source,
    })?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(p) => std::path::PathBuf::from(p),
        None => exe,
    })
}

/// The last lines of the resolver's log, for an error message.
fn log_tail(store: &ResolverStore) -> String {
    let text = store.log_text();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    if lines.is_empty() {
        return String::new();
    }
    let mut lines = lines;
    lines.reverse();
    format!("; last lines: {}", lines.join(" | "))
}
