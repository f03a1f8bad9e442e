//! Sandbox namespaces: their loopback and sysctls, and what they are (cnm's
//! own, or borrowed and which). A namespace that is another one now (a
//! borrowed container's started again, or `netns:` edited) is replaced,
//! and everything cnm put in it goes and comes back with it.

use super::{chg, field, list, pair, Acts};
use crate::model::{Borrowed, NamespaceRes, State};
use crate::plan::{Action, Change, Op, Resource};
use std::collections::BTreeSet;

pub(super) fn namespaces(desired: &State, obs: &State, acts: &mut Acts) {
    pair(
        &desired.namespaces,
        &obs.namespaces,
        acts,
        Resource::Namespace,
        compare,
    );
}

fn compare(d: &NamespaceRes, o: &NamespaceRes) -> (Vec<Change>, Option<String>) {
    if d.borrowed != o.borrowed {
        let show = |b: &Option<Borrowed>| {
            b.as_ref().map_or("cnm's own".to_string(), |b| {
                format!("{} (inode {})", b.from, b.ino)
            })
        };
        let reason = match (&d.borrowed, &o.borrowed) {
            (Some(x), Some(y)) if x.from == y.from => format!(
                "{} is another namespace now (its process or container started again): attach again",
                x.from
            ),
            (Some(x), Some(_)) => format!("it borrows {} now", x.from),
            (Some(x), None) => format!("it borrows {} now instead of its own", x.from),
            (None, _) => "it gets a namespace of its own instead of a borrowed one".to_string(),
        };
        return (
            vec![chg("netns", &show(&o.borrowed), &show(&d.borrowed))],
            Some(reason),
        );
    }
    let mut c = Vec::new();
    field(&mut c, "loopback up", &o.lo_up, &d.lo_up);
    // A borrowed namespace's loopback addresses are its owner's business.
    if d.lo_addrs != o.lo_addrs && d.borrowed.is_none() {
        c.push(chg(
            "loopback addresses",
            &list(&o.lo_addrs),
            &list(&d.lo_addrs),
        ));
    }
    for (k, v) in &d.sysctls {
        let old = o.sysctls.get(k).map_or("(not read)", String::as_str);
        if old != v {
            c.push(chg(&format!("sysctl {}", k.replace('/', ".")), &old, v));
        }
    }
    (c, None)
}

/// Split each replaced namespace into a delete and a create, and make the
/// endpoints and routes in it go and come back with it (they live in the
/// namespace that goes).
pub(super) fn cascade(desired: &State, obs: &State, acts: &mut Acts) {
    let replaced: BTreeSet<String> = acts
        .ups
        .iter()
        .filter(|a| a.op == Op::Replace)
        .filter_map(|a| match &a.resource {
            Resource::Namespace(n) => Some(n.sandbox.clone()),
            _ => None,
        })
        .collect();
    if replaced.is_empty() {
        return;
    }
    let inside = |r: &Resource| match r {
        Resource::Namespace(n) => replaced.contains(&n.sandbox),
        Resource::Endpoint(e) => replaced.contains(&e.sandbox),
        Resource::Route(r) => replaced.contains(&r.sandbox),
        Resource::Dns(d) => replaced.contains(&d.sandbox),
        _ => false,
    };
    let mut reasons = std::collections::BTreeMap::new();
    for a in &acts.ups {
        if let (Resource::Namespace(n), Op::Replace) = (&a.resource, a.op) {
            reasons.insert(n.sandbox.clone(), a.reason.clone());
        }
    }
    let reason = |sandbox: &str| {
        Some(format!(
            "the namespace of sandbox {sandbox} is replaced: {}",
            reasons.get(sandbox).cloned().flatten().unwrap_or_default()
        ))
    };
    let mut namespace_changes = Vec::new();
    acts.deletes.retain(|a| !inside(&a.resource));
    acts.ups.retain(|a| {
        if let (Resource::Namespace(_), Op::Replace) = (&a.resource, a.op) {
            namespace_changes.push(a.changes.clone());
        }
        !inside(&a.resource)
    });
    let push = |acts: &mut Acts, op: Op, r: Resource, sandbox: &str, changes: Vec<Change>| {
        let a = Action {
            op,
            resource: r,
            before: None,
            changes,
            reason: reason(sandbox),
        };
        match op {
            Op::Delete => acts.deletes.push(a),
            _ => acts.ups.push(a),
        }
    };
    let mut changes = namespace_changes.into_iter();
    for s in &replaced {
        if let Some(o) = obs.namespaces.get(s) {
            push(
                acts,
                Op::Delete,
                Resource::Namespace(o.clone()),
                s,
                Vec::new(),
            );
        }
        if let Some(d) = desired.namespaces.get(s) {
            let c = changes.next().unwrap_or_default();
            push(acts, Op::Create, Resource::Namespace(d.clone()), s, c);
        }
    }
    for e in obs
        .endpoints
        .values()
        .filter(|e| replaced.contains(&e.sandbox))
    {
        push(
            acts,
            Op::Delete,
            Resource::Endpoint(e.clone()),
            &e.sandbox,
            Vec::new(),
        );
    }
    for e in desired
        .endpoints
        .values()
        .filter(|e| replaced.contains(&e.sandbox))
    {
        push(
            acts,
            Op::Create,
            Resource::Endpoint(e.clone()),
            &e.sandbox,
            Vec::new(),
        );
    }
    for r in obs
        .routes
        .values()
        .filter(|r| replaced.contains(&r.sandbox))
    {
        push(
            acts,
            Op::Delete,
            Resource::Route(r.clone()),
            &r.sandbox,
            Vec::new(),
        );
    }
    for r in desired
        .routes
        .values()
        .filter(|r| replaced.contains(&r.sandbox))
    {
        push(
            acts,
            Op::Create,
            Resource::Route(r.clone()),
            &r.sandbox,
            Vec::new(),
        );
    }
    // The old namespace's table goes with it; the new one gets its own.
    for d in desired
        .dns
        .values()
        .filter(|d| replaced.contains(&d.sandbox))
    {
        push(
            acts,
            Op::Create,
            Resource::Dns(d.clone()),
            &d.sandbox,
            Vec::new(),
        );
    }
}
