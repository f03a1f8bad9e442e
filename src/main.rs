//! The `cnm` command line. Thin: parse arguments, call the library, print,
//! choose the exit code (SPEC §4).

mod cli_apply;
mod cli_common;
mod cli_exec;
mod cli_graph;
mod cli_plan;
mod cli_show;
mod cli_status;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Clone, Copy, ValueEnum)]
enum StatusFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Svg,
    Png,
    Mermaid,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check a topology file; no kernel access.
    Validate { file: PathBuf },
    /// Show what apply would change; changes nothing.
    Plan {
        /// The topology file (`-`: standard input).
        #[arg(required_unless_present = "topology", conflicts_with = "topology")]
        file: Option<PathBuf>,
        /// Plan a topology's applied record instead of a file (drift
        /// repair when the file is not at hand).
        #[arg(long, value_name = "NAME")]
        topology: Option<String>,
        /// Save the plan to PLANFILE (JSON, `"cnm_plan": 1`) for `cnm
        /// apply PLANFILE`, which runs exactly it or refuses it as stale.
        #[arg(long, value_name = "PLANFILE")]
        out: Option<PathBuf>,
        /// Exit 0 when converged, 2 when changes are pending, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        #[arg(short, long, value_enum, default_value = "text")]
        output: PlanFormat,
        /// Multi-host files: which of `hosts:` this machine is (default:
        /// the one whose address is on a local interface).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Trust sandboxes whose definition is unchanged since the last
        /// apply to be as it left them: their namespaces and files are not
        /// read, so drift inside them goes unseen (faster at thousands of
        /// sandboxes; a plan without it reads everything).
        #[arg(long)]
        trust_unchanged: bool,
    },
    /// Make the kernel match the file, then verify it does.
    Apply {
        /// The topology file (`-`: standard input), or a plan saved with
        /// `cnm plan --out`.
        #[arg(required_unless_present = "topology", conflicts_with = "topology")]
        file: Option<PathBuf>,
        /// Apply a topology's applied record instead of a file (repairs
        /// drift without the file).
        #[arg(long, value_name = "NAME")]
        topology: Option<String>,
        /// `json`: no text plan; one JSON object at the end, the plan as
        /// executed (plan's format) with `result` and `ms`.
        #[arg(short, long, value_enum, default_value = "text")]
        output: PlanFormat,
        /// Multi-host files: which of `hosts:` this machine is (default:
        /// the one whose address is on a local interface).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Trust sandboxes whose definition is unchanged since the last
        /// apply to be as it left them: their namespaces and files are not
        /// read, so drift inside them goes unseen (faster at thousands of
        /// sandboxes; a plan without it reads everything).
        #[arg(long)]
        trust_unchanged: bool,
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
        /// When a plugin cannot be reached to give back what it holds
        /// (a pool, a network, an endpoint), forget it anyway (the plugin
        /// may keep it) instead of keeping its records and exiting 1.
        #[arg(long)]
        forget_unreachable: bool,
    },
    /// Print the observed state of what cnm owns, as a topology; or a
    /// saved plan, for review.
    Show {
        /// A plan saved with `cnm plan --out`.
        #[arg(conflicts_with = "topology")]
        planfile: Option<PathBuf>,
        #[arg(long)]
        topology: Option<String>,
        #[arg(short, long, value_enum, default_value = "yaml")]
        output: ShowFormat,
    },
    /// Draw the topology: sandboxes, networks, endpoints with addresses and
    /// published ports, overlay hosts. DOT by default; SVG and PNG through
    /// Graphviz's dot (PNG only to a file or a pipe).
    Graph {
        /// The topology file (`-`: standard input).
        #[arg(required_unless_present = "topology", conflicts_with = "topology")]
        file: Option<PathBuf>,
        /// Draw a topology's applied record instead of a file.
        #[arg(long, value_name = "NAME")]
        topology: Option<String>,
        #[arg(short, long, value_enum, default_value = "dot")]
        output: GraphFormat,
        /// Draw what is applied on this host (as `show` reads it) instead
        /// of the file.
        #[arg(long)]
        observed: bool,
    },
    /// Apply, then re-apply on every file change and on kernel drift, until
    /// SIGINT or SIGTERM (which leave the network in place).
    Watch {
        /// The topology file.
        #[arg(required_unless_present = "topology", conflicts_with = "topology")]
        file: Option<PathBuf>,
        /// Keep a topology's applied record instead of a file (re-planned
        /// when the record changes: topologies a runtime edits).
        #[arg(long, value_name = "NAME")]
        topology: Option<String>,
        /// Full re-plan at least this often (e.g. 30s, 500ms, 2m).
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        resync: std::time::Duration,
        /// Multi-host files: which of `hosts:` this machine is (default:
        /// the one whose address is on a local interface).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// The embedded DNS resolver (127.0.0.11 in every sandbox) of every
    /// topology on this host. `apply` starts it when needed; run it
    /// yourself only under a service manager (see examples/systemd).
    Resolver {
        /// When another resolver runs, wait to take over instead of
        /// leaving at once (for a service manager's restarts).
        #[arg(long)]
        wait: bool,
    },
    /// Whether a `cnm watch` keeps each topology, and how its last apply
    /// went.
    Status {
        #[arg(long)]
        topology: Option<String>,
        #[arg(short, long, value_enum, default_value = "text")]
        output: StatusFormat,
    },
    /// Print a shell completion script (e.g. `cnm completions bash >
    /// /etc/bash_completion.d/cnm`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, cnm(1), in roff (`cnm man | man -l -`).
    Man,
    /// Print the JSON Schema (draft 2020-12) of the topology file, for
    /// editors and validators (committed as schema/topology.schema.json).
    Schema,
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
    // Generated from the CLI definition; no runtime, no logging needed.
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man => return man_page(),
        Command::Schema => return print_generated(cnm::spec::schema::text().as_bytes()),
        _ => {}
    }
    if matches!(
        cli.command,
        Command::Plan {
            output: PlanFormat::Json,
            ..
        } | Command::Apply {
            output: PlanFormat::Json,
            ..
        } | Command::Show {
            output: ShowFormat::Json,
            ..
        } | Command::Status {
            output: StatusFormat::Json,
            ..
        }
    ) {
        cli_common::JSON_ERRORS.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // Commands that only read promise it: cnm's files are then never
    // created, changed or deleted by this process (SPEC §5).
    if matches!(
        cli.command,
        Command::Validate { .. }
            | Command::Plan { .. }
            | Command::Show { .. }
            | Command::Status { .. }
            | Command::Graph { .. }
    ) {
        cnm::safe::forbid_writes();
    }
    // watch runs as a service: its log is its output.
    init_logging(
        cli.verbose
            + u8::from(matches!(
                cli.command,
                Command::Watch { .. } | Command::Resolver { .. }
            )),
    );
    // exec replaces this process and must run before any thread exists.
    if let Command::Exec {
        sandbox,
        topology,
        command,
    } = &cli.command
    {
        return report(cli_exec::exec(sandbox, topology.as_deref(), command));
    }
    // The resolver runs its own runtime until it is stopped.
    if let Command::Resolver { wait } = &cli.command {
        return report(
            cnm::resolver::serve::run(*wait)
                .map_err(Into::into)
                .map(|()| ExitCode::SUCCESS),
        );
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
            if cli_common::JSON_ERRORS.load(std::sync::atomic::Ordering::Relaxed) {
                let lines: String = cli_common::error_objects(&e)
                    .iter()
                    .map(|o| format!("{o}\n"))
                    .collect();
                let _ = cli_common::out(&lines);
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

fn init_logging(verbose: u8) {
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

/// `cnm completions SHELL`.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cnm", &mut buf);
    print_generated(&buf)
}

/// `cnm man`: cnm(1), with a section per subcommand. clap_mangen's own
/// subcommand section names `cnm-plan(1)` pages, which do not exist: the
/// page is put together from its other sections instead, and lists the
/// subcommands in its own words.
fn man_page() -> ExitCode {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut buf = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    let rendered = man
        .render_title(&mut buf)
        .and_then(|()| man.render_name_section(&mut buf))
        .and_then(|()| man.render_synopsis_section(&mut buf))
        .and_then(|()| man.render_description_section(&mut buf))
        .and_then(|()| man.render_options_section(&mut buf))
        .and_then(|()| {
            buf.extend_from_slice(b".SH SUBCOMMANDS\nEach has a section of its own below.\n");
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                let line = format!(
                    ".TP\n\\fBcnm {}\\fR\n{}\n",
                    sub.get_name(),
                    roff_escape(&about)
                );
                buf.extend_from_slice(line.as_bytes());
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = sub.get_name();
                buf.extend_from_slice(format!(".SH \"CNM {}\"\n", name.to_uppercase()).as_bytes());
                let man = clap_mangen::Man::new(sub.clone().bin_name(format!("cnm {name}")));
                man.render_synopsis_section(&mut buf)?;
                man.render_description_section(&mut buf)?;
                man.render_options_section(&mut buf)?;
            }
            man.render_version_section(&mut buf)
        });
    if let Err(e) = rendered {
        eprintln!("cnm: cannot render the man page: {e}");
        return ExitCode::from(1);
    }
    print_generated(&buf)
}

/// Text for a roff paragraph: backslashes and hyphens escaped, and no
/// line starting with a control character.
fn roff_escape(text: &str) -> String {
    let s = text.replace('\\', "\\\\").replace('-', "\\-");
    match s.strip_prefix(['.', '\'']) {
        Some(_) => format!("\\&{s}"),
        None => s,
    }
}

fn print_generated(buf: &[u8]) -> ExitCode {
    match cli_common::out(&String::from_utf8_lossy(buf)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cnm: {e}");
            ExitCode::from(1)
        }
    }
}

fn trust_of(trust_unchanged: bool) -> cnm::apply::Trust {
    if trust_unchanged {
        cnm::apply::Trust::Unchanged
    } else {
        cnm::apply::Trust::Nothing
    }
}

/// Run a subcommand (every one but `exec`) on the runtime.
async fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Validate { file } => cli_plan::validate(&file),
        Command::Plan {
            file,
            topology,
            out,
            detailed_exitcode,
            output,
            host,
            trust_unchanged,
        } => {
            let src = cli_common::source(file, topology)?;
            let trust = trust_of(trust_unchanged);
            let opts = cli_plan::PlanOptions {
                detailed_exitcode,
                output,
                host: host.as_deref(),
                trust,
                out: out.as_deref(),
            };
            cli_plan::plan(&src, opts).await
        }
        Command::Apply {
            file,
            topology,
            output,
            host,
            trust_unchanged,
        } => {
            let src = cli_common::source(file, topology)?;
            cli_apply::apply(&src, output, host.as_deref(), trust_of(trust_unchanged)).await
        }
        Command::Destroy {
            file,
            topology,
            host,
            forget_unreachable,
        } => cli_apply::destroy(file, topology, host.as_deref(), forget_unreachable).await,
        Command::Show {
            planfile: Some(p),
            output,
            ..
        } => cli_show::show_plan(&p, output),
        Command::Show {
            topology, output, ..
        } => cli_show::show(topology, output).await,
        Command::Graph {
            file,
            topology,
            output,
            observed,
        } => cli_graph::graph(&cli_common::source(file, topology)?, output, observed).await,
        Command::Status { topology, output } => cli_status::status(topology, output),
        Command::Watch {
            file,
            topology,
            resync,
            host,
        } => cli_apply::watch(cli_common::source(file, topology)?, resync, host).await,
        Command::Exec { .. }
        | Command::Resolver { .. }
        | Command::Completions { .. }
        | Command::Schema
        | Command::Man => {
            unreachable!("handled before the runtime starts")
        }
    }
}
