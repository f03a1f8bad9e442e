//! `cnm show`: the observed state of what cnm owns, as topologies.

use crate::cli_common::{out, require_privileges};
use crate::ShowFormat;
use anyhow::{Context, Result};
use cnm::observe;
use cnm::store::Store;
use std::process::ExitCode;

/// `cnm show [--topology NAME]`: one topology, or every recorded one.
pub async fn show(topology: Option<String>, output: ShowFormat) -> Result<ExitCode> {
    let one = topology.is_some();
    let names = match topology {
        Some(n) => {
            Store::system().topology(&n).context("--topology")?;
            vec![n]
        }
        None => Store::system().topologies()?,
    };
    require_privileges()?;
    let mut shown = Vec::new();
    for n in names {
        let store = Store::system().topology(&n)?;
        let applied = store.applied()?;
        let (obs, _) = observe::observe(&store, &Default::default()).await?;
        if one && applied.is_none() && obs.state.owns_nothing() {
            anyhow::bail!("--topology {n}: no topology of that name is applied on this host");
        }
        shown.push(cnm::show::show(&n, &obs, applied.as_ref()));
    }
    match output {
        // One topology: one object, which `plan` reads back.
        ShowFormat::Json if one => out(&format!("{}\n", serde_json::to_string_pretty(&shown[0])?))?,
        ShowFormat::Json => out(&format!("{}\n", serde_json::to_string_pretty(&shown)?))?,
        ShowFormat::Yaml => {
            for (i, t) in shown.iter().enumerate() {
                if i > 0 {
                    out("---\n")?;
                }
                out(&serde_saphyr::to_string(t).context("cannot render YAML")?)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cnm show PLANFILE`: a saved plan, for review: where and when it was
/// made, then the plan as `cnm plan` printed it (`-o json`: the whole
/// plan file).
pub fn show_plan(path: &std::path::Path, output: ShowFormat) -> Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let saved = match cnm::apply::saved::SavedPlan::detect(&bytes) {
        Some(Ok(p)) => p,
        Some(Err(e)) => anyhow::bail!("{}: {e}", path.display()),
        None => anyhow::bail!(
            "{} is not a plan file (cnm plan --out writes them); for a topology, see cnm show --topology NAME",
            path.display()
        ),
    };
    if matches!(output, ShowFormat::Json) {
        out(&format!("{}\n", serde_json::to_string_pretty(&saved)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let when = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(saved.created),
    );
    let from = saved
        .source
        .clone()
        .unwrap_or_else(|| "a topology's record".into());
    let host = saved
        .host
        .as_deref()
        .map(|h| format!(", host {h}"))
        .unwrap_or_default();
    out(&format!(
        "Saved plan {} (cnm {}), planned at {when} from {from}{host}.\ncnm apply {} runs exactly this, or refuses it as stale if the host has changed since.\n\n{}",
        path.display(),
        saved.cnm_version,
        path.display(),
        saved.text
    ))?;
    Ok(ExitCode::SUCCESS)
}
