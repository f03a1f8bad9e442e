//! What the subcommands share: standard output, loading a topology file,
//! the privilege check, and the wording of a failed apply.

use anyhow::{Context, Result};
use cnm::apply::ApplyError;
use cnm::spec::{self, LoadError, Topology};
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

/// Write to standard output. A reader that stops early (`cnm plan | head`)
/// closes the pipe: the rest of the output is dropped quietly, as other
/// Unix tools do, and the command still ends with its own exit code. Any
/// other write error (a full disk) is one clear line and exit 1.
pub fn out(text: &str) -> Result<()> {
    static CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if CLOSED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("cannot write to standard output: {e}")),
    }
}

pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

pub use cnm::watch::Source;

/// The FILE argument or `--topology NAME` (clap requires exactly one).
pub fn source(file: Option<std::path::PathBuf>, topology: Option<String>) -> Result<Source> {
    match (file, topology) {
        (Some(f), _) => Ok(Source::File(f)),
        (None, Some(n)) => {
            // The name becomes part of paths: checked before anything else.
            cnm::store::Store::system()
                .topology(&n)
                .context("--topology")?;
            Ok(Source::Record(n))
        }
        (None, None) => anyhow::bail!("give a topology file or --topology NAME"),
    }
}

/// How plan and apply name the source in their output: the file as given,
/// or `topology NAME (as last applied)`.
pub fn label(src: &Source) -> String {
    match src {
        Source::File(f) => f.display().to_string(),
        Source::Record(n) => format!("topology {n} (as last applied)"),
    }
}

/// Load the source (a file, or a topology's applied record) and pick this
/// machine's host; invalid input prints every located error and exits 1.
pub fn load_source(src: &Source, host: Option<&str>) -> Result<Topology> {
    match src {
        Source::File(f) => load_for(f, host),
        Source::Record(n) => {
            let Some(mut t) = cnm::apply::recorded_topology(n)? else {
                anyhow::bail!(
                    "--topology {n}: no topology of that name is applied on this host{}",
                    known_topologies()
                );
            };
            if host.is_some() {
                t.select_host(host).map_err(|e| anyhow::anyhow!(e))?;
            }
            Ok(t)
        }
    }
}

/// Load a file and pick this machine's host; invalid input prints every
/// located error and exits 1.
pub fn load_for(file: &std::path::Path, host: Option<&str>) -> Result<Topology> {
    let mut t = load(file)?;
    t.select_host(host).map_err(|e| anyhow::anyhow!(e))?;
    Ok(t)
}

/// Load a file; invalid input prints every located error and exits 1.
/// The error keeps the [`LoadError`] (for `-o json`, see [`error_objects`]).
pub fn load(file: &std::path::Path) -> Result<Topology> {
    spec::load(file).map_err(|e| {
        let text = match &e {
            LoadError::Invalid(s) => format!(
                "{s}\n{} problem(s) in {}; nothing was changed",
                s.diagnostics.len(),
                s.file
            ),
            other => other.to_string(),
        };
        anyhow::Error::new(e).context(text)
    })
}

/// Set when the command's output is JSON: errors are then also printed on
/// standard output as JSON objects.
pub static JSON_ERRORS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Version of the error objects `-o json` prints.
pub const ERROR_VERSION: u32 = 1;

/// `-o json` errors: one object per problem, `{error_version, message,
/// file, line, column, key, kind}` (the last five `null` when not known;
/// `key` is the key path of the file's key or value the problem is at,
/// such as `networks.front.subnet`, and `kind` what sort of problem it is,
/// `syntax`, `unknown_key`, `invalid`, `host` or `driver`, as the
/// diagnostic carries them).
pub fn error_objects(e: &anyhow::Error) -> Vec<serde_json::Value> {
    let one = |message: &str,
               file: Option<&str>,
               loc: Option<spec::Loc>,
               key: Option<&str>,
               kind: Option<cnm::errors::ErrorKind>| {
        serde_json::json!({
            "error_version": ERROR_VERSION,
            "message": message,
            "file": file,
            "line": loc.map(|l| l.line),
            "column": loc.map(|l| l.col),
            "key": key,
            "kind": kind.map(|k| k.name()),
        })
    };
    for cause in e.chain() {
        if let Some(LoadError::Invalid(s)) = cause.downcast_ref::<LoadError>() {
            return s
                .diagnostics
                .iter()
                .map(|d| {
                    one(
                        &d.message,
                        Some(&s.file),
                        Some(d.loc),
                        d.key.as_deref(),
                        Some(d.kind),
                    )
                })
                .collect();
        }
        if let Some(ApplyError::Plan(p)) = cause.downcast_ref::<ApplyError>() {
            return vec![one(
                &p.message,
                Some(&p.file),
                p.loc,
                p.key.as_deref(),
                Some(p.kind),
            )];
        }
    }
    vec![one(&e.to_string(), None, None, None, None)]
}

/// Kernel work needs CAP_NET_ADMIN (and CAP_SYS_ADMIN to enter namespaces).
pub fn require_privileges() -> Result<()> {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_NET_ADMIN: u32 = 12;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if eff & (1 << CAP_NET_ADMIN) == 0 || eff & (1 << CAP_SYS_ADMIN) == 0 {
        anyhow::bail!("this command needs CAP_NET_ADMIN and CAP_SYS_ADMIN; run it as root");
    }
    Ok(())
}

/// A failed apply leaves a state the next apply converges from; say so.
/// The error keeps the [`ApplyError`] (for `-o json`).
pub fn explain(e: ApplyError) -> anyhow::Error {
    let text = if matches!(e, ApplyError::Unreleased { .. }) {
        // It says what was done and what to do.
        e.to_string()
    } else if e.before_changes() {
        // Refused while planning: nothing was executed.
        format!("{e}\nnothing was changed")
    } else {
        format!(
            "{e}\napply stopped; run `cnm plan` to see what is left and `cnm apply` again to converge"
        )
    };
    anyhow::Error::new(e).context(text)
}

/// With `--trust-unchanged`, say on stderr how many sandboxes the plan
/// leaves unread, so a plan that shows nothing is not read as "checked".
pub fn note_trust(t: &cnm::spec::Topology, trust: &cnm::apply::Trust) {
    if !matches!(trust, cnm::apply::Trust::Unchanged) {
        return;
    }
    let Ok(store) = cnm::store::Store::system().topology(&t.name) else {
        return;
    };
    let n = cnm::apply::trust::unchanged_since_applied(t, &store, false).len();
    if n > 0 {
        use std::io::Write as _;
        // A closed stderr is no reason to stop.
        let _ = writeln!(
            std::io::stderr(),
            "note: {n} sandbox(es) unchanged since the last apply are trusted, not read (--trust-unchanged): drift inside them is not shown"
        );
    }
}

/// A plan's notes (warnings about the host, what cnm leaves alone), one
/// line each on standard error, before anything changes.
pub fn print_notes(plan: &cnm::plan::Plan) {
    use std::io::Write as _;
    for n in &plan.notes {
        // A closed stderr is no reason to stop.
        let _ = writeln!(std::io::stderr(), "cnm: {n}");
    }
}

/// `" (applied: a, b)"`, or nothing when none is: for "no such topology".
pub fn known_topologies() -> String {
    match cnm::store::Store::system().topologies() {
        Ok(names) if !names.is_empty() => format!(" (applied: {})", names.join(", ")),
        _ => String::new(),
    }
}

pub fn report(r: Result<ExitCode>) -> ExitCode {
    match r {
        Ok(code) => code,
        Err(e) => {
            if JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed) {
                let lines: String = error_objects(&e).iter().map(|o| format!("{o}\n")).collect();
                let _ = out(&lines);
            }
            // Library errors already quote their cause; add only what is new.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            let _ = writeln!(std::io::stderr(), "cnm: {msg}");
            ExitCode::from(1)
        }
    }
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // hickory logs every query at info: only its warnings are news.
    let default = format!("{default},hickory_server=warn,hickory_proto=warn");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal, never with NO_COLOR (SPEC §4).
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
