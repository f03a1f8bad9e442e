//! Links: the host's (facts for planning), the topology's links of networks
//! (marks `network`, `vtep`), its endpoints (the sandbox interface carries
//! the endpoint's mark, and so does a veth's host end), and links left
//! under a journaled temporary name.

use super::{Inputs, OwnedNs};
use crate::drivers::LinkView;
use crate::model::{EndpointRes, HostEnd, HostFacts, LinkRes, State, StrayKind, StrayRes};
use crate::naming::{self, MarkKind};
use crate::observe::kernel::{Link, LinkTable, NsView};
use std::collections::BTreeMap;

/// Every host link, its MTU and addresses: what plans check against.
pub fn host_facts(host: &NsView, facts: &mut HostFacts) {
    for l in host.table.links.values() {
        facts.links.insert(l.name.clone(), l.alias.clone());
        facts.link_mtu.insert(l.name.clone(), l.mtu);
        if !(l.up && l.carrier) {
            facts.links_down.insert(l.name.clone());
        }
        for a in host.table.addrs_of(l.index) {
            facts.local_addrs.insert(a.ip(), (l.name.clone(), l.mtu));
        }
    }
}

/// The topology's mark on a link, if it carries one.
pub fn mark_of(l: &Link, topology: &str) -> Option<naming::Mark> {
    naming::parse_mark(l.alias.as_deref()?).filter(|m| m.topology == topology)
}

pub fn classify(
    inp: &Inputs<'_>,
    host: &NsView,
    owned: &BTreeMap<String, OwnedNs>,
    state: &mut State,
) {
    let host = &host.table;
    for l in host.links.values() {
        if let Some(mark) = inp.temp.host.get(&l.name) {
            // Created under its temporary name and never finished.
            stray(state, l.name.clone(), &l.name, mark, None);
        }
    }
    let ours: Vec<(&Link, naming::Mark)> = host
        .links
        .values()
        .filter(|l| !inp.temp.host.contains_key(&l.name))
        .filter_map(|l| mark_of(l, inp.topology).map(|m| (l, m)))
        .collect();
    network_links(inp, host, &ours, state);
    sandbox_ends(inp, host, owned, state);
    host_ends(host, &ours, state);
}

fn stray(state: &mut State, key: String, ifname: &str, mark: &str, netns: Option<&str>) {
    state.strays.insert(
        key,
        StrayRes {
            what: StrayKind::Link {
                ifname: ifname.to_string(),
                mark: mark.to_string(),
                netns: netns.map(str::to_string),
            },
        },
    );
}

fn network_links(
    inp: &Inputs<'_>,
    host: &LinkTable,
    ours: &[(&Link, naming::Mark)],
    state: &mut State,
) {
    for (l, m) in ours {
        if !matches!(m.kind, MarkKind::Network | MarkKind::Vtep) {
            continue;
        }
        let kind = l.kind.clone().unwrap_or_default();
        let link = LinkRes {
            network: m.name.clone(),
            role: m.kind,
            ifname: l.name.clone(),
            settings: inp.reg.settings(&LinkView {
                kind: &kind,
                info: &l.info,
                lower: lower_name(host, host, l),
            }),
            kind,
            mtu: l.mtu,
            addrs: host.addrs_of(l.index),
            up: l.up,
            master: master_name(host, l),
            driver: String::new(),
        };
        state.links.insert(link.key(), link);
    }
}

/// Endpoints by their sandbox interface (and links left in a sandbox
/// under a journaled temporary name).
fn sandbox_ends(
    inp: &Inputs<'_>,
    host: &LinkTable,
    owned: &BTreeMap<String, OwnedNs>,
    state: &mut State,
) {
    let prefix = format!("cnm:{}:endpoint:", inp.topology);
    for ns in owned.values() {
        let table = &ns.view.table;
        for p in table.links.values() {
            let key = (ns.netns.clone(), p.name.clone());
            if let Some(mark) = inp.temp.inside.get(&key) {
                // Made in the sandbox under its temporary name, never finished.
                let id = format!("{}/{}", ns.netns, p.name);
                stray(state, id, &p.name, mark, Some(&ns.netns));
                continue;
            }
            let Some(name) = p.alias.as_deref().and_then(|a| a.strip_prefix(&prefix)) else {
                continue;
            };
            let kind = p.kind.clone().unwrap_or_default();
            state.endpoints.insert(
                name.to_string(),
                EndpointRes {
                    endpoint: name.to_string(),
                    network: String::new(),
                    sandbox: ns.sandbox.clone(),
                    netns: ns.netns.clone(),
                    settings: inp.reg.settings(&LinkView {
                        kind: &kind,
                        info: &p.info,
                        lower: lower_name(host, table, p),
                    }),
                    kind,
                    ifname: p.name.clone(),
                    mac: p.mac,
                    mtu: p.mtu,
                    addrs: table.addrs_of(p.index),
                    up: p.up,
                    host: None,
                    unknown: Vec::new(),
                    made_with: String::new(),
                    driver: String::new(),
                },
            );
        }
    }
}

/// Host ends of veth endpoints: their bridge names the network.
fn host_ends(host: &LinkTable, ours: &[(&Link, naming::Mark)], state: &mut State) {
    let network_of: BTreeMap<String, String> = state
        .links
        .values()
        .map(|l| (l.ifname.clone(), l.network.clone()))
        .collect();
    for (l, m) in ours.iter().filter(|(_, m)| m.kind == MarkKind::Endpoint) {
        let end = HostEnd {
            ifname: l.name.clone(),
            master: master_name(host, l),
            hairpin: l.hairpin,
        };
        let e = state
            .endpoints
            .entry(m.name.clone())
            .or_insert_with(|| EndpointRes {
                endpoint: m.name.clone(),
                network: String::new(),
                sandbox: String::new(),
                netns: String::new(),
                kind: l.kind.clone().unwrap_or_default(),
                ifname: String::new(),
                mac: None,
                mtu: l.mtu,
                addrs: Default::default(),
                up: l.up,
                host: None,
                settings: Vec::new(),
                unknown: Vec::new(),
                made_with: String::new(),
                driver: String::new(),
            });
        e.network = network_of.get(&end.master).cloned().unwrap_or_default();
        if e.mtu != l.mtu {
            e.mtu = e.mtu.min(l.mtu);
        }
        e.up = e.up && l.up;
        e.host = Some(end);
    }
}

fn master_name(host: &LinkTable, l: &Link) -> String {
    l.master
        .and_then(|i| host.links.get(&i))
        .map(|b| b.name.clone())
        .unwrap_or_default()
}

/// The name of a link's lower link: in `here` (its own namespace) or, when
/// the kernel says it is elsewhere, in the host's table.
fn lower_name<'a>(host: &'a LinkTable, here: &'a LinkTable, l: &Link) -> Option<&'a str> {
    let table = if l.lower_elsewhere { host } else { here };
    // A link names itself as its lower link when it has none; an index in
    // another namespace may equal its own by chance.
    let i = l.lower.filter(|&i| l.lower_elsewhere || i != l.index)?;
    table.links.get(&i).map(|p| p.name.as_str())
}
