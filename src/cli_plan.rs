//! `cnm validate` and `cnm plan`: commands that change nothing (but the
//! plan file `--out` asks for, which is the user's, not cnm's).

use crate::cli_common::{
    color, explain, label, load, load_source, out, require_privileges, Source,
};
use crate::PlanFormat;
use anyhow::{Context, Result};
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

/// What `cnm plan` was asked for besides its source.
pub struct PlanOptions<'a> {
    pub detailed_exitcode: bool,
    pub output: PlanFormat,
    pub host: Option<&'a str>,
    pub trust: apply::Trust,
    /// `--out PLANFILE`: save the plan there.
    pub out: Option<&'a Path>,
}

/// `cnm plan FILE` (or `--topology NAME`): print what apply would change;
/// with `--detailed-exitcode`, exit 2 when changes are pending.
pub async fn plan(src: &Source, o: PlanOptions<'_>) -> Result<ExitCode> {
    let t = load_source(src, o.host)?;
    require_privileges()?;
    if o.out.is_some() && matches!(o.trust, apply::Trust::Unchanged) {
        anyhow::bail!("--out and --trust-unchanged do not go together: a saved plan is checked against everything it was computed from");
    }
    crate::cli_common::note_trust(&t, &o.trust);
    let shown = label(src);
    let planned = apply::Engine::default()
        .trusting(o.trust)
        .plan(&t)
        .await
        .map_err(explain)?;
    if let Some(path) = o.out {
        let file = match src {
            Source::File(f) => Some(f.display().to_string()),
            Source::Record(_) => None,
        };
        let saved = apply::saved::SavedPlan::of(&t, &planned, &shown, file);
        let text = serde_json::to_string_pretty(&saved)? + "\n";
        write_plan_file(path, text.as_bytes())
            .with_context(|| format!("cannot write the plan to {}", path.display()))?;
    }
    let plan = planned.plan;
    crate::cli_common::print_notes(&plan);
    match o.output {
        PlanFormat::Text => {
            out(&plan.render_text(&shown, color()))?;
            if let Some(path) = o.out {
                out(&format!(
                    "\nSaved the plan to {p}. To run exactly it: cnm apply {p}\n",
                    p = path.display()
                ))?;
            }
        }
        PlanFormat::Json => out(&format!("{}\n", plan.to_json()))?,
    }
    Ok(if o.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Write the user's plan file: a new file beside it (O_EXCL, not following
/// a link, mode 0644 whatever the umask), synced, renamed over `path`
/// (a link at `path` is replaced, not followed). The user chose the path:
/// links in its directory are followed, as by any tool's output option.
fn write_plan_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the plan file's path names no file"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        cnm::safe::random_hex(8)
    ));
    let fd = rustix::fs::open(
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let written = (|| {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o644))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(data)?;
        f.sync_all()?;
        rustix::fs::rename(&tmp, path).map_err(std::io::Error::from)
    })();
    if written.is_err() {
        let _ = rustix::fs::unlink(&tmp);
    }
    written
}
