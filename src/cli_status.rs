//! `cnm status`: whether a `cnm watch` keeps each topology, and how its
//! last apply went (as the watcher recorded it in /run/cnm).

use crate::cli_common::out;
use crate::StatusFormat;
use anyhow::{Context, Result};
use cnm::store::Store;
use serde::Serialize;
use std::process::ExitCode;

/// `format_version` of `cnm status -o json`.
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Report {
    format_version: u32,
    topologies: Vec<TopologyStatus>,
}

#[derive(Serialize)]
struct TopologyStatus {
    name: String,
    /// The watcher recorded for it, if any.
    watcher: Option<Watcher>,
    /// Its last apply (`null` before the first).
    last: Option<cnm::watch::status::Convergence>,
}

#[derive(Serialize)]
struct Watcher {
    pid: u32,
    running: bool,
    file: String,
    started: Option<u64>,
    applies: u64,
}

pub fn status(topology: Option<String>, output: StatusFormat) -> Result<ExitCode> {
    let system = Store::system();
    // Topologies with records, and those a watcher claims (a destroy by
    // hand deletes the records, not the watcher's claim).
    let mut all = system.topologies()?;
    all.extend(system.watched_topologies()?);
    all.sort();
    all.dedup();
    let names = match topology {
        Some(n) => {
            system.topology(&n).context("--topology")?;
            if !all.contains(&n) {
                anyhow::bail!(
                    "--topology {n}: no topology of that name is recorded on this host{}",
                    crate::cli_common::known_topologies()
                );
            }
            vec![n]
        }
        None => all,
    };
    let mut topologies = Vec::new();
    for name in names {
        let rec = cnm::watch::claim::recorded(&system, &name);
        // A status left by an earlier watcher still says how it ended.
        let st = cnm::watch::status::read(&system, &name);
        let watcher = rec.map(|w| {
            let mine = st.as_ref().filter(|s| s.pid == w.pid);
            Watcher {
                pid: w.pid,
                running: w.alive(),
                file: w.file.clone(),
                started: mine.map(|s| s.started),
                applies: mine.map_or(0, |s| s.applies),
            }
        });
        topologies.push(TopologyStatus {
            name,
            watcher,
            last: st.and_then(|s| s.last),
        });
    }
    match output {
        StatusFormat::Json => out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&Report {
                format_version: FORMAT_VERSION,
                topologies,
            })?
        ))?,
        StatusFormat::Text => {
            let mut text = String::new();
            for t in &topologies {
                let who = match &t.watcher {
                    Some(w) if w.running => format!(
                        "watched by cnm watch (pid {}) from {}, {} applies",
                        w.pid, w.file, w.applies
                    ),
                    Some(w) => format!("its watcher (pid {}) is gone", w.pid),
                    None => "not watched".into(),
                };
                text.push_str(&format!("topology {}: {who}\n", t.name));
                if let Some(l) = &t.last {
                    text.push_str(&format!("  last apply: {}\n", l.line()));
                }
            }
            if topologies.is_empty() {
                text.push_str("no topology is recorded on this host\n");
            }
            out(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
