//! The `cnm` command line. Thin: parse arguments, call the library, print,
//! choose the exit code (SPEC §4).

mod cli_apply;
mod cli_cni;
mod cli_common;
mod cli_docker;
mod cli_exec;
mod cli_generated;
mod cli_graph;
mod cli_plan;
mod cli_show;
mod cli_status;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
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
        #[command(flatten)]
        at: Targeting,
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
        #[command(flatten)]
        at: Targeting,
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
    /// Serve libnetwork's NetworkDriver to dockerd (`docker network
    /// create -d cnm`); Docker's networks live in the topology `docker`.
    DockerPlugin {
        #[arg(long, default_value = cli_docker::DEFAULT_SOCKET)]
        socket: PathBuf,
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
    // Run by a container runtime as a CNI plugin: no arguments to parse.
    if cli_cni::is_cni_call() {
        return cli_cni::run();
    }
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
        Command::Completions { shell } => return cli_generated::completions(*shell),
        Command::Man => return cli_generated::man_page(),
        Command::Schema => {
            return cli_generated::print_generated(cnm::spec::schema::text().as_bytes())
        }
        _ => {}
    }
    set_modes(&cli.command);
    // watch runs as a service: its log is its output.
    cli_common::init_logging(
        cli.verbose
            + u8::from(matches!(
                cli.command,
                Command::Watch { .. } | Command::Resolver { .. } | Command::DockerPlugin { .. }
            )),
    );
    // exec replaces this process and must run before any thread exists.
    if let Command::Exec {
        sandbox,
        topology,
        command,
    } = &cli.command
    {
        return cli_common::report(cli_exec::exec(sandbox, topology.as_deref(), command));
    }
    // The resolver runs its own runtime until it is stopped.
    if let Command::Resolver { wait } = &cli.command {
        return cli_common::report(
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
        Err(e) => return cli_common::report(Err(anyhow::anyhow!("cannot start the runtime: {e}"))),
    };
    cli_common::report(rt.block_on(run(cli.command)))
}

/// What the command promises for the whole process: errors as JSON too
/// (`-o json`), and no write to cnm's files (commands that only read).
fn set_modes(command: &Command) {
    if matches!(
        command,
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
        command,
        Command::Validate { .. }
            | Command::Plan { .. }
            | Command::Show { .. }
            | Command::Status { .. }
            | Command::Graph { .. }
    ) {
        cnm::safe::forbid_writes();
    }
}

/// Where and how plan and apply look: the flags they share.
#[derive(clap::Args, Debug)]
struct Targeting {
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
}

impl Targeting {
    fn trust(&self) -> cnm::apply::Trust {
        if self.trust_unchanged {
            cnm::apply::Trust::Unchanged
        } else {
            cnm::apply::Trust::Nothing
        }
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
            at,
        } => {
            let src = cli_common::source(file, topology)?;
            let opts = cli_plan::PlanOptions {
                detailed_exitcode,
                output,
                host: at.host.as_deref(),
                trust: at.trust(),
                out: out.as_deref(),
            };
            cli_plan::plan(&src, opts).await
        }
        Command::Apply {
            file,
            topology,
            output,
            at,
        } => {
            let src = cli_common::source(file, topology)?;
            cli_apply::apply(&src, output, at.host.as_deref(), at.trust()).await
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
        Command::DockerPlugin { socket } => {
            cli_docker::run(&socket).await.map(|()| ExitCode::SUCCESS)
        }
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
