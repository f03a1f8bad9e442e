//! `cnm graph FILE`: the topology as DOT (default), Mermaid, or, through
//! Graphviz's `dot`, SVG or PNG.

use crate::cli_common::{load_source, out, require_privileges, Source};
use crate::GraphFormat;
use anyhow::{bail, Context, Result};
use cnm::observe;
use cnm::store::Store;
use std::io::{IsTerminal, Write as _};
use std::process::{ExitCode, Stdio};

/// `cnm graph FILE [-o FORMAT] [--observed]` (or `--topology NAME`).
pub async fn graph(src: &Source, format: GraphFormat, observed: bool) -> Result<ExitCode> {
    let t = load_source(src, None)?;
    // Checked before any work: a PNG is never written to a terminal.
    if matches!(format, GraphFormat::Png) && std::io::stdout().is_terminal() {
        bail!(
            "cnm graph -o png writes binary data: redirect it to a file (> topology.png) or a pipe"
        );
    }
    let view = if observed {
        require_privileges()?;
        let store = Store::system().topology(&t.name)?;
        let applied = store.applied()?;
        let (obs, _) = observe::observe(&store, &Default::default()).await?;
        if applied.is_none() && obs.state.owns_nothing() {
            bail!(
                "--observed: topology {} is not applied on this host",
                t.name
            );
        }
        cnm::show::show(&t.name, &obs, applied.as_ref())
    } else {
        cnm::graph::desired_view(&t)
    };
    let dot = cnm::graph::dot(&view);
    match format {
        GraphFormat::Dot => out(&dot)?,
        GraphFormat::Mermaid => out(&cnm::graph::mermaid(&view))?,
        GraphFormat::Svg => out(&String::from_utf8_lossy(&render(&dot, "svg")?))?,
        GraphFormat::Png => {
            let png = render(&dot, "png")?;
            let mut o = std::io::stdout().lock();
            match o.write_all(&png).and_then(|()| o.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    bail!("cannot write to standard output: {e}")
                }
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Graphviz's `dot -T<format>` over the DOT text.
fn render(dot: &str, format: &str) -> Result<Vec<u8>> {
    let mut child = match std::process::Command::new("dot")
        .arg(format!("-T{format}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "cnm graph -o {format} needs Graphviz's dot, which is not on PATH (apt install graphviz); -o dot and -o mermaid need nothing"
        ),
        Err(e) => return Err(e).context("cannot run dot"),
    };
    // Written from another thread: dot may fill its output pipe before it
    // has read all of its input.
    let mut stdin = child.stdin.take().context("dot's standard input")?;
    let text = dot.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let result = child.wait_with_output().context("cannot run dot")?;
    let _ = writer.join();
    if !result.status.success() {
        bail!(
            "dot failed: {}",
            String::from_utf8_lossy(&result.stderr).trim()
        );
    }
    Ok(result.stdout)
}
