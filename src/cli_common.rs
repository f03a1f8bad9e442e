//! What the subcommands share: standard output, loading a topology file,
//! the privilege check, and the wording of a failed apply.

use anyhow::Result;
use cnm::apply::ApplyError;
use cnm::spec::{self, LoadError, Topology};
use std::io::{IsTerminal, Write as _};

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

/// Load a file and pick this machine's host; invalid input prints every
/// located error and exits 1.
pub fn load_for(file: &std::path::Path, host: Option<&str>) -> Result<Topology> {
    let mut t = load(file)?;
    t.select_host(host).map_err(|e| anyhow::anyhow!(e))?;
    Ok(t)
}

/// Load a file; invalid input prints every located error and exits 1.
pub fn load(file: &std::path::Path) -> Result<Topology> {
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
pub fn explain(e: ApplyError) -> anyhow::Error {
    if e.before_changes() {
        // Refused while planning: nothing was executed.
        return anyhow::anyhow!("{e}\nnothing was changed");
    }
    anyhow::anyhow!(
        "{e}\napply stopped; run `cnm plan` to see what is left and `cnm apply` again to converge"
    )
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
    let n = cnm::apply::trust::unchanged_since_applied(t, &store).len();
    if n > 0 {
        use std::io::Write as _;
        // A closed stderr is no reason to stop.
        let _ = writeln!(
            std::io::stderr(),
            "note: {n} sandbox(es) unchanged since the last apply are trusted, not read (--trust-unchanged): drift inside them is not shown"
        );
    }
}
