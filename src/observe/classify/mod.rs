//! The pure half of observe: a [`KernelView`] → what of it is the
//! topology's, in the model's terms. Ownership by mark (interface alias,
//! loopback alias of a namespace) or by recorded identity, never by name;
//! leftovers of an interrupted apply (journaled temporary names and mount
//! points) become strays.

mod entries;
mod links;
mod routes;

use super::kernel::{KernelView, NsView};
use crate::drivers::Registry;
use crate::model::{HostFacts, NamespaceRes, State, StrayKind, StrayRes};
use crate::naming::{self, MarkKind};
use crate::store::NsRecord;
use std::collections::{BTreeMap, BTreeSet};

/// Links the journal says were created under a temporary name: on the host
/// (temp name → mark) and inside sandboxes ((netns, temp name) → mark).
#[derive(Debug, Default)]
pub struct TempLinks {
    pub host: BTreeMap<String, String>,
    pub inside: BTreeMap<(String, String), String>,
}

/// What classification needs besides the kernel's view.
pub struct Inputs<'a> {
    pub topology: &'a str,
    pub reg: &'a Registry,
    /// Namespace records (sandbox → record), already checked against the
    /// names cnm derives.
    pub records: &'a BTreeMap<String, NsRecord>,
    pub temp: &'a TempLinks,
    /// Namespace mount points the journal says were being created.
    pub journaled: &'a BTreeSet<String>,
}

/// A namespace of the topology, observed.
#[derive(Debug, Clone)]
pub struct OwnedNs {
    pub sandbox: String,
    pub netns: String,
    pub ino: u64,
    pub view: NsView,
    /// Owned through a record written before version 1 (files then carry
    /// no mark either).
    pub legacy: bool,
}

/// The topology's share of the kernel.
#[derive(Debug, Default)]
pub struct Classified {
    pub state: State,
    pub facts: HostFacts,
    /// Its namespaces, by sandbox.
    pub owned: BTreeMap<String, OwnedNs>,
}

pub fn kernel(inp: &Inputs<'_>, view: KernelView) -> Classified {
    let mut out = Classified::default();
    for c in view.candidates {
        if let Some(o) = owner(inp, &c.netns, c.ino, &c.view) {
            out.owned.insert(
                o.0.clone(),
                OwnedNs {
                    sandbox: o.0,
                    netns: c.netns,
                    ino: c.ino,
                    view: c.view,
                    legacy: o.1,
                },
            );
        }
    }
    links::host_facts(&view.host, &mut out.facts);
    links::classify(inp, &view.host, &out.owned, &mut out.state);
    entries::classify(
        inp.topology,
        inp.temp,
        &view.host,
        &view.fdb,
        &view.neighs,
        &mut out.state,
    );
    for ns in out.owned.values() {
        routes::of_sandbox(ns, inp.topology, &mut out.state);
    }
    out.facts.routed = routes::routed_subnets(&view.host, inp.topology, inp.temp);
    out.facts.netns = view.names;
    for (name, id) in view
        .placeholders
        .into_iter()
        .filter(|(n, _)| inp.journaled.contains(n))
    {
        out.facts.owned_netns.insert(name.clone());
        out.state.strays.insert(
            name.clone(),
            StrayRes {
                what: StrayKind::Mountpoint {
                    netns: name,
                    id: Some(id),
                },
            },
        );
    }
    for ns in out.owned.values() {
        dns_of(inp.topology, ns, &mut out.state, &mut out.facts);
    }
    for ns in out.owned.values() {
        out.facts.owned_netns.insert(ns.netns.clone());
        out.state.namespaces.insert(
            ns.sandbox.clone(),
            namespace(ns, inp.records.get(&ns.sandbox)),
        );
    }
    out
}

/// A sandbox's port 53 redirect: cnm's when the table carries its mark; a
/// table of that name without it is someone else's (a host fact: cnm
/// must not replace it).
fn dns_of(topology: &str, ns: &OwnedNs, state: &mut State, facts: &mut HostFacts) {
    let Some(found) = &ns.view.dns else {
        return;
    };
    let mark = crate::naming::mark(topology, crate::naming::MarkKind::Sandbox, &ns.sandbox);
    if found.mark.as_deref() != Some(mark.as_str()) {
        facts.foreign_dns_tables.insert(ns.sandbox.clone());
        return;
    }
    state.dns.insert(
        ns.sandbox.clone(),
        crate::model::DnsRes {
            sandbox: ns.sandbox.clone(),
            netns: ns.netns.clone(),
            port: found.port.unwrap_or(0),
            intact: found.intact,
        },
    );
}

/// A namespace's own state: its loopback, and, for a borrowed one, what
/// its record says it was borrowed from (files and sysctls come later).
fn namespace(ns: &OwnedNs, rec: Option<&NsRecord>) -> NamespaceRes {
    let lo = ns.view.table.links.values().find(|l| l.name == "lo");
    NamespaceRes {
        sandbox: ns.sandbox.clone(),
        netns: ns.netns.clone(),
        lo_up: lo.is_some_and(|l| l.up),
        lo_addrs: lo
            .map(|l| ns.view.table.addrs_of(l.index))
            .unwrap_or_default(),
        ino: Some(ns.ino),
        etc_dir: None,
        borrowed: rec
            .and_then(|r| r.borrowed.clone())
            .map(|from| crate::model::Borrowed {
                from,
                ino: ns.ino,
                path: String::new(),
            }),
        sysctls: Default::default(),
    }
}

/// Whether namespace `name` is the topology's: (sandbox, owned through a
/// legacy record).
fn owner(inp: &Inputs<'_>, name: &str, ino: u64, view: &NsView) -> Option<(String, bool)> {
    let by_mark = view
        .table
        .links
        .values()
        .find(|l| l.name == "lo")
        .and_then(|l| l.alias.as_deref())
        .and_then(naming::parse_mark)
        .filter(|m| {
            m.topology == inp.topology
                && m.kind == MarkKind::Sandbox
                && naming::netns_name(inp.topology, &m.name) == name
        })
        .map(|m| m.name);
    let by_record = inp
        .records
        .iter()
        .find(|(_, r)| r.netns == name && r.ino.is_none_or(|i| i == ino))
        .map(|(s, r)| (s.clone(), r.ino.is_none()));
    match (by_mark, by_record) {
        (Some(s), _) => Some((s, false)),
        (None, Some(found)) => Some(found),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests;
