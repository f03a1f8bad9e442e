//! `cnm exec SANDBOX -- CMD`: what `ip netns exec` does, in process. Runs
//! before any thread exists, because `unshare(CLONE_NEWNS)` refuses
//! multi-threaded callers.

use anyhow::{bail, Context, Result};
use cnm::drivers::Registry;
use cnm::naming::ETC_NETNS_DIR;
use cnm::netns;
use cnm::safe::{Dir, Kind};
use cnm::spec::file::FileTopology;
use cnm::store::{check_object_name, Store};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::ExitCode;

pub fn exec(sandbox: &str, topology: Option<&str>, command: &[String]) -> Result<ExitCode> {
    check_object_name("sandbox name", sandbox)?;
    let store = Store::system();
    let topologies = match topology {
        Some(t) => {
            store.topology(t).context("--topology")?;
            vec![t.to_string()]
        }
        // Recorded topologies, and those whose namespaces are there even
        // if their records are gone (`<topology>-<sandbox>`).
        None => {
            let mut all = store.topologies()?;
            let suffix = format!("-{sandbox}");
            for n in netns::list()? {
                if let Some(t) = n.strip_suffix(&suffix) {
                    if store.topology(t).is_ok() && !all.iter().any(|a| a == t) {
                        all.push(t.to_string());
                    }
                }
            }
            all
        }
    };
    let mut found: Vec<(String, Option<String>)> = Vec::new();
    for t in &topologies {
        let ns = cnm::naming::netns_name(t, sandbox);
        if netns::open(&ns).ok().flatten().is_some() {
            found.push((t.clone(), Some(ns)));
        } else if on_host_stack(&store, t, sandbox) {
            found.push((t.clone(), None));
        }
    }
    let netns_name = match found.as_slice() {
        [(_, Some(ns))] => ns.clone(),
        // A sandbox sharing the host's stack: the command runs right here.
        [(_, None)] => return run(command),
        [] => bail!(
            "no sandbox named {sandbox} is applied on this host{}",
            topology
                .map(|t| format!(" in topology {t}"))
                .unwrap_or_default()
        ),
        many => bail!(
            "several topologies have a sandbox named {sandbox} ({}); pick one with --topology",
            many.iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let ns = netns::open(&netns_name).ok().flatten().with_context(|| {
        format!("sandbox {sandbox}: namespace {netns_name} is missing; run cnm apply")
    })?;

    // A private mount namespace, so the bind mounts below stay ours.
    unshare(CloneFlags::CLONE_NEWNS).context("cannot create a mount namespace")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("cannot make / a slave mount")?;
    bind_files(&netns_name)?;
    netns::enter(&ns).context("cannot enter the sandbox namespace")?;
    run(command)
}

fn run(command: &[String]) -> Result<ExitCode> {
    let args: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .context("argument contains a NUL byte")?;
    let err = nix::unistd::execvp(&args[0], &args).unwrap_err();
    bail!("cannot run {}: {err}", command[0])
}

/// Whether the last apply of topology `t` put `sandbox` on the host's own
/// stack (joined to a `host` network) on this machine.
fn on_host_stack(store: &Store, t: &str, sandbox: &str) -> bool {
    let Some(rec) = store
        .topology(t)
        .ok()
        .and_then(|s| s.applied().ok().flatten())
    else {
        return false;
    };
    let Ok(file) = serde_json::from_value::<FileTopology>(rec.topology) else {
        return false;
    };
    let here = match (
        &rec.this_host,
        file.sandboxes.get(sandbox).and_then(|s| s.host.as_ref()),
    ) {
        (Some(me), Some(h)) => me == h,
        _ => file.sandboxes.contains_key(sandbox),
    };
    here && file.endpoints.values().any(|e| {
        e.sandbox == sandbox
            && file
                .networks
                .get(&e.network)
                .and_then(|n| Registry::builtin().get(n.driver.as_deref()?))
                .is_some_and(|d| d.caps().host_stack)
    })
}

/// Bind each regular file of /etc/netns/<netns>/ over its /etc namesake, as
/// `ip netns exec` does. Opened without following links: a link planted
/// there is skipped, never bound.
fn bind_files(netns_name: &str) -> Result<()> {
    let Some(etc) = Dir::open(Path::new(ETC_NETNS_DIR))? else {
        return Ok(());
    };
    let Some(dir) = etc.subdir(netns_name)? else {
        return Ok(());
    };
    for name in dir.list()? {
        if dir.stat(&name)?.map(|e| e.kind) != Some(Kind::File) {
            continue;
        }
        let target = Path::new("/etc").join(&name);
        if !target.exists() {
            continue;
        }
        let Some((file, _)) = dir.open_file(&name)? else {
            continue;
        };
        let source = format!("/proc/self/fd/{}", file.as_raw_fd());
        mount(
            Some(source.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| {
            format!(
                "cannot bind {} over {}",
                dir.join(&name).display(),
                target.display()
            )
        })?;
    }
    Ok(())
}
