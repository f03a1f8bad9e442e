//! The resolver's process: found, spawned, signalled and stopped by its
//! recorded identity (pid and start time), never by a pid alone.

use super::*;

pub(super) fn current_ino(netns: &str) -> Option<u64> {
    let f = crate::netns::open(netns).ok()??;
    crate::netns::id_of(&f).ok()
}

/// Signal the process `id` names, only while it is that process.
pub(super) fn signal(id: &ResolverIdentity, sig: nix::sys::signal::Signal) {
    if id.alive() {
        if let Ok(pid) = i32::try_from(id.pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }
}

/// SIGTERM, then SIGKILL if it has not gone within 3 s.
pub(super) fn stop(id: &ResolverIdentity) {
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
/// `resolver::orphans`): one resolver per host, whatever was deleted.
pub(super) fn stop_unrecorded() {
    let mut exes = Vec::new();
    exes.extend(resolver_exe().ok());
    exes.extend(current_exe().ok());
    let lock = Store::system().resolver().lock_path();
    for id in crate::resolver::orphans::find(&exes, &lock) {
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
pub(super) fn resolver_exe() -> Result<std::path::PathBuf, ControlError> {
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
pub(super) fn spawn(store: &ResolverStore) -> Result<Arc<AtomicBool>, ControlError> {
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
pub(super) fn cnm_on_path() -> Option<std::path::PathBuf> {
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
pub(super) fn current_exe() -> Result<std::path::PathBuf, ControlError> {
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
pub(super) fn log_tail(store: &ResolverStore) -> String {
    let text = store.log_text();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    if lines.is_empty() {
        return String::new();
    }
    let mut lines = lines;
    lines.reverse();
    format!("; last lines: {}", lines.join(" | "))
}
