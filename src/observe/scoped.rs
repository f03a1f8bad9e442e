//! One observation, in its steps: read the kernel (the namespaces `scope`
//! names), classify what is the topology's, then what the records alone
//! know, the files, the firewall, the resolver and sysctls.

use super::classify::{self, Classified, OwnedNs, TempLinks};
use super::{files, read, system, Connections, ObserveError, Scope};
use crate::drivers::Registry;
use crate::model::{HostFacts, Observed, State};
use crate::naming;
use crate::netlink;
use crate::store::{NsRecord, TopologyStore};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// [`super::observe_with`], reading the namespaces and files of the
/// sandboxes `scope` names.
pub async fn observe_scoped(
    reg: &Registry,
    store: &TopologyStore,
    wanted: &BTreeMap<String, String>,
    scope: &Scope,
) -> Result<(Observed, Connections), ObserveError> {
    let topology = store.name();
    let journal = store.journal()?;
    let temp = temp_links(&journal);
    let journaled: BTreeSet<String> = journal.netns.iter().cloned().collect();
    let records = namespace_records(store)?;
    let host_handle = netlink::connect_here().map_err(|e| ObserveError::Io {
        context: "cannot open a netlink socket".into(),
        source: e,
    })?;
    let started = Instant::now();
    let view = read_kernel(&host_handle, topology, &records, &journaled, scope).await?;
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
    from_records(store, &mut state, &mut facts);
    let classified_at = started.elapsed();
    add_files(store, wanted, scope, &owned, &mut state, &mut facts)?;
    let files_at = started.elapsed();
    add_firewall(store, &mut state, &mut facts)?;
    let firewall_at = started.elapsed();
    add_resolver_and_sysctls(topology, &records, scope, &mut state, &mut facts)?;
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

/// Links the journal says were being made under a temporary name.
fn temp_links(journal: &crate::store::Journal) -> TempLinks {
    let mut temp = TempLinks::default();
    for l in &journal.links {
        match &l.netns {
            None => temp.host.insert(l.tmp.clone(), l.mark.clone()),
            Some(ns) => temp
                .inside
                .insert((ns.clone(), l.tmp.clone()), l.mark.clone()),
        };
    }
    temp
}

/// The topology's namespace records (record contents are data: only the
/// name cnm would derive counts).
fn namespace_records(store: &TopologyStore) -> Result<BTreeMap<String, NsRecord>, ObserveError> {
    let topology = store.name();
    Ok(store
        .namespaces()?
        .into_iter()
        .filter(|(s, r)| r.netns == naming::netns_name(topology, s))
        .collect())
}

/// Read the host and the candidate namespaces `scope` names: names like
/// the topology's, recorded or journaled ones (so a namespace whose record
/// was lost is still found by its mark).
async fn read_kernel(
    host: &rtnetlink::Handle,
    topology: &str,
    records: &BTreeMap<String, NsRecord>,
    journaled: &BTreeSet<String>,
    scope: &Scope,
) -> Result<super::kernel::KernelView, ObserveError> {
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
    read::kernel(host, topology, |n: &str| {
        (n.starts_with(&prefix) || recorded.contains(n) || journaled.contains(n))
            && !unread.contains(n)
            && only.as_ref().is_none_or(|o| o.contains(n))
    })
    .await
}

/// What the records alone know: networks of endpoints without a host end,
/// allocations, what plugins hold. Unreadable is as good as absent here:
/// observe (and destroy) must not depend on it.
fn from_records(store: &TopologyStore, state: &mut State, facts: &mut HostFacts) {
    if let Ok(Some(rec)) = store.applied() {
        networks_from_record(&rec, state);
        facts.allocated = rec.allocations;
    }
    leftover_endpoints(store, state);
    state.plugins = store.plugin_objects().unwrap_or_else(|e| {
        tracing::warn!("{e}; the objects plugins hold for cnm are not known");
        Default::default()
    });
}

/// The files of the sandboxes read (and of those the file wants).
fn add_files(
    store: &TopologyStore,
    wanted: &BTreeMap<String, String>,
    scope: &Scope,
    owned: &BTreeMap<String, OwnedNs>,
    state: &mut State,
    facts: &mut HostFacts,
) -> Result<(), ObserveError> {
    let wanted: BTreeMap<String, String> = wanted
        .iter()
        .filter(|(s, _)| scope.reads(s))
        .map(|(s, n)| (s.clone(), n.clone()))
        .collect();
    let seen_files = observe_files(store, &wanted, owned, *scope == Scope::All)?;
    for ns in state.namespaces.values_mut() {
        ns.etc_dir = seen_files.dirs.get(&ns.netns).copied();
    }
    for f in seen_files.files {
        state.files.insert(f.path.clone(), f);
    }
    facts.blocked_paths = seen_files.blocked;
    Ok(())
}

/// cnm's firewall tables and the host's firewall facts.
fn add_firewall(
    store: &TopologyStore,
    state: &mut State,
    facts: &mut HostFacts,
) -> Result<(), ObserveError> {
    let fw = crate::firewall::nft::observe(store)?;
    state.firewall = fw.firewall;
    facts.foreign_tables = fw.foreign;
    facts.forward_chains = fw.forward_chains;
    facts.firewall_recorded = store.nft_digest()?.is_some();
    facts.nft = crate::firewall::nft::version();
    Ok(())
}

/// The resolver's state, the host's and sandboxes' sysctls, the host's
/// resolv.conf. Namespaces not read are as recorded (an apply records
/// every one it sees).
fn add_resolver_and_sysctls(
    topology: &str,
    records: &BTreeMap<String, NsRecord>,
    scope: &Scope,
    state: &mut State,
    facts: &mut HostFacts,
) -> Result<(), ObserveError> {
    let mut inodes: BTreeMap<String, u64> = state
        .namespaces
        .values()
        .filter_map(|n| Some((n.netns.clone(), n.ino?)))
        .collect();
    if *scope != Scope::All {
        for (sandbox, r) in records {
            if let (false, Some(ino)) = (scope.reads(sandbox), r.ino) {
                inodes.entry(r.netns.clone()).or_insert(ino);
            }
        }
    }
    state.resolver = crate::resolver::control::observe(topology, &inodes)?;
    system::observe_sysctls(state);
    let recorded_sysctls: BTreeMap<String, Vec<String>> = records
        .iter()
        .filter(|(s, r)| !r.sysctls.is_empty() && scope.reads(s))
        .map(|(s, r)| (s.clone(), r.sysctls.clone()))
        .collect();
    system::observe_sandbox_sysctls(state, &recorded_sysctls);
    system::observe_resolv(facts);
    Ok(())
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
    all: bool,
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
    let records = if all {
        store.files()?
    } else {
        store.files_of(wants.iter().map(|w| w.sandbox))?
    };
    Ok(files::observe(store.name(), &wants, &records)?)
}
