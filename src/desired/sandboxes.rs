//! Every namespace's default routes and its hosts and resolv.conf files,
//! reused from the last build where their inputs are unchanged (see
//! `incremental`).

use super::incremental::{hashed, unlocated, Incremental, Key};
use super::{files, routes, Plan};
use crate::drivers::Learned;
use crate::model::{NamespaceRes, State};
use std::collections::{BTreeMap, BTreeSet};

/// Every namespace's default routes and its hosts and resolv.conf files
/// (`dns`: the sandboxes the embedded resolver serves name it instead of
/// their peers).
pub(super) fn add_routes_and_files(
    p: &Plan<'_>,
    learned: &BTreeMap<String, Learned>,
    dns: Option<&crate::resolver::config::Config>,
    mut memo: Option<&mut Incremental>,
    state: &mut State,
) {
    let t = p.t;
    // Hosts files list the local sandboxes, plus every sandbox on another
    // host that shares a network spanning hosts with one of them.
    let index = files::Index::new(p.full, &p.addrs, |e| {
        t.sandboxes.contains_key(&e.sandbox)
            || t.networks
                .get(&e.network)
                .is_some_and(|n| n.caps.spans_hosts)
    });
    // A multi-host file's hosts files list other hosts' sandboxes: not
    // reused (their inputs are not one sandbox's).
    if !p.full.hosts.is_empty() {
        memo = None;
    }
    if let Some(m) = memo.as_deref_mut() {
        m.start(global_key(p));
    }
    let mut seen = BTreeSet::new();
    for ns in state.namespaces.values() {
        seen.insert(ns.sandbox.as_str());
        let embedded = dns.is_some_and(|c| c.sandboxes.contains_key(&ns.netns));
        // Peers in the hosts file (no embedded resolver): its inputs are
        // the whole network's.
        let key = (memo.is_some() && (embedded || ns.borrowed.is_some()))
            .then(|| sandbox_key(p, state, learned, ns, embedded));
        if let (Some(m), Some(k)) = (memo.as_deref_mut(), key) {
            if let Some(part) = m.reuse(&ns.sandbox, k) {
                state.routes.extend(part.routes.iter().cloned());
                state.files.extend(part.files.iter().cloned());
                continue;
            }
        }
        let mut routes = BTreeMap::new();
        let mut files = BTreeMap::new();
        sandbox_part(
            p,
            learned,
            &state.endpoints,
            ns,
            embedded,
            &index,
            &mut routes,
            &mut files,
        );
        if let (Some(m), Some(k)) = (memo.as_deref_mut(), key) {
            m.keep(
                &ns.sandbox,
                k,
                routes.clone().into_iter().collect(),
                files.clone().into_iter().collect(),
            );
        }
        state.routes.extend(routes);
        state.files.extend(files);
    }
    if let Some(m) = memo {
        m.finish(&seen);
    }
}

/// One namespace's default routes and files.
#[allow(clippy::too_many_arguments)]
fn sandbox_part(
    p: &Plan<'_>,
    learned: &BTreeMap<String, Learned>,
    endpoints: &BTreeMap<String, crate::model::EndpointRes>,
    ns: &NamespaceRes,
    embedded: bool,
    index: &files::Index<'_>,
    routes_out: &mut BTreeMap<(String, ipnetwork::IpNetwork), crate::model::RouteRes>,
    files_out: &mut BTreeMap<String, crate::model::FileRes>,
) {
    let t = p.t;
    routes::add_routes(
        t,
        &p.subnets,
        endpoints,
        learned,
        &ns.sandbox,
        &their_defaults(p, &ns.sandbox),
        routes_out,
    );
    // A borrowed namespace's process keeps its own hosts and resolv.conf:
    // cnm writes none for it.
    if ns.borrowed.is_some() {
        return;
    }
    files::add_files(
        &files::SandboxFiles {
            t,
            obs: p.obs,
            addrs: &p.addrs,
            sandbox: &ns.sandbox,
            netns: &ns.netns,
            embedded,
            host_gateway: host_gateway(p, &ns.sandbox),
        },
        index,
        files_out,
    );
}

/// Families whose default route in a borrowed namespace is not cnm's.
fn their_defaults(p: &Plan<'_>, sandbox: &str) -> BTreeSet<u8> {
    match p.obs.host.borrowed.get(sandbox) {
        Some(Ok(found)) => found.foreign_default.clone(),
        _ => Default::default(),
    }
}

/// The IPv4 gateway of the sandbox's default route (`host-gateway`).
fn host_gateway(p: &Plan<'_>, sandbox: &str) -> Option<std::net::Ipv4Addr> {
    let t = p.t;
    routes::gateway_endpoint(t, sandbox)
        .filter(|e| t.networks[&e.network].caps.gateway.has_address())
        .and_then(|e| p.subnets.get(&e.network))
        .and_then(|a| a.gateway_v4)
        .map(|g| g.ip())
}

/// What every sandbox's part reads besides its own inputs: the topology's
/// name, its networks and their subnets (an endpoint's default route and
/// names depend on its network), the host's resolver settings (resolv.conf
/// without `dns:`). Built once per build: few networks, one host.
fn global_key(p: &Plan<'_>) -> Key {
    let h = &p.obs.host;
    unlocated(&(
        &p.t.name,
        p.t.embedded_dns,
        &p.t.networks,
        &p.subnets,
        &h.nameservers,
        &h.search,
        &h.resolv_options,
    ))
}

/// Everything one sandbox's routes and files are computed from besides
/// [`global_key`]: the sandbox, its namespace, its endpoints (as written,
/// as resolved, the interface name and addresses the driver gave them,
/// what was learned of them), the foreign default routes of a borrowed
/// namespace.
fn sandbox_key(
    p: &Plan<'_>,
    state: &State,
    learned: &BTreeMap<String, Learned>,
    ns: &NamespaceRes,
    embedded: bool,
) -> Key {
    let t = p.t;
    let endpoints: Vec<_> = t
        .endpoints_of_sandbox(&ns.sandbox)
        .map(|e| {
            let made = state.endpoints.get(&e.name);
            (
                e,
                p.addrs.get(&e.name),
                made.map(|m| (&m.ifname, &m.addrs)),
                learned.get(&e.name),
            )
        })
        .collect();
    hashed(&(
        t.sandboxes.get(&ns.sandbox),
        // What the part reads of the namespace (its equality is the
        // diff's, not a value's).
        (&ns.netns, ns.borrowed.is_some()),
        embedded,
        their_defaults(p, &ns.sandbox),
        endpoints,
    ))
}
