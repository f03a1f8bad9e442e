//! `cnm validate` and `cnm plan`: commands that change nothing.

use crate::cli_common::{color, explain, load, load_for, out, require_privileges};
use crate::PlanFormat;
use anyhow::Result;
use cnm::apply;
use std::path::Path;
use std::process::ExitCode;

/// `cnm validate FILE`: parse and check, no kernel access.
pub fn validate(file: &Path) -> Result<ExitCode> {
    let t = load(file)?;
    out(&format!(
        "{} is valid: topology {}, {} network(s), {} sandbox(es), {} endpoint(s).\n",
        file.display(),
        t.name,
        t.networks.len(),
        t.sandboxes.len(),
        t.endpoints.len()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `cnm plan FILE`: print what apply would change; with
/// `--detailed-exitcode`, exit 2 when changes are pending.
pub async fn plan(
    file: &Path,
    detailed_exitcode: bool,
    output: PlanFormat,
    host: Option<&str>,
    trust: apply::Trust,
) -> Result<ExitCode> {
    let t = load_for(file, host)?;
    require_privileges()?;
    crate::cli_common::note_trust(&t, &trust);
    let plan = apply::plan_trusting(cnm::drivers::Registry::builtin(), &t, trust)
        .await
        .map_err(explain)?
        .plan;
    match output {
        PlanFormat::Text => out(&plan.render_text(&file.display().to_string(), color()))?,
        PlanFormat::Json => out(&format!("{}\n", plan.to_json()))?,
    }
    Ok(if detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
