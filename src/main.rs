//! The `cnm` command line. Thin: parse arguments, call the library, print,
//! choose the exit code (SPEC §4).

mod cli_exec;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use cnm::apply::{self, ApplyError};
use cnm::observe;
use cnm::spec::{self, LoadError, Topology};
use cnm::store::Store;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "cnm",
    version,
    about = "Docker's Container Network Model as a declarative reconciler for Linux"
)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ShowFormat {
    Yaml,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check a topology file; no kernel access.
    Validate { file: PathBuf },
    /// Show what apply would change; changes nothing.
    Plan {
        file: PathBuf,
        /// Exit 0 when converged, 2 when changes are pending, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        #[arg(short, long, value_enum, default_value = "text")]
        output: PlanFormat,
        /// Multi-host files: which of `hosts:` this machine is (default:
        /// the one whose address is on a local interface).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Make the kernel match the file, then verify it does.
    Apply {
        file: PathBuf,
        /// Multi-host files: which of `hosts:` this machine is (default:
        /// the one whose address is on a local interface).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Remove everything a topology owns.
    Destroy {
        /// The topology file (its `name:` says which topology).
        #[arg(required_unless_present = "topology", conflicts_with = "topology")]
        file: Option<PathBuf>,
        /// Destroy by topology name, without the file.
        #[arg(long)]
        topology: Option<String>,
        /// Accepted for symmetry with apply: destroy removes what this
        /// machine holds, whichever host it is.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Print the observed state of what cnm owns, as a topology.
    Show {
        #[arg(long)]
        topology: Option<String>,
        #[arg(short, long, value_enum, default_value = "yaml")]
        output: ShowFormat,
    },
    /// Apply, then re-apply on every file change and on kernel drift, until
    /// SIGINT or SIGTERM (which leave the network in place).
    Watch {
        file: PathBuf,
        /// Full re-plan at least this often (e.g. 30s, 500ms, 2m).
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        resync: std::time::Duration,
        /// Multi-host files: which of `hosts:` this machine is (default:
        /// the one whose address is on a local interface).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Run a command inside a sandbox, with its hosts and resolv.conf.
    Exec {
        sandbox: String,
        /// Which topology, when several have a sandbox of that name.
        #[arg(long)]
        topology: Option<String>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    // Usage errors exit 1: clap's 2 means "changes pending" under
    // `plan --detailed-exitcode`.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // watch runs as a service: its log is its output.
    init_logging(cli.verbose + u8::from(matches!(cli.command, Command::Watch { .. })));
    // exec replaces this process and must run before any thread exists.
    if let Command::Exec {
        sandbox,
        topology,
        command,
    } = &cli.command
    {
        return report(cli_exec::exec(sandbox, topology.as_deref(), command));
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(Err(anyhow::anyhow!("cannot start the runtime: {e}"))),
    };
    report(rt.block_on(run(cli.command)))
}

fn report(r: Result<ExitCode>) -> ExitCode {
    match r {
        Ok(code) => code,
        Err(e) => {
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

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
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

/// Write to standard output. A reader that stops early (`cnm plan | head`)
/// closes the pipe: the rest of the output is dropped quietly, as other
/// Unix tools do, and the command still ends with its own exit code. Any
/// other write error (a full disk) is one clear line and exit 1.
fn out(text: &str) -> Result<()> {
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

fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Load a file and pick this machine's host; invalid input prints every
/// located error and exits 1.
fn load_for(file: &std::path::Path, host: Option<&str>) -> Result<Topology> {
    let mut t = load(file)?;
    t.select_host(host).map_err(|e| anyhow::anyhow!(e))?;
    Ok(t)
}

/// Load a file; invalid input prints every located error and exits 1.
fn load(file: &std::path::Path) -> Result<Topology> {
    spec::load(file).map_err(|e| match e {
        LoadError::Invalid(s) => anyhow::anyhow!(
            "{s}\n{} problem(s) in {}; nothing was changed",
            s.diagnostics.len(),
            s.file
        ),
        other => anyhow::anyhow!(other),
    })
}

/// Kernel work needs CAP_NET_ADMIN (and CAP_SYS_ADMIN to enter namespaces).
fn require_privileges() -> Result<()> {
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

async fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Validate { file } => {
            let t = load(&file)?;
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
        Command::Plan {
            file,
            detailed_exitcode,
            output,
            host,
        } => {
            let t = load_for(&file, host.as_deref())?;
            require_privileges()?;
            let plan = apply::plan(&t).await.map_err(explain)?.plan;
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
        Command::Apply { file, host } => {
            let t = load_for(&file, host.as_deref())?;
            require_privileges()?;
            warn_if_watched(&t.name);
            let start = Instant::now();
            let shown = file.display().to_string();
            // The plan is printed before anything changes; a failure to
            // print it (a full disk) stops the apply there.
            let plan = apply::converge(&t, |p| {
                out(&p.render_text(&shown, color())).map_err(|e| e.to_string())
            })
            .await
            .map_err(explain)?;
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
        Command::Destroy {
            file,
            topology,
            host,
        } => {
            let (name, label) = match (file, topology) {
                (Some(f), _) => (load_for(&f, host.as_deref())?.name, f.display().to_string()),
                (None, Some(n)) => (n.clone(), n),
                (None, None) => anyhow::bail!("give a topology file or --topology NAME"),
            };
            // The name becomes part of paths: checked before anything else.
            Store::system().topology(&name).context("--topology")?;
            require_privileges()?;
            warn_if_watched(&name);
            let plan = apply::destroy(&name, &label, |p| {
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
        Command::Show { topology, output } => {
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
                    anyhow::bail!(
                        "--topology {n}: no topology of that name is applied on this host"
                    );
                }
                shown.push(cnm::show::show(&n, &obs, applied.as_ref()));
            }
            match output {
                // One topology: one object, which `plan` reads back.
                ShowFormat::Json if one => {
                    out(&format!("{}\n", serde_json::to_string_pretty(&shown[0])?))?
                }
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
        Command::Watch { file, resync, host } => {
            // A wrong --host is an error now, not a log line forever after.
            load_for(&file, host.as_deref())?;
            require_privileges()?;
            let opts = cnm::watch::Options {
                host,
                resync,
                debounce: std::time::Duration::from_millis(50),
            };
            cnm::watch::run(file, opts).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// A manual apply or destroy of a topology a `cnm watch` keeps: it works
/// (the lock serializes them), but the watcher will converge it back.
fn warn_if_watched(name: &str) {
    let watcher = Store::system()
        .topology(name)
        .ok()
        .and_then(|s| s.watcher().ok().flatten())
        .filter(|w| w.alive() && w.pid != std::process::id());
    if let Some(w) = watcher {
        let _ = writeln!(
            std::io::stderr(),
            "cnm: warning: topology {name} is kept by cnm watch (pid {}) from {}; it will converge it back to that file",
            w.pid,
            w.file
        );
    }
}

/// A failed apply leaves a state the next apply converges from; say so.
fn explain(e: ApplyError) -> anyhow::Error {
    if e.before_changes() {
        // Refused while planning: nothing was executed.
        return anyhow::anyhow!("{e}\nnothing was changed");
    }
    anyhow::anyhow!(
        "{e}\napply stopped; run `cnm plan` to see what is left and `cnm apply` again to converge"
    )
}
