//! Sandbox namespaces: their loopback and sysctls, and what they are (cnm's
//! own, or borrowed and which). A namespace that is another one now (a
//! borrowed container's started again, or `netns:` edited) is replaced,
//! and everything cnm put in it goes and comes back with it.

use super::{chg, field, list, pair, Acts};
use crate::model::{Borrowed, NamespaceRes, State};
use crate::plan::{Action, Change, Op, Resource};
use std::collections::BTreeMap;

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
    let reasons: BTreeMap<String, Option<String>> = acts
        .ups
        .iter()
        .filter(|a| a.op == Op::Replace)
        .filter_map(|a| match &a.resource {
            Resource::Namespace(n) => Some((n.sandbox.clone(), a.reason.clone())),
            _ => None,
        })
        .collect();
    if reasons.is_empty() {
        return;
    }
    let replaced = |sandbox: &str| reasons.contains_key(sandbox);
    let inside = |r: &Resource| match r {
        Resource::Namespace(n) => replaced(&n.sandbox),
        Resource::Endpoint(e) => replaced(&e.sandbox),
        Resource::Route(r) => replaced(&r.sandbox),
        Resource::Dns(d) => replaced(&d.sandbox),
        _ => false,
    };
    let mut namespace_changes = Vec::new();
    acts.deletes.retain(|a| !inside(&a.resource));
    acts.ups.retain(|a| {
        if let (Resource::Namespace(_), Op::Replace) = (&a.resource, a.op) {
            namespace_changes.push(a.changes.clone());
        }
        !inside(&a.resource)
    });
    let mut changes = namespace_changes.into_iter();
    let mut moves: Vec<(Op, Resource, Vec<Change>)> = Vec::new();
    for s in reasons.keys() {
        if let Some(o) = obs.namespaces.get(s) {
            moves.push((Op::Delete, Resource::Namespace(o.clone()), Vec::new()));
        }
        if let Some(d) = desired.namespaces.get(s) {
            let c = changes.next().unwrap_or_default();
            moves.push((Op::Create, Resource::Namespace(d.clone()), c));
        }
    }
    moves.extend(inside_replaced(desired, obs, &replaced));
    for (op, resource, changes) in moves {
        let sandbox = sandbox_of(&resource);
        let a = Action {
            op,
            resource,
            before: None,
            changes,
            reason: Some(format!(
                "the namespace of sandbox {sandbox} is replaced: {}",
                reasons.get(&sandbox).cloned().flatten().unwrap_or_default()
            )),
        };
        match op {
            Op::Delete => acts.deletes.push(a),
            _ => acts.ups.push(a),
        }
    }
}

/// What lives in a replaced namespace: its endpoints and routes go with
/// the old one and come back in the new one; the old namespace's port 53
/// table goes with it, and the new one gets its own.
fn inside_replaced(
    desired: &State,
    obs: &State,
    replaced: &dyn Fn(&str) -> bool,
) -> Vec<(Op, Resource, Vec<Change>)> {
    let gone = obs
        .endpoints
        .values()
        .filter(|e| replaced(&e.sandbox))
        .map(|e| (Op::Delete, Resource::Endpoint(e.clone())))
        .chain(
            obs.routes
                .values()
                .filter(|r| replaced(&r.sandbox))
                .map(|r| (Op::Delete, Resource::Route(r.clone()))),
        );
    let back = desired
        .endpoints
        .values()
        .filter(|e| replaced(&e.sandbox))
        .map(|e| (Op::Create, Resource::Endpoint(e.clone())))
        .chain(
            desired
                .routes
                .values()
                .filter(|r| replaced(&r.sandbox))
                .map(|r| (Op::Create, Resource::Route(r.clone()))),
        )
        .chain(
            desired
                .dns
                .values()
                .filter(|d| replaced(&d.sandbox))
                .map(|d| (Op::Create, Resource::Dns(d.clone()))),
        );
    gone.chain(back)
        .map(|(op, r)| (op, r, Vec::new()))
        .collect()
}

/// The sandbox a namespace, endpoint, route or port 53 table is in.
fn sandbox_of(r: &Resource) -> String {
    match r {
        Resource::Namespace(n) => n.sandbox.clone(),
        Resource::Endpoint(e) => e.sandbox.clone(),
        Resource::Route(r) => r.sandbox.clone(),
        Resource::Dns(d) => d.sandbox.clone(),
        _ => String::new(),
    }
}
