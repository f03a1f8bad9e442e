//! The kernel → [`Observed`]: netlink dumps of the host namespace and of every
//! namespace the topology owns, the files cnm wrote and its firewall
//! tables. Builds the same model the desired state uses, so the diff can
//! compare them. Reads only; decides ownership (see `namespaces`, `files`
//! and `host`), never changes anything.

pub mod borrowed;
pub mod classify;
mod files;
pub mod kernel;
mod links;
pub mod listeners;
mod read;
mod system;

use crate::drivers::Registry;
use crate::model::{FileRes, Observed, State};
use crate::naming;
use crate::netlink;
use crate::store::NsRecord;
use crate::store::{StoreError, TopologyStore};
use classify::{Classified, OwnedNs, TempLinks};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::errors::ObserveError;
pub use files::FILE_NAMES;

/// Open netlink connections, reused by `apply` so each namespace gets one.
pub struct Connections {
    pub host: rtnetlink::Handle,
    pub sandboxes: BTreeMap<String, rtnetlink::Handle>,
}

/// Observe everything topology `store.name()` owns. `wanted`: the
/// sandboxes (sandbox → netns) the file asks for, so that paths it would
/// write are checked for things cnm must not touch before any change.
pub async fn observe(
    store: &TopologyStore,
    wanted: &BTreeMap<String, String>,
) -> Result<(Observed, Connections), ObserveError> {
    observe_with(Registry::builtin(), store, wanted).await
}

/// [`observe`], with the drivers of `reg` decoding link settings. Reads
/// the kernel (`read`), classifies what is the topology's (`classify`,
/// pure), then its files, firewall and sysctls.
pub async fn observe_with(
    reg: &Registry,
    store: &TopologyStore,
    wanted: &BTreeMap<String, String>,
) -> Result<(Observed, Connections), ObserveError> {
    observe_scoped(reg, store, wanted, &Scope::All).await
}

/// Whose namespaces (and files) observe reads. The host, firewall and
/// resolver are read as always; the state returned lacks what was not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    All,
    /// Only these sandboxes (verify: those the plan touched).
    Only(BTreeSet<String>),
    /// All but these (sandboxes trusted to be as applied).
    AllBut(BTreeSet<String>),
}

impl Scope {
    pub fn reads(&self, sandbox: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(s) => s.contains(sandbox),
            Scope::AllBut(s) => !s.contains(sandbox),
        }
    }
}

/// [`observe_with`], reading the namespaces and files of the sandboxes
/// `scope` names.
pub async fn observe_scoped(
    reg: &Registry,
    store: &TopologyStore,
    wanted: &BTreeMap<String, String>,
    scope: &Scope,
) -> Result<(Observed, Connections), ObserveError> {
    let topology = store.name();
    let journal = store.journal()?;
    let mut temp = TempLinks::default();
    for l in &journal.links {
        match &l.netns {
            None => temp.host.insert(l.tmp.clone(), l.mark.clone()),
            Some(ns) => temp
                .inside
                .insert((ns.clone(), l.tmp.clone()), l.mark.clone()),
        };
    }
    let journaled: BTreeSet<String> = journal.netns.iter().cloned().collect();
    let records: BTreeMap<String, NsRecord> = store
        .namespaces()?
        .into_iter()
        // Record contents are data: only the name cnm would derive counts.
        .filter(|(s, r)| r.netns == naming::netns_name(topology, s))
        .collect();

    let host_handle = netlink::connect_here().map_err(|e| ObserveError::Io {
        context: "cannot open a netlink socket".into(),
        source: e,
    })?;
    // Candidates: names like the topology's, recorded or journaled ones (so
    // a namespace whose record was lost is still found by its mark).
    let started = std::time::Instant::now();
    let prefix = format!("{topology}-");
    let recorded: BTreeSet<&str> = records.values().map(|r| r.netns.as_str()).collect();
    // Sandboxes to namespace names.
    let netns_of = |s: &String| {
        records
            .get(s)
            .map_or_else(|| naming::netns_name(topology, s), |r| r.netns.clone())
    };
    let unread: BTreeSet<String> = match scope {
        Scope::AllBut(skip) => skip.iter().map(netns_of).collect(),
        _ => BTreeSet::new(),
    };
    let only: Option<BTreeSet<String>> = match scope {
        Scope::Only(read) => Some(read.iter().map(netns_of).collect()),
        _ => None,
    };
    let view = read::kernel(&host_handle, topology, |n: &str| {
        (n.starts_with(&prefix) || recorded.contains(n) || journaled.contains(n))
            && !unread.contains(n)
            && only.as_ref().is_none_or(|o| o.contains(n))
    })
    .await?;
    let kernel_at = started.elapsed();
    let inputs = classify::Inputs {
        topology,
        reg,
        records: &records,
        temp: &temp,
        journaled: &journaled,
    };
    let Classified {
        mut state,
        mut facts,
        owned,
    } = classify::kernel(&inputs, view);
    // Unreadable is as good as absent here: observe (and destroy) must not
    // depend on it.
    if let Ok(Some(rec)) = store.applied() {
        networks_from_record(&rec, &mut state);
        facts.allocated = rec.allocations;
    }
    // What plugins hold for cnm is known from the records alone.
    leftover_endpoints(store, &mut state);
    // An unreadable record must not stop observe (destroy needs none).
    state.plugins = store.plugin_objects().unwrap_or_else(|e| {
        tracing::warn!("{e}; the objects plugins hold for cnm are not known");
        Default::default()
    });

    let classified_at = started.elapsed();
    let wanted: BTreeMap<String, String> = wanted
        .iter()
        .filter(|(s, _)| scope.reads(s))
        .map(|(s, n)| (s.clone(), n.clone()))
        .collect();
    let seen_files = observe_files(store, &wanted, &owned)?;
    for ns in state.namespaces.values_mut() {
        ns.etc_dir = seen_files.dirs.get(&ns.netns).copied();
    }
    for f in seen_files.files {
        state.files.insert(f.path.clone(), f);
    }
    facts.blocked_paths = seen_files.blocked;

    let files_at = started.elapsed();
    let fw = crate::firewall::nft::observe(store)?;
    let firewall_at = started.elapsed();
    state.firewall = fw.firewall;
    facts.foreign_tables = fw.foreign;
    facts.forward_chains = fw.forward_chains;
    facts.firewall_recorded = store.nft_digest()?.is_some();
    facts.nft = crate::firewall::nft::version();
    let mut inodes: BTreeMap<String, u64> = state
        .namespaces
        .values()
        .filter_map(|n| Some((n.netns.clone(), n.ino?)))
        .collect();
    if *scope != Scope::All {
        // Namespaces not read are as recorded (an apply records every one
        // it sees).
        for (sandbox, r) in &records {
            if let (false, Some(ino)) = (scope.reads(sandbox), r.ino) {
                inodes.entry(r.netns.clone()).or_insert(ino);
            }
        }
    }
    state.resolver = crate::resolver::control::observe(topology, &inodes)?;
    system::observe_sysctls(&mut state);
    let recorded_sysctls: BTreeMap<String, Vec<String>> = records
        .iter()
        .filter(|(s, r)| !r.sysctls.is_empty() && scope.reads(s))
        .map(|(s, r)| (s.clone(), r.sysctls.clone()))
        .collect();
    system::observe_sandbox_sysctls(&mut state, &recorded_sysctls);
    system::observe_resolv(&mut facts);

    tracing::debug!(
        kernel = ?kernel_at,
        classify = ?classified_at - kernel_at,
        files = ?files_at - classified_at,
        firewall = ?firewall_at - files_at,
        rest = ?started.elapsed() - firewall_at,
        "observed"
    );
    let conns = Connections {
        host: host_handle,
        sandboxes: BTreeMap::new(),
    };
    Ok((Observed { state, host: facts }, conns))
}

/// The kernel tells an endpoint's network by the bridge its host end is a
/// port of; an endpoint with no host end (a macvlan interface) is on the
/// network the last apply put it on. A stale record (a crash before it was
/// written) only costs the endpoint its kept address.
fn networks_from_record(rec: &crate::store::AppliedRecord, state: &mut State) {
    let file = serde_json::from_value::<crate::topology::file::FileTopology>(rec.topology.clone())
        .unwrap_or_default();
    for e in state
        .endpoints
        .values_mut()
        .filter(|e| e.network.is_empty())
    {
        let allocated = rec
            .allocations
            .endpoints
            .get(&e.endpoint)
            .filter(|a| a.netns == e.netns)
            .map(|a| a.network.clone());
        let in_file = || {
            file.endpoints
                .get(&e.endpoint)
                .filter(|f| f.sandbox == e.sandbox)
                .map(|f| f.network.clone())
        };
        if let Some(n) = allocated.or_else(in_file) {
            e.network = n;
        }
    }
    // The driver that made each endpoint (a plugin's takes it back).
    for e in state.endpoints.values_mut().filter(|e| e.driver.is_empty()) {
        if let Some(n) = file.networks.get(&e.network) {
            e.driver = n
                .driver
                .clone()
                .unwrap_or_else(|| crate::topology::DEFAULT_DRIVER.to_string());
        }
    }
}

/// Endpoints a driver noted making (a plugin holds them) whose interface
/// the kernel no longer shows: strays, so the driver lets them go.
fn leftover_endpoints(store: &TopologyStore, state: &mut State) {
    use crate::drivers::{LEARNED_DRIVER, LEARNED_MADE_WITH, LEARNED_NETWORK};
    for (endpoint, l) in store.learned().unwrap_or_default() {
        // What the driver was told when it made the endpoint.
        if let (Some(e), Some(m)) = (state.endpoints.get_mut(&endpoint), l.get(LEARNED_MADE_WITH)) {
            e.made_with = m.clone();
        }
        let (Some(driver), Some(network)) = (l.get(LEARNED_DRIVER), l.get(LEARNED_NETWORK)) else {
            continue;
        };
        if state.endpoints.contains_key(&endpoint) {
            continue;
        }
        state.strays.insert(
            format!("endpoint {endpoint}"),
            crate::model::StrayRes {
                what: crate::model::StrayKind::Endpoint {
                    endpoint,
                    network: network.clone(),
                    driver: driver.clone(),
                },
            },
        );
    }
}

/// Files of the owned namespaces and of the ones the file wants.
fn observe_files(
    store: &TopologyStore,
    wanted: &BTreeMap<String, String>,
    owned: &BTreeMap<String, OwnedNs>,
) -> Result<files::Seen, ObserveError> {
    let mut wants: BTreeMap<&str, files::Want<'_>> = BTreeMap::new();
    for (sandbox, netns) in wanted {
        wants.insert(
            sandbox,
            files::Want {
                sandbox,
                netns,
                legacy: false,
            },
        );
    }
    for ns in owned.values() {
        wants.insert(
            &ns.sandbox,
            files::Want {
                sandbox: &ns.sandbox,
                netns: &ns.netns,
                legacy: ns.legacy,
            },
        );
    }
    let wants: Vec<files::Want<'_>> = wants.into_values().collect();
    Ok(files::observe(store.name(), &wants, &store.files()?)?)
}

/// Sandbox records of a topology, as (sandbox → netns), for `exec`.
/// The namespaces `t`'s sandboxes borrow (`netns:`), found now, by
/// sandbox; in a multi-host file, those of this machine's sandboxes.
pub async fn borrowed(
    t: &crate::topology::Topology,
) -> BTreeMap<String, Result<crate::model::Target, String>> {
    let mut out = BTreeMap::new();
    for sb in t.sandboxes.values() {
        let Some(r) = &sb.netns else { continue };
        if t.this_host.is_some() && sb.host != t.this_host {
            continue;
        }
        out.insert(sb.name.clone(), crate::observe::borrowed::resolve(r).await);
    }
    out
}

/// Read the sysctls `desired` sets in its sandboxes that `observed` has
/// not read yet (keys new in the file are not recorded).
pub fn wanted_sysctls(desired: &State, observed: &mut State) {
    let keys: BTreeMap<String, Vec<String>> = desired
        .namespaces
        .values()
        .filter(|n| !n.sysctls.is_empty())
        .map(|n| (n.sandbox.clone(), n.sysctls.keys().cloned().collect()))
        .collect();
    system::observe_sandbox_sysctls(observed, &keys);
}

pub fn sandbox_netns(store: &TopologyStore) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(store
        .namespaces()?
        .into_iter()
        .filter(|(s, r)| r.netns == naming::netns_name(store.name(), s))
        .map(|(s, r)| (s, r.netns))
        .collect())
}

/// The files cnm owns for a sandbox, from an observed state.
pub fn files_of<'a>(state: &'a State, sandbox: &'a str) -> impl Iterator<Item = &'a FileRes> {
    state.files.values().filter(move |f| f.sandbox == sandbox)
}
