//! Names cnm needs that something else holds: a link, a namespace, a file
//! cnm must not write, a firewall table. Each is a plan error; nothing
//! foreign is ever taken over.

use crate::model::{HostFacts, Observed, State};
use crate::naming::{self, MarkKind};

pub(super) fn check_foreign(
    topology: &str,
    desired: &State,
    observed: &Observed,
) -> Result<(), String> {
    let (obs, host) = (&observed.state, &observed.host);
    for ns in desired.namespaces.values() {
        if !obs.namespaces.contains_key(&ns.sandbox)
            && host.netns.contains(&ns.netns)
            && !host.owned_netns.contains(&ns.netns)
        {
            return Err(format!(
                "sandbox {}: namespace /run/netns/{} already exists and cnm does not own it; remove it or rename the sandbox",
                ns.sandbox, ns.netns
            ));
        }
    }
    // An apply killed while making a veth leaves its sandbox end under
    // its final name, unmarked, and the host end a stray this plan deletes
    // first (with its peer): with strays about, a clash is left to the
    // kernel to refuse.
    let interrupted = obs
        .strays
        .values()
        .any(|s| matches!(s.what, crate::model::StrayKind::Link { .. }));
    for e in desired.endpoints.values().filter(|_| !interrupted) {
        let Some(Ok(found)) = host.borrowed.get(&e.sandbox) else {
            continue;
        };
        let ours = naming::mark(topology, MarkKind::Endpoint, &e.endpoint);
        if let Some(alias) = found.links.get(&e.ifname) {
            if alias.as_deref() != Some(ours.as_str()) {
                return Err(format!(
                    "endpoint {}: interface {} already exists in the namespace sandbox {} borrows ({}) and cnm does not own it",
                    e.endpoint, e.ifname, e.sandbox, found.path
                ));
            }
        }
    }
    for f in desired.files.values() {
        if let Some(why) = host.blocked_paths.get(&f.path) {
            return Err(format!("sandbox {}: {why}", f.sandbox));
        }
    }
    for d in desired.dns.values() {
        if host.foreign_dns_tables.contains(&d.sandbox) {
            return Err(format!(
                "sandbox {}: nftables table ip {} already exists in its namespace and cnm did not create it; cnm will not touch it",
                d.sandbox,
                crate::resolver::redirect::TABLE
            ));
        }
    }
    if desired.firewall.is_some() {
        if let Some(t) = host.foreign_tables.first() {
            return Err(format!(
                "nftables table {t} already exists and cnm did not create it; cnm will not touch it: remove it or rename the topology"
            ));
        }
    }
    for l in desired.links.values() {
        if obs.links.get(&l.key()).is_none_or(|o| o.ifname != l.ifname) {
            check_link_name(topology, host, &l.ifname, l.role, &l.network)?;
        }
    }
    for e in desired.endpoints.values() {
        let Some(h) = &e.host else { continue };
        if obs
            .endpoints
            .get(&e.endpoint)
            .is_none_or(|o| o.host_ifname() != h.ifname)
        {
            check_link_name(topology, host, &h.ifname, MarkKind::Endpoint, &e.endpoint)?;
        }
    }
    Ok(())
}

/// A link about to be created must not take a name a foreign link holds.
fn check_link_name(
    topology: &str,
    host: &HostFacts,
    ifname: &str,
    kind: MarkKind,
    name: &str,
) -> Result<(), String> {
    let what = match kind {
        MarkKind::Network => format!("network {name}"),
        MarkKind::Endpoint => format!("endpoint {name}"),
        MarkKind::Vtep => format!("network {name} (its tunnel device)"),
        MarkKind::Sandbox => format!("sandbox {name}"),
    };
    match host.links.get(ifname) {
        None => Ok(()),
        Some(Some(mark)) if naming::parse_mark(mark).is_some_and(|m| m.topology == topology) => Ok(()),
        Some(Some(mark)) => Err(format!("{what}: interface {ifname} already exists and belongs to something else ({mark}); cnm will not touch it")),
        Some(None) => Err(format!("{what}: interface {ifname} already exists and cnm does not own it; remove it or choose another name")),
    }
}
