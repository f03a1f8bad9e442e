//! Verify, pure: after an apply, each object the plan touched must be as
//! planned (or gone, for deletes). What the plan did not touch is not
//! judged: drift elsewhere is the next plan's business, not this apply's
//! failure. A failure names the object and the fields that differ.

use super::objects;
use crate::model::State;
use crate::plan::{Op, Plan, Resource};
use std::collections::BTreeSet;

/// Mismatches between what `plan` meant and `after`: one line each.
pub fn check(plan: &Plan, after: &State) -> Vec<String> {
    let mut out = Vec::new();
    // Objects deleted and made again in the plan (a replaced namespace's
    // contents) are judged by their create.
    let made: BTreeSet<String> = plan
        .actions
        .iter()
        .filter(|a| a.op != Op::Delete)
        .map(|a| key(&a.resource))
        .collect();
    for a in &plan.actions {
        let found = lookup(after, &a.resource);
        match (a.op, found) {
            (Op::Delete, _) if made.contains(&key(&a.resource)) => {}
            (Op::Delete, Some(_)) if !matches!(a.resource, Resource::Sysctl(_)) => {
                out.push(format!("{}: still there", a.resource.label()));
            }
            (Op::Delete, _) => {}
            (_, None) => out.push(format!("{}: missing", a.resource.label())),
            (_, Some(o)) => {
                let fields = differences(&a.resource, &o);
                if !fields.is_empty() {
                    out.push(format!("{}: {}", a.resource.label(), fields.join("; ")));
                }
            }
        }
    }
    out
}

/// The sandboxes whose namespaces hold what `plan` touched (all, for a
/// plan that removes strays, which may be namespaces).
pub fn sandboxes_touched(plan: &Plan) -> crate::observe::Scope {
    let mut out = BTreeSet::new();
    for a in &plan.actions {
        match &a.resource {
            Resource::Namespace(n) => out.insert(n.sandbox.clone()),
            Resource::Endpoint(e) => out.insert(e.sandbox.clone()),
            Resource::Route(r) => out.insert(r.sandbox.clone()),
            Resource::File(f) => out.insert(f.sandbox.clone()),
            Resource::Dns(d) => out.insert(d.sandbox.clone()),
            Resource::Stray(_) => return crate::observe::Scope::All,
            // Host objects (the host is always read), and the resolver.
            Resource::Link(_)
            | Resource::Fdb(_)
            | Resource::Neigh(_)
            | Resource::Firewall(_)
            | Resource::Sysctl(_)
            | Resource::Plugin(_)
            | Resource::Resolver(_) => false,
        };
    }
    crate::observe::Scope::Only(out)
}

/// What identifies an object among those of its kind (its key in
/// [`State`]), with the kind.
fn key(r: &Resource) -> String {
    match r {
        Resource::Namespace(n) => format!("namespace {}", n.sandbox),
        Resource::Endpoint(e) => format!("endpoint {}", e.endpoint),
        Resource::Route(x) => format!("route {} {}", x.sandbox, x.dst),
        Resource::Plugin(p) => format!("plugin {}", p.key),
        Resource::Dns(d) => format!("dns {}", d.sandbox),
        other => other.label(),
    }
}

/// The observed object a planned one stands for.
fn lookup(s: &State, r: &Resource) -> Option<Resource> {
    Some(match r {
        Resource::Namespace(n) => Resource::Namespace(s.namespaces.get(&n.sandbox)?.clone()),
        Resource::Link(l) => Resource::Link(s.links.get(&l.key())?.clone()),
        Resource::Endpoint(e) => Resource::Endpoint(s.endpoints.get(&e.endpoint)?.clone()),
        Resource::Fdb(f) => Resource::Fdb(s.fdb.get(&(f.network.clone(), f.mac, f.dst))?.clone()),
        Resource::Neigh(n) => Resource::Neigh(s.neighs.get(&(n.network.clone(), n.ip))?.clone()),
        Resource::Route(r) => Resource::Route(s.routes.get(&(r.sandbox.clone(), r.dst))?.clone()),
        Resource::File(f) => Resource::File(s.files.get(&f.path)?.clone()),
        Resource::Firewall(_) => Resource::Firewall(s.firewall.clone()?),
        Resource::Sysctl(x) => Resource::Sysctl(s.sysctls.get(&x.key)?.clone()),
        Resource::Stray(x) => Resource::Stray(s.strays.values().find(|o| o == &x)?.clone()),
        Resource::Plugin(p) => Resource::Plugin(s.plugins.get(&p.key)?.clone()),
        Resource::Resolver(_) => Resource::Resolver(s.resolver.clone()?),
        Resource::Dns(d) => Resource::Dns(s.dns.get(&d.sandbox)?.clone()),
    })
}

/// "field: observed → planned" for each field that differs and matters.
fn differences(want: &Resource, got: &Resource) -> Vec<String> {
    let changes = match (want, got) {
        (Resource::Link(d), Resource::Link(o)) => objects::compare_link(d, o).0,
        (Resource::Endpoint(d), Resource::Endpoint(o)) => {
            let (c, replace) = objects::compare_endpoint(d, o);
            match replace {
                Some(why) if c.is_empty() => return vec![why],
                _ => c,
            }
        }
        (Resource::Firewall(d), Resource::Firewall(o)) if d.rules != o.rules || !o.intact => {
            return vec!["rules: not as written".into()];
        }
        (Resource::Firewall(d), Resource::Firewall(o)) if d.maps != o.maps => {
            return vec!["map elements: not as written".into()];
        }
        (Resource::Dns(d), Resource::Dns(o)) if d.port != o.port || !o.intact => {
            return vec![format!("rules: not as written (port {})", o.port)];
        }
        (Resource::Dns(_), Resource::Dns(_)) => Vec::new(),
        (d, o) if d == o => Vec::new(),
        _ => return vec!["differs".into()],
    };
    changes
        .iter()
        .map(|c| format!("{}: {} → {}", c.field, c.old, c.new))
        .collect()
}
