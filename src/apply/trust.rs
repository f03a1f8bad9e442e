//! Sandboxes a plan may leave unread, trusting them to be as the last
//! apply left them: their definition in the file (the sandbox, its
//! endpoints, and the networks those join) equals the one recorded at the
//! last apply. `cnm plan/apply --trust-unchanged` and `cnm watch` (which
//! further drops every sandbox whose namespace or files sent an event)
//! use it; a default plan trusts nothing and reads everything.

use crate::model::State;
use crate::spec::file::{FileEndpoint, FileTopology};
use crate::spec::Topology;
use crate::store::TopologyStore;
use std::collections::{BTreeMap, BTreeSet};

/// The sandboxes of `t` whose definition is the one last applied. None
/// when the resolver is off and cnm writes hosts files (one then names
/// every peer, so any change touches them all), for multi-host files, or
/// without a record. Borrowed namespaces change with their containers:
/// trusted only when `borrowed` (a runtime's own edit).
pub fn unchanged_since_applied(
    t: &Topology,
    store: &TopologyStore,
    borrowed: bool,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let writes_hosts = t.sandboxes.values().any(|s| s.netns.is_none());
    if (!t.embedded_dns && writes_hosts) || t.this_host.is_some() {
        return out;
    }
    let Some(before) = store
        .applied()
        .ok()
        .flatten()
        .and_then(|r| serde_json::from_value::<FileTopology>(r.topology).ok())
    else {
        return out;
    };
    let now = FileTopology::from_spec(t);
    if (&before.version, &before.name, &before.hosts, &before.dns)
        != (&now.version, &now.name, &now.hosts, &now.dns)
    {
        return out;
    }
    let (was, is) = (by_sandbox(&before), by_sandbox(&now));
    let none = BTreeMap::new();
    for (name, sb) in &now.sandboxes {
        // A borrowed namespace changes with its container: read, unless
        // the container's runtime is the one editing.
        if sb.netns.is_some() && !borrowed {
            continue;
        }
        let mine = is.get(name.as_str()).unwrap_or(&none);
        let same = before.sandboxes.get(name) == Some(sb)
            && was.get(name.as_str()).unwrap_or(&none) == mine
            && mine
                .values()
                .all(|e| before.networks.get(&e.network) == now.networks.get(&e.network));
        if same {
            out.insert(name.clone());
        }
    }
    out
}

fn by_sandbox(f: &FileTopology) -> BTreeMap<&str, BTreeMap<&str, &FileEndpoint>> {
    let mut m: BTreeMap<&str, BTreeMap<&str, &FileEndpoint>> = BTreeMap::new();
    for (name, e) in &f.endpoints {
        m.entry(e.sandbox.as_str())
            .or_default()
            .insert(name.as_str(), e);
    }
    m
}

/// Leave out of `state` what belongs to the trusted sandboxes (their
/// namespace, endpoints, routes, files and DNS redirect), in both the desired and the
/// observed state, so the diff compares only what was read. `endpoints`:
/// the trusted sandboxes' endpoints by name (an endpoint seen only by its
/// host end has no sandbox).
pub fn leave_out(state: &mut State, trusted: &BTreeSet<String>, endpoints: &BTreeSet<String>) {
    state.namespaces.retain(|s, _| !trusted.contains(s));
    state.endpoints.retain(|name, e| {
        !(trusted.contains(&e.sandbox) || (e.sandbox.is_empty() && endpoints.contains(name)))
    });
    state.routes.retain(|(s, _), _| !trusted.contains(s));
    state.files.retain(|_, f| !trusted.contains(&f.sandbox));
    state.dns.retain(|s, _| !trusted.contains(s));
}
