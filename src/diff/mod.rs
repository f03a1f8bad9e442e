//! Desired × observed → an ordered [`Plan`]. Pure and deterministic: no
//! kernel access, so it is tested with plain values and golden snapshots.
//!
//! Order: deletes first, dependents before what they depend on (files,
//! routes, endpoints, links, namespaces); then creates, updates and
//! replaces in dependency order (namespaces, links, endpoints, routes,
//! files).

mod checks;
mod namespaces;
mod objects;
pub mod verify;

use crate::errors::PlanError;
use crate::model::{Observed, State};
use crate::plan::{Action, Change, Op, Plan, Resource};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

/// Actions so far: deletes and everything else.
pub(crate) struct Acts {
    deletes: Vec<Action>,
    ups: Vec<Action>,
}

/// The version of the plan's JSON form (see the README).
pub const FORMAT_VERSION: u32 = 2;

pub fn diff(
    topology: &str,
    file: &str,
    desired: &State,
    observed: &Observed,
) -> Result<Plan, PlanError> {
    let obs = &observed.state;
    let fail = |message: String| PlanError::of_file(file, message);
    checks::check_foreign(topology, desired, observed).map_err(fail)?;
    let mut acts = Acts {
        deletes: Vec::new(),
        ups: Vec::new(),
    };
    namespaces::namespaces(desired, obs, &mut acts);
    pair(
        &BTreeMap::new(),
        &obs.strays,
        &mut acts,
        Resource::Stray,
        |_, _| (Vec::new(), None),
    );
    objects::plugins(desired, obs, &mut acts);
    objects::links(desired, obs, &mut acts);
    objects::endpoints(desired, obs, &mut acts);
    objects::plugin_cascade(desired, obs, &mut acts);
    objects::entries(desired, observed, &mut acts);
    routes(desired, obs, &mut acts);
    firewall(desired, obs, &mut acts);
    sysctls(desired, obs, &mut acts);
    pair(
        &desired.files,
        &obs.files,
        &mut acts,
        Resource::File,
        |d, o| {
            if d.content == o.content {
                return (Vec::new(), None);
            }
            let lines = |s: &str| format!("{} lines", s.lines().count());
            (
                vec![chg("content", &lines(&o.content), &lines(&d.content))],
                None,
            )
        },
    );
    pair(&desired.dns, &obs.dns, &mut acts, Resource::Dns, |d, o| {
        if !o.intact {
            (
                vec![chg("rules", &"changed by hand", &"as cnm writes them")],
                None,
            )
        } else if d.port != o.port {
            (vec![chg("port", &o.port, &d.port)], None)
        } else {
            (Vec::new(), None)
        }
    });
    namespaces::cascade(desired, obs, &mut acts);
    resolver(desired, obs, &mut acts);

    // Stable order: by kind rank (reversed for deletes), then by key order
    // (the maps iterate sorted, and sort_by_key is stable).
    let Acts {
        mut deletes,
        mut ups,
    } = acts;
    deletes.sort_by_key(|a| std::cmp::Reverse(a.resource.rank()));
    ups.sort_by_key(|a| a.resource.rank());
    deletes.extend(ups);
    Ok(Plan {
        format_version: FORMAT_VERSION,
        topology: topology.to_string(),
        actions: deletes,
        notes: Vec::new(),
    })
}

/// Default routes, and routes set again where an interface loses them:
/// removing an interface's last address in a subnet, making it again, or
/// deleting it while another takes its name, drops the routes through it.
fn routes(desired: &State, obs: &State, acts: &mut Acts) {
    pair(
        &desired.routes,
        &obs.routes,
        acts,
        Resource::Route,
        |d, o| {
            let mut c = Vec::new();
            let gw = |g: &Option<std::net::IpAddr>| g.map_or("none".to_string(), |g| g.to_string());
            if d.gateway != o.gateway {
                c.push(chg("gateway", &gw(&o.gateway), &gw(&d.gateway)));
            }
            field(&mut c, "dev", &o.dev, &d.dev);
            (c, None)
        },
    );
    // An interface deleted here takes its routes along, even when another
    // endpoint's interface comes back under its name in the same plan.
    let deleted = acts.deletes.iter().filter_map(|a| match &a.resource {
        Resource::Endpoint(o) if !o.ifname.is_empty() => {
            let why = format!("set again: {} is created again", o.ifname);
            Some((o.sandbox.clone(), o.ifname.clone(), why))
        }
        _ => None,
    });
    let readdressed: Vec<(String, String, String)> = acts
        .ups
        .iter()
        .filter_map(|a| match (&a.resource, &a.before) {
            (Resource::Endpoint(v), Some(Resource::Endpoint(o)))
                if a.op == Op::Update && (v.addrs != o.addrs || objects::bounces(v, o)) =>
            {
                let why = format!("set again: the addresses of {} change", v.ifname);
                Some((v.sandbox.clone(), v.ifname.clone(), why))
            }
            (Resource::Endpoint(v), _) if a.op == Op::Replace => {
                let why = format!("set again: {} is created again", v.ifname);
                Some((v.sandbox.clone(), v.ifname.clone(), why))
            }
            _ => None,
        })
        .chain(deleted)
        .collect();
    for (key, r) in &desired.routes {
        let touched = acts.ups.iter().any(
            |a| matches!(&a.resource, Resource::Route(x) if x.sandbox == r.sandbox && x.dst == key.1),
        );
        let why = readdressed
            .iter()
            .find(|(s, dev, _)| *s == r.sandbox && *dev == r.dev)
            .map(|(.., why)| why.clone());
        if let (false, Some(why), Some(o)) = (touched, why, obs.routes.get(key)) {
            acts.ups.push(Action {
                op: Op::Update,
                resource: Resource::Route(r.clone()),
                before: Some(Resource::Route(o.clone())),
                changes: Vec::new(),
                reason: Some(why),
            });
        }
    }
}

/// The firewall: one object, replaced whole by an apply, or changed by
/// map elements alone when only those differ.
fn firewall(desired: &State, obs: &State, acts: &mut Acts) {
    let fw = |f: &Option<crate::model::FirewallRes>| {
        f.iter()
            .map(|f| ((), f.clone()))
            .collect::<BTreeMap<(), _>>()
    };
    pair(
        &fw(&desired.firewall),
        &fw(&obs.firewall),
        acts,
        Resource::Firewall,
        |d, o| {
            let mut c = Vec::new();
            if d.rules != o.rules {
                c.push(chg(
                    "rules",
                    &crate::plan::rules(o.rules.len()),
                    &crate::plan::rules(d.rules.len()),
                ));
            }
            if d.maps != o.maps {
                c.push(chg(
                    "map elements",
                    &crate::plan::elements(o.elements()),
                    &crate::plan::elements(d.elements()),
                ));
            }
            if d.bridge_table != o.bridge_table {
                c.push(chg("bridge table", &o.bridge_table, &d.bridge_table));
            }
            if !o.intact {
                c.push(chg("state", &"edited outside cnm", &"as cnm writes it"));
            }
            (c, None)
        },
    );
}

/// The embedded resolver: given the topology's names, running, and
/// serving them in the namespaces as they are after this plan.
fn resolver(desired: &State, obs: &State, acts: &mut Acts) {
    let one = |r: &Option<crate::model::ResolverRes>| {
        r.iter()
            .map(|r| ((), r.clone()))
            .collect::<BTreeMap<(), _>>()
    };
    pair(
        &one(&desired.resolver),
        &one(&obs.resolver),
        acts,
        Resource::Resolver,
        |d, o| {
            let mut c = Vec::new();
            if d.config != o.config {
                let names = |r: &crate::model::ResolverRes| {
                    format!("{} sandboxes, {} names", r.sandboxes, r.names)
                };
                let (old, mut new) = (names(o), names(d));
                if old == new {
                    new.push_str(" (changed)");
                }
                c.push(chg("names", &old, &new));
            }
            if !o.running {
                c.push(chg("process", &"not running", &"running"));
            } else if !o.current && d.config == o.config {
                // Running, but not serving the namespaces as they are now.
                c.push(chg("serving", &"out of date", &"current"));
            }
            (c, None)
        },
    );
    // A namespace made (again) in this plan needs sockets bound inside it
    // even when no name changes.
    let Some(d) = &desired.resolver else {
        return;
    };
    let remade: Vec<String> = acts
        .ups
        .iter()
        .filter(|a| matches!(a.op, Op::Create | Op::Replace))
        .filter_map(|a| match &a.resource {
            Resource::Namespace(n) => Some(n.sandbox.clone()),
            _ => None,
        })
        .collect();
    let planned = acts
        .ups
        .iter()
        .any(|a| matches!(a.resource, Resource::Resolver(_)));
    if let (false, Some(first), Some(o)) = (planned, remade.first(), &obs.resolver) {
        acts.ups.push(action(
            Op::Update,
            Resource::Resolver(d.clone()),
            Some(Resource::Resolver(o.clone())),
            Vec::new(),
            Some(format!(
                "listen again: the namespace of sandbox {first} is made again"
            )),
        ));
    }
}

/// Sysctls cnm needs; never reset (other software may rely on them).
fn sysctls(desired: &State, obs: &State, acts: &mut Acts) {
    for (k, d) in &desired.sysctls {
        match obs.sysctls.get(k) {
            Some(o) if o == d => {}
            before => acts.ups.push(Action {
                op: if before.is_some() {
                    Op::Update
                } else {
                    Op::Create
                },
                resource: Resource::Sysctl(d.clone()),
                before: before.cloned().map(Resource::Sysctl),
                changes: before
                    .map(|o| vec![chg("value", &o.value, &d.value)])
                    .unwrap_or_default(),
                reason: None,
            }),
        }
    }
}

/// Compare one map of resources. `compare` returns the field changes and,
/// when the object must be recreated, the reason.
fn pair<K: Ord, T: Clone + PartialEq>(
    desired: &BTreeMap<K, T>,
    observed: &BTreeMap<K, T>,
    acts: &mut Acts,
    wrap: impl Fn(T) -> Resource,
    compare: impl Fn(&T, &T) -> (Vec<Change>, Option<String>),
) {
    for (k, o) in observed {
        if !desired.contains_key(k) {
            acts.deletes
                .push(action(Op::Delete, wrap(o.clone()), None, Vec::new(), None));
        }
    }
    for (k, d) in desired {
        match observed.get(k) {
            None => acts
                .ups
                .push(action(Op::Create, wrap(d.clone()), None, Vec::new(), None)),
            Some(o) if o == d => {}
            Some(o) => {
                let (changes, replace) = compare(d, o);
                let op = if replace.is_some() {
                    Op::Replace
                } else {
                    Op::Update
                };
                if op == Op::Update && changes.is_empty() {
                    continue; // differs only where the file does not care (e.g. a random MAC)
                }
                acts.ups.push(action(
                    op,
                    wrap(d.clone()),
                    Some(wrap(o.clone())),
                    changes,
                    replace,
                ));
            }
        }
    }
}

fn action(
    op: Op,
    resource: Resource,
    before: Option<Resource>,
    changes: Vec<Change>,
    reason: Option<String>,
) -> Action {
    Action {
        op,
        resource,
        before,
        changes,
        reason,
    }
}

fn field<T: PartialEq + Display>(c: &mut Vec<Change>, name: &str, old: &T, new: &T) {
    if old != new {
        c.push(chg(name, old, new));
    }
}

fn chg(field: &str, old: &dyn Display, new: &dyn Display) -> Change {
    Change {
        field: field.to_string(),
        old: old.to_string(),
        new: new.to_string(),
    }
}

fn list<T: Display>(items: &BTreeSet<T>) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "(none)".into()
    } else {
        s.to_string()
    }
}
