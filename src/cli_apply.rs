//! `cnm apply`, `cnm destroy` and `cnm watch`: commands that change the
//! kernel.

use crate::cli_common::{
    color, explain, label, load_for, load_source, out, require_privileges, Source,
};
use anyhow::{Context, Result};
use cnm::apply;
use cnm::store::Store;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `cnm apply FILE` (or `--topology NAME`, or a saved PLANFILE): print the
/// plan, execute it, verify.
pub async fn apply(
    src: &Source,
    output: crate::PlanFormat,
    host: Option<&str>,
    trust: apply::Trust,
) -> Result<ExitCode> {
    if let Source::File(f) = src {
        if let Some(saved) = saved_plan(f)? {
            return apply_saved(f, &saved, output).await;
        }
    }
    let t = load_source(src, host)?;
    require_privileges()?;
    warn_if_watched(&t.name);
    crate::cli_common::note_trust(&t, &trust);
    let shown = label(src);
    let engine = &apply::Engine::default().trusting(trust).on_host(host);
    match src {
        // The record is read again under the lock: a runtime's change
        // between this read and the apply is not undone.
        Source::Record(n) => {
            run_apply(
                output,
                |show| async move { engine.apply_recorded(n, show).await.map(|(p, _)| p) },
                &shown,
            )
            .await
        }
        Source::File(_) => {
            run_apply(
                output,
                |show| async move { engine.apply(&t, show).await },
                &shown,
            )
            .await
        }
    }
}

/// A plan file (`cnm plan --out`) at `path`, or `None` for anything else
/// (a topology file).
fn saved_plan(path: &Path) -> Result<Option<apply::saved::SavedPlan>> {
    if path.as_os_str() == "-" || !path.is_file() {
        return Ok(None);
    }
    let meta = std::fs::metadata(path)?;
    if meta.len() > cnm::spec::MAX_FILE_BYTES * 4 {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match apply::saved::SavedPlan::detect(&bytes) {
        None => Ok(None),
        Some(Ok(p)) => Ok(Some(p)),
        Some(Err(e)) => anyhow::bail!("{}: {e}", path.display()),
    }
}

/// `cnm apply PLANFILE`: exactly the saved plan, or nothing (stale).
async fn apply_saved(
    path: &Path,
    saved: &apply::saved::SavedPlan,
    output: crate::PlanFormat,
) -> Result<ExitCode> {
    require_privileges()?;
    let name = saved
        .plan
        .get("topology")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    warn_if_watched(&name);
    let shown = path.display().to_string();
    let label = shown.clone();
    run_apply(
        output,
        |show| async move {
            apply::saved::converge_saved(&apply::Engine::default(), saved, &label, show).await
        },
        &shown,
    )
    .await
}

/// Print the plan before anything changes (a failure to print it stops the
/// apply there), run `converge`, print how it went.
async fn run_apply<F, Fut>(output: crate::PlanFormat, converge: F, shown: &str) -> Result<ExitCode>
where
    F: FnOnce(Box<dyn FnOnce(&cnm::plan::Plan) -> Result<(), String> + Send>) -> Fut,
    Fut: std::future::Future<Output = Result<cnm::plan::Plan, apply::ApplyError>>,
{
    let start = Instant::now();
    let json = matches!(output, crate::PlanFormat::Json);
    let progress = !json && show_progress(start);
    let shown_text = shown.to_string();
    let plan = converge(Box::new(move |p: &cnm::plan::Plan| {
        crate::cli_common::print_notes(p);
        if json {
            return Ok(());
        }
        out(&p.render_text(&shown_text, color())).map_err(|e| e.to_string())
    }))
    .await;
    if progress {
        cnm::apply::progress::set(None);
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
    let plan = plan.map_err(explain)?;
    if json {
        let mut v: serde_json::Value = serde_json::from_str(&plan.to_json())?;
        v["result"] = if plan.is_empty() {
            "no changes"
        } else {
            "applied"
        }
        .into();
        v["ms"] = (start.elapsed().as_millis() as u64).into();
        out(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !plan.is_empty() {
        let s = plan.summary();
        out(&format!(
            "\nApply complete! Resources: {} added, {} changed, {} destroyed ({} ms).\n",
            s.add,
            s.change,
            s.destroy,
            start.elapsed().as_millis()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// On a terminal, an apply that takes longer than a moment (a second, or
/// `CNM_PROGRESS_AFTER_MS`) says on standard error which step it is at,
/// on one line rewritten in place and cleared at the end. Returns whether
/// it will.
fn show_progress(start: Instant) -> bool {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return false;
    }
    let after = std::env::var("CNM_PROGRESS_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis);
    cnm::apply::progress::set(Some(Box::new(move |s| {
        if start.elapsed() < after {
            return;
        }
        let mut label = s.label.to_string();
        if label.chars().count() > 50 {
            label = label.chars().take(49).chain(['…']).collect();
        }
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[Kapplying: {}/{} actions done, now {label} ({:.1} s)",
            s.done,
            s.total,
            start.elapsed().as_secs_f64()
        );
    })));
    true
}

/// `cnm destroy FILE` or `cnm destroy --topology NAME`: remove everything
/// the topology owns.
pub async fn destroy(
    file: Option<PathBuf>,
    topology: Option<String>,
    host: Option<&str>,
    forget_unreachable: bool,
) -> Result<ExitCode> {
    let by_name = topology.is_some();
    let (name, label) = match (file, topology) {
        (Some(f), _) => (load_for(&f, host)?.name, f.display().to_string()),
        (None, Some(n)) => (n.clone(), n),
        (None, None) => anyhow::bail!("give a topology file or --topology NAME"),
    };
    // The name becomes part of paths: checked before anything else.
    let store = Store::system().topology(&name).context("--topology")?;
    require_privileges()?;
    if by_name && !applied_here(store).await? {
        // A typo, like `show --topology`: an error, and nothing written
        // (not even the lock).
        anyhow::bail!(
            "--topology {name}: no topology of that name is applied on this host{}",
            crate::cli_common::known_topologies()
        );
    }
    warn_if_watched(&name);
    let engine = apply::Engine::default().forgetting_unreachable(forget_unreachable);
    let plan = engine
        .destroy(&name, &label, |p| {
            out(&p.render_text(&label, color())).map_err(|e| e.to_string())
        })
        .await
        .map_err(explain)?;
    if !plan.is_empty() {
        out(&format!(
            "\nDestroy complete! Resources: {} destroyed.\n",
            plan.summary().destroy
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether topology `store` has records, or objects in the kernel that
/// carry its mark (records lost); looked at without writing anything.
async fn applied_here(store: cnm::store::TopologyStore) -> Result<bool> {
    if store.exists()? {
        return Ok(true);
    }
    let (obs, _) = cnm::observe::observe(&store.reading_only(), &Default::default()).await?;
    Ok(!obs.state.owns_nothing())
}

/// `cnm watch FILE` (or `--topology NAME`): apply, then keep applying
/// until SIGINT or SIGTERM.
pub async fn watch(src: Source, resync: Duration, host: Option<String>) -> Result<ExitCode> {
    // A wrong --host (or an unknown topology) is an error now, not a log
    // line forever after.
    load_source(&src, host.as_deref())?;
    require_privileges()?;
    let opts = cnm::watch::Options {
        host,
        resync,
        debounce: Duration::from_millis(50),
    };
    cnm::watch::run(src, opts).await?;
    Ok(ExitCode::SUCCESS)
}

/// A manual apply or destroy of a topology a `cnm watch` keeps: it works
/// (the lock serializes them), but the watcher will converge it back.
fn warn_if_watched(name: &str) {
    let watcher =
        cnm::watch::claim::holder(&Store::system(), name).filter(|w| w.pid != std::process::id());
    if let Some(w) = watcher {
        let _ = writeln!(
            std::io::stderr(),
            "cnm: warning: topology {name} is kept by cnm watch (pid {}) from {}; it will converge it back to that file",
            w.pid,
            w.file
        );
    }
}
