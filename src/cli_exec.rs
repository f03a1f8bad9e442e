//! `cnm exec SANDBOX -- CMD`: what `ip netns exec` does, in process. Runs
//! before any thread exists, because `unshare(CLONE_NEWNS)` refuses
//! multi-threaded callers.

use anyhow::{bail, Context, Result};
use cnm::naming::ETC_NETNS_DIR;
use cnm::{netns, observe};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::ffi::CString;
use std::process::ExitCode;

pub fn exec(sandbox: &str, topology: Option<&str>, command: &[String]) -> Result<ExitCode> {
    let topologies = match topology {
        Some(t) => vec![t.to_string()],
        None => observe::recorded_topologies(),
    };
    let found: Vec<(String, String)> = topologies
        .iter()
        .filter_map(|t| {
            observe::sandbox_records(t)
                .get(sandbox)
                .map(|ns| (t.clone(), ns.clone()))
        })
        .collect();
    let netns_name = match found.as_slice() {
        [(_, ns)] => ns.clone(),
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
    let ns = netns::open(&netns_name).with_context(|| {
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
    let dir = format!("{ETC_NETNS_DIR}/{netns_name}");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let target = std::path::Path::new("/etc").join(e.file_name());
            if target.exists() {
                mount(
                    Some(&e.path()),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .with_context(|| {
                    format!(
                        "cannot bind {} over {}",
                        e.path().display(),
                        target.display()
                    )
                })?;
            }
        }
    }
    netns::enter(&ns).context("cannot enter the sandbox namespace")?;

    let args: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .context("argument contains a NUL byte")?;
    let err = nix::unistd::execvp(&args[0], &args).unwrap_err();
    bail!("cannot run {}: {err}", command[0])
}
