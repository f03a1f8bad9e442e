//! What an apply proved is cnm's, written to the records: namespaces with
//! their inodes, values drivers learned, file identities, the firewall's
//! fingerprint. Nothing is adopted by name.

use super::ApplyError;
use crate::model::Observed;
use crate::spec::Topology;
use crate::store::{FilesRecord, NsRecord, Store, TopologyStore, RECORD_VERSION};
use std::collections::{BTreeMap, BTreeSet};

/// Record every namespace observed as the topology's (by its mark) with
/// its inode, where the record differs: an apply killed between making a
/// namespace and recording it leaves one only the mark names. Done before
/// anything runs too, because the resolver listens only in namespaces
/// whose recorded inode matches.
pub(super) fn record_namespaces(store: &TopologyStore, obs: &Observed) -> Result<(), ApplyError> {
    let recorded = store.namespaces()?;
    for ns in obs.state.namespaces.values() {
        let want = NsRecord {
            version: RECORD_VERSION,
            netns: ns.netns.clone(),
            ino: ns.ino,
            borrowed: ns.borrowed.as_ref().map(|b| b.from.clone()),
            sysctls: recorded
                .get(&ns.sandbox)
                .map(|r| r.sysctls.clone())
                .unwrap_or_default(),
        };
        if ns.ino.is_some() && recorded.get(&ns.sandbox) != Some(&want) {
            store.record_namespace(&ns.sandbox, &want)?;
        }
    }
    Ok(())
}

/// Bring the records up to what observe proved after an apply: records
/// written by an older cnm gain the identities they lacked, lost records
/// come back.
pub(super) fn settle(
    store: &TopologyStore,
    t: &Topology,
    obs: &Observed,
    adopted: &BTreeMap<String, crate::drivers::Learned>,
) -> Result<(), ApplyError> {
    settle_learned(store, t, adopted)?;
    record_namespaces(store, obs)?;
    settle_files(store, obs)?;
    if obs.state.firewall.is_some() && store.nft_digest()?.is_none() {
        crate::firewall::nft::record(store)?;
    }
    Ok(())
}

/// Values drivers learned, merged with what was read back while planning;
/// those of endpoints the file no longer has forgotten.
fn settle_learned(
    store: &TopologyStore,
    t: &Topology,
    adopted: &BTreeMap<String, crate::drivers::Learned>,
) -> Result<(), ApplyError> {
    let recorded = store.learned()?;
    for (endpoint, values) in adopted {
        // Read back from the kernel while planning; what this apply's
        // creates returned was recorded already and wins.
        let mut merged = values.clone();
        merged.extend(recorded.get(endpoint).cloned().unwrap_or_default());
        if recorded.get(endpoint) != Some(&merged) {
            store.record_learned(endpoint, &merged)?;
        }
    }
    let gone: Vec<String> = recorded
        .into_keys()
        .filter(|e| !t.endpoints.contains_key(e))
        .collect();
    store.forget_learned(&gone)?;
    Ok(())
}

/// The identities of the sandbox files and directories cnm wrote.
fn settle_files(store: &TopologyStore, obs: &Observed) -> Result<(), ApplyError> {
    let mut files = store.files()?;
    let mut changed = BTreeSet::new();
    for f in obs.state.files.values() {
        let (Some(id), Some(name)) = (f.id, f.path.rsplit('/').next()) else {
            continue;
        };
        let rec = files.entry(f.sandbox.clone()).or_default();
        if rec.files.get(name) != Some(&id) {
            rec.files.insert(name.to_string(), id);
            changed.insert(f.sandbox.clone());
        }
    }
    for ns in obs.state.namespaces.values() {
        let rec = files.entry(ns.sandbox.clone()).or_default();
        if ns.etc_dir.is_some() && rec.dir != ns.etc_dir {
            rec.dir = ns.etc_dir;
            changed.insert(ns.sandbox.clone());
        }
    }
    let recs: Vec<(String, FilesRecord)> = changed
        .into_iter()
        .filter_map(|s| files.get(&s).map(|r| (s.clone(), r.clone())))
        .collect();
    store.record_files_all(&recs)?;
    Ok(())
}

/// The topology `name` as last applied on this machine, read from its
/// record: the desired state of `--topology NAME` (drift repair without
/// the file; topologies a runtime edits). `None`: nothing is applied under
/// that name. The record's source and host are kept.
pub fn recorded_topology(name: &str) -> Result<Option<Topology>, ApplyError> {
    let store = Store::system().topology(name)?;
    let Some(rec) = store.applied()? else {
        return Ok(None);
    };
    let text = serde_json::to_string(&rec.topology).unwrap_or_default();
    let label = format!("the record of topology {name}");
    let mut t = crate::spec::parse(&label, &text).map_err(|e| {
        ApplyError::Internal(format!(
            "{label} no longer validates (written by another cnm?): {e}"
        ))
    })?;
    if t.name != name {
        return Err(ApplyError::Internal(format!(
            "{label} names topology {}",
            t.name
        )));
    }
    t.source = rec.source.clone();
    t.this_host = rec.this_host.clone().filter(|h| t.hosts.contains_key(h));
    Ok(Some(t))
}

/// Forget a destroyed topology's records.
pub fn forget(topology: &str) -> Result<(), ApplyError> {
    Ok(Store::system().topology(topology)?.forget()?)
}
