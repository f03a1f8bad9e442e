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
