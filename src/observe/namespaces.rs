//! Which namespaces under /run/netns are this topology's. A namespace is
//! cnm's when its loopback carries cnm's mark for this topology and
//! sandbox (set before the namespace was ever mounted), or when its inode
//! is the one cnm recorded (records from before version 1 name it).
//! Never by its name alone: records can be lost, and a foreign namespace
//! may carry any name.

use super::links::LinkTable;
use super::ObserveError;
use crate::naming::{self, MarkKind};
use crate::netlink;
use crate::netns::{self, Found};
use crate::store::safe::FileId;
use crate::store::{NsRecord, TopologyStore};
use netlink_packet_route::route::RouteMessage;
use std::collections::{BTreeMap, BTreeSet};

/// A namespace of the topology, observed.
pub struct OwnedNs {
    pub sandbox: String,
    pub netns: String,
    pub ino: u64,
    pub table: LinkTable,
    pub routes: Vec<RouteMessage>,
    /// Owned through a record written before version 1 (files then carry
    /// no mark either).
    pub legacy: bool,
}

/// What the namespace scan found.
#[derive(Default)]
pub struct Scan {
    /// Every name under /run/netns.
    pub names: BTreeSet<String>,
    /// By sandbox name.
    pub owned: BTreeMap<String, OwnedNs>,
    /// Mount points an interrupted create left: netns → identity.
    pub strays: BTreeMap<String, FileId>,
}

fn io(context: String) -> impl Fn(crate::store::safe::SafeError) -> ObserveError {
    move |e| ObserveError::Io {
        context: context.clone(),
        source: std::io::Error::other(e),
    }
}

/// Find the topology's namespaces: the recorded ones, the journaled ones,
/// and every name that starts like the topology's namespace names (so a
/// namespace whose record was lost is still found by its mark).
pub async fn scan(
    store: &TopologyStore,
    journaled: &BTreeSet<String>,
) -> Result<Scan, ObserveError> {
    let topology = store.name();
    let records: BTreeMap<String, NsRecord> = store
        .namespaces()?
        .into_iter()
        // Record contents are data: only the name cnm would derive counts.
        .filter(|(s, r)| r.netns == naming::netns_name(topology, s))
        .collect();
    let mut out = Scan {
        names: netns::list().map_err(io(format!("cannot list {}", netns::NETNS_DIR)))?,
        ..Scan::default()
    };
    let prefix = format!("{topology}-");
    let recorded: BTreeSet<&str> = records.values().map(|r| r.netns.as_str()).collect();
    let candidates: Vec<String> = out
        .names
        .iter()
        .filter(|n| {
            n.starts_with(&prefix) || recorded.contains(n.as_str()) || journaled.contains(*n)
        })
        .cloned()
        .collect();
    let Some(dir) = netns::dir().map_err(io(format!("cannot open {}", netns::NETNS_DIR)))? else {
        return Ok(out);
    };
    let mut live = Vec::new();
    for name in candidates {
        match netns::find(&dir, &name).map_err(io(format!("cannot inspect namespace {name}")))? {
            Found::Namespace(f, ino) => live.push((name, f, ino)),
            Found::Placeholder(id) if journaled.contains(&name) => {
                out.strays.insert(name, id);
            }
            _ => {}
        }
    }
    let dumps = dump_all(live).await?;
    for (name, ino, table, routes) in dumps {
        if let Some(owned) = classify(topology, &records, name, ino, table, routes) {
            out.owned.insert(owned.sandbox.clone(), owned);
        }
    }
    Ok(out)
}

/// Links, addresses and routes of each namespace, all dumps in flight
/// together (sockets made from one thread; one dump at a time per socket).
async fn dump_all(
    live: Vec<(String, std::fs::File, u64)>,
) -> Result<Vec<(String, u64, LinkTable, Vec<RouteMessage>)>, ObserveError> {
    let files: Vec<std::fs::File> = live
        .iter()
        .map(|(_, f, _)| f.try_clone())
        .collect::<Result<_, _>>()
        .map_err(|e| ObserveError::Io {
            context: "cannot open the sandbox namespaces".into(),
            source: e,
        })?;
    let handles = netlink::connect_in_each(files).map_err(|e| ObserveError::Io {
        context: "cannot enter the sandbox namespaces".into(),
        source: e,
    })?;
    let dumps = futures::future::join_all(live.into_iter().zip(handles).map(
        |((name, _f, ino), handle)| async move {
            let table = LinkTable::dump(&handle, Some(&name)).await?;
            let routes =
                netlink::dump_routes(&handle)
                    .await
                    .map_err(|source| ObserveError::Netlink {
                        what: "routes",
                        netns: Some(name.clone()),
                        source,
                    })?;
            // Not kept: apply reconnects to the few namespaces it changes.
            drop(handle);
            Ok::<_, ObserveError>((name, ino, table, routes))
        },
    ))
    .await;
    dumps.into_iter().collect()
}

/// Whether namespace `name` is the topology's, and for which sandbox.
fn classify(
    topology: &str,
    records: &BTreeMap<String, NsRecord>,
    name: String,
    ino: u64,
    table: LinkTable,
    routes: Vec<RouteMessage>,
) -> Option<OwnedNs> {
    let by_mark = table
        .links
        .values()
        .find(|l| l.name == "lo")
        .and_then(|l| l.alias.as_deref())
        .and_then(naming::parse_mark)
        .filter(|m| {
            m.topology == topology
                && m.kind == MarkKind::Sandbox
                && naming::netns_name(topology, &m.name) == name
        })
        .map(|m| m.name);
    let by_record = records
        .iter()
        .find(|(_, r)| r.netns == name && r.ino.is_none_or(|i| i == ino))
        .map(|(s, r)| (s.clone(), r.ino.is_none()));
    let (sandbox, legacy) = match (by_mark, by_record) {
        (Some(s), _) => (s, false),
        (None, Some((s, legacy))) => (s, legacy),
        (None, None) => return None,
    };
    Some(OwnedNs {
        sandbox,
        netns: name,
        ino,
        table,
        routes,
        legacy,
    })
}
