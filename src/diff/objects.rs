//! Network objects: links of networks, endpoints, and the forwarding and
//! neighbour entries on tunnel devices. Compared field by field; what is
//! fixed when an object is made (its kind, name, settings, sandbox) means a
//! replace.

use super::{chg, field, list, or_none, pair, Acts};
use crate::model::{fmt_mac, EndpointRes, LinkRes, Observed, State};
use crate::plan::Action;
use crate::plan::{Change, Op, Resource};
use std::collections::{BTreeMap, BTreeSet};

/// Objects held by plugins: what was asked differs, or the answer was
/// never recorded, means a replace (give back, ask again). A request that
/// still waits on an earlier object's answer is not compared.
pub(super) fn plugins(desired: &State, obs: &State, acts: &mut Acts) {
    pair(
        &desired.plugins,
        &obs.plugins,
        acts,
        Resource::Plugin,
        |d, o| {
            if o.pending {
                return (
                    Vec::new(),
                    Some("an interrupted apply asked for it and never recorded the answer".into()),
                );
            }
            if d.plugin != o.plugin {
                return (
                    vec![chg("plugin", &o.plugin, &d.plugin)],
                    Some("its plugin changed".into()),
                );
            }
            if !d.waits() && d.request != o.request {
                return (
                    vec![chg(
                        "request",
                        &o.request.to_string(),
                        &d.request.to_string(),
                    )],
                    Some("what is asked of the plugin changed".into()),
                );
            }
            (Vec::new(), None)
        },
    );
}

/// What a plugin holds is given back only after what was made in it. A
/// plugin object is never replaced in place: it is deleted (in the delete
/// phase, after the endpoints and addresses made in it) and asked for
/// again. When a network's pool, gateway or network object goes or is
/// made anew, its other plugin objects and its endpoints go and come back
/// the same way, even where they did not change themselves.
pub(super) fn plugin_cascade(desired: &State, obs: &State, acts: &mut Acts) {
    use crate::model::PluginCall;
    let root = |p: &crate::model::PluginRes| {
        matches!(
            p.call,
            PluginCall::Pool | PluginCall::Gateway | PluginCall::Network
        )
    };
    let nets: BTreeSet<String> = acts
        .deletes
        .iter()
        .chain(acts.ups.iter())
        .filter_map(|a| match &a.resource {
            Resource::Plugin(p) if matches!(a.op, Op::Delete | Op::Replace) && root(p) => {
                Some(p.network.clone())
            }
            _ => None,
        })
        .collect();
    let why = |net: &str| format!("the plugin objects of network {net} are made anew");
    // A dependent of `nets`: made anew whether or not it changed itself.
    let depends = |r: &Resource| match r {
        Resource::Plugin(p) => p.call != PluginCall::Pool && nets.contains(&p.network),
        Resource::Endpoint(e) => nets.contains(&e.network),
        _ => false,
    };
    split_dependents(acts, &depends, &why);
    untouched_dependents(desired, obs, acts, &depends, &why);
}

/// Replaced plugin objects, and dependents replaced or updated, become a
/// delete and a create.
fn split_dependents(
    acts: &mut Acts,
    depends: &dyn Fn(&Resource) -> bool,
    why: &dyn Fn(&str) -> String,
) {
    let mut ups = Vec::new();
    let mut deletes = Vec::new();
    for a in std::mem::take(&mut acts.ups) {
        let split = match (&a.resource, a.op) {
            (Resource::Plugin(_), Op::Replace) => true,
            (r, Op::Replace | Op::Update) => depends(r),
            _ => false,
        };
        if !split {
            ups.push(a);
            continue;
        }
        let reason = a.reason.clone().or_else(|| match &a.resource {
            Resource::Endpoint(e) => Some(why(&e.network)),
            Resource::Plugin(p) => Some(why(&p.network)),
            _ => None,
        });
        let old = a.before.clone().unwrap_or_else(|| a.resource.clone());
        deletes.push(anew(Op::Delete, old, Vec::new(), reason.clone()));
        ups.push(anew(Op::Create, a.resource, a.changes, reason));
    }
    acts.ups = ups;
    acts.deletes.extend(deletes);
}

/// Dependents nothing else touches go and come back too.
fn untouched_dependents(
    desired: &State,
    obs: &State,
    acts: &mut Acts,
    depends: &dyn Fn(&Resource) -> bool,
    why: &dyn Fn(&str) -> String,
) {
    let touched = |r: &Resource| {
        acts.ups
            .iter()
            .chain(acts.deletes.iter())
            .any(|a| same_object(&a.resource, r))
    };
    let mut more = Vec::new();
    for (key, o) in obs.plugins.iter() {
        let r = Resource::Plugin(o.clone());
        if depends(&r) && !touched(&r) {
            let again = desired.plugins.get(key).cloned().map(Resource::Plugin);
            more.push((r, again, why(&o.network)));
        }
    }
    for (key, o) in obs.endpoints.iter() {
        let r = Resource::Endpoint(o.clone());
        if depends(&r) && !touched(&r) {
            let again = desired.endpoints.get(key).cloned().map(Resource::Endpoint);
            more.push((r, again, why(&o.network)));
        }
    }
    for (old, again, reason) in more {
        acts.deletes
            .push(anew(Op::Delete, old, Vec::new(), Some(reason.clone())));
        if let Some(r) = again {
            acts.ups.push(anew(Op::Create, r, Vec::new(), Some(reason)));
        }
    }
}

/// An action with no object before it.
fn anew(op: Op, resource: Resource, changes: Vec<Change>, reason: Option<String>) -> Action {
    Action {
        op,
        resource,
        before: None,
        changes,
        reason,
    }
}

/// Whether two resources stand for the same object (same kind and key).
fn same_object(a: &Resource, b: &Resource) -> bool {
    match (a, b) {
        (Resource::Plugin(x), Resource::Plugin(y)) => x.key == y.key,
        (Resource::Endpoint(x), Resource::Endpoint(y)) => x.endpoint == y.endpoint,
        _ => false,
    }
}

pub(super) fn links(desired: &State, obs: &State, acts: &mut Acts) {
    pair(
        &desired.links,
        &obs.links,
        acts,
        Resource::Link,
        compare_link,
    );
}

pub(super) fn compare_link(d: &LinkRes, o: &LinkRes) -> (Vec<Change>, Option<String>) {
    if d.ifname != o.ifname {
        return (
            vec![chg("name", &o.ifname, &d.ifname)],
            Some(format!("the {} name changed", d.kind)),
        );
    }
    if d.kind != o.kind || d.settings != o.settings {
        let mut c = Vec::new();
        field(&mut c, "kind", &o.kind, &d.kind);
        for (k, v) in &d.settings {
            let old = o
                .settings
                .iter()
                .find(|(ok, _)| ok == k)
                .map_or("", |(_, v)| v.as_str());
            if old != v {
                c.push(chg(k, &or_none(old), v));
            }
        }
        return (
            c,
            Some(format!("its {} settings changed", d.kind.to_uppercase())),
        );
    }
    let mut c = Vec::new();
    if d.master != o.master {
        c.push(chg("master", &or_none(&o.master), &d.master));
    }
    link_fields(&mut c, (o.mtu, &o.addrs, o.up), (d.mtu, &d.addrs, d.up));
    (c, None)
}

pub(super) fn endpoints(desired: &State, obs: &State, acts: &mut Acts) {
    pair(
        &desired.endpoints,
        &obs.endpoints,
        acts,
        Resource::Endpoint,
        compare_endpoint,
    );
}

pub(super) fn compare_endpoint(d: &EndpointRes, o: &EndpointRes) -> (Vec<Change>, Option<String>) {
    let unknown = |f: &str| d.unknown.iter().any(|u| u == f);
    if o.netns.is_empty() || o.ifname.is_empty() {
        return (Vec::new(), Some("its sandbox end is missing".into()));
    }
    if d.host.is_some() && o.host.is_none() {
        return (Vec::new(), Some("its host end is missing".into()));
    }
    if d.netns != o.netns {
        return (
            vec![chg("sandbox", &o.sandbox, &d.sandbox)],
            Some("it moves to another sandbox".into()),
        );
    }
    if !d.made_with.is_empty() && !o.made_with.is_empty() && d.made_with != o.made_with {
        let why = match o.made_with.strip_prefix(crate::model::BROKEN) {
            Some(verdict) => format!("its driver's plugins find it broken{verdict}"),
            None => "what its driver is told changed (addresses, MAC or ports)".into(),
        };
        return (
            vec![chg("made with", &o.made_with, &d.made_with)],
            Some(why),
        );
    }
    if d.host_ifname() != o.host_ifname() {
        return (
            vec![chg("host interface", &o.host_ifname(), &d.host_ifname())],
            Some("its interface name changed".into()),
        );
    }
    if d.ifname != o.ifname && !unknown("ifname") {
        return (
            vec![chg("interface", &o.ifname, &d.ifname)],
            Some("its interface name changed".into()),
        );
    }
    // A plugin's interface: its kind and settings are the plugin's.
    if (d.kind != o.kind && !unknown("kind")) || (d.settings != o.settings && !unknown("settings"))
    {
        let fixed = |e: &EndpointRes| {
            let s: Vec<String> = e.settings.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!("{} {}", e.kind, s.join(" "))
        };
        return (
            vec![chg("kind", &fixed(o), &fixed(d))],
            Some(format!("its {} settings changed", d.kind)),
        );
    }
    let mut c = Vec::new();
    if d.master() != o.master() {
        c.push(chg("bridge", &or_none(o.master()), &d.master()));
    }
    let hairpin = |e: &EndpointRes| e.host.as_ref().is_some_and(|h| h.hairpin);
    field(&mut c, "hairpin", &hairpin(o), &hairpin(d));
    if d.mac.is_some() && d.mac != o.mac && !unknown("mac") {
        c.push(chg(
            "mac",
            &o.mac.map(|m| fmt_mac(&m)).unwrap_or_default(),
            &d.mac.map(|m| fmt_mac(&m)).unwrap_or_default(),
        ));
    }
    // Addresses an IPAM plugin has not given yet are not compared.
    let addrs = if unknown("addrs") { &o.addrs } else { &d.addrs };
    link_fields(&mut c, (o.mtu, &o.addrs, o.up), (d.mtu, addrs, d.up));
    (c, None)
}

/// Changing an endpoint's MAC takes it down and up again, which drops its
/// routes (and IPv6 addresses): everything on it is set again.
pub(super) fn bounces(v: &EndpointRes, o: &EndpointRes) -> bool {
    v.mac.is_some() && v.mac != o.mac && !v.unknown.iter().any(|u| u == "mac")
}

/// FDB and neighbour entries; those on a device being replaced or deleted
/// go with it.
pub(super) fn entries(desired: &State, observed: &Observed, acts: &mut Acts) {
    let obs = &observed.state;
    let gone: BTreeSet<String> = acts
        .ups
        .iter()
        .chain(acts.deletes.iter())
        .filter_map(|a| match &a.resource {
            Resource::Link(l) if matches!(a.op, Op::Replace | Op::Delete) => Some(l.ifname.clone()),
            _ => None,
        })
        .collect();
    let obs_fdb: BTreeMap<_, _> = obs
        .fdb
        .iter()
        .filter(|(_, v)| !gone.contains(&v.dev))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pair(&desired.fdb, &obs_fdb, acts, Resource::Fdb, |_, _| {
        (Vec::new(), Some("its device changed".into()))
    });
    let obs_neighs: BTreeMap<_, _> = obs
        .neighs
        .iter()
        .filter(|(_, v)| !gone.contains(&v.dev))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pair(
        &desired.neighs,
        &obs_neighs,
        acts,
        Resource::Neigh,
        |d, o| {
            let mut c = Vec::new();
            if d.mac != o.mac {
                c.push(chg("mac", &fmt_mac(&o.mac), &fmt_mac(&d.mac)));
            }
            (c, None)
        },
    );
}

/// The fields links and endpoints share: MTU, addresses, up.
type LinkFields<'a> = (u32, &'a BTreeSet<ipnetwork::IpNetwork>, bool);

fn link_fields(c: &mut Vec<Change>, o: LinkFields<'_>, d: LinkFields<'_>) {
    field(c, "mtu", &o.0, &d.0);
    if d.1 != o.1 {
        c.push(chg("addresses", &list(o.1), &list(d.1)));
    }
    field(c, "up", &o.2, &d.2);
}
