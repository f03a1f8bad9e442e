//! Interface names in sandboxes (`ethN`, kept while an endpoint exists)
//! and derived MACs that must not collide.

use crate::model::{Observed, State};
use crate::naming;
use crate::topology::{Endpoint, Loc, Topology};
use std::collections::{BTreeMap, BTreeSet};

/// Interface names inside each sandbox: an endpoint's `ifname:` when the
/// file gives one; else an endpoint that exists keeps its `ethN`; new
/// endpoints take the lowest free `ethN`, in endpoint-name order. In a borrowed namespace the names its own interfaces have are
/// not free (a Docker container's `eth0`: cnm's endpoint is `eth1`, as
/// `docker network connect` would name it).
pub(super) fn resolve_ifnames(t: &Topology, obs: &Observed) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for sb in t.sandboxes.values() {
        let netns = naming::netns_name(&t.name, &sb.name);
        let eps: Vec<&Endpoint> = t
            .endpoints_of_sandbox(&sb.name)
            .filter(|e| t.networks[&e.network].caps.interfaces)
            .collect();
        let mut used = foreign_names(t, obs, &sb.name);
        for e in &eps {
            if let Some(name) = &e.ifname {
                used.insert(name.clone());
                out.insert(e.name.clone(), name.clone());
            }
        }
        let mut pending = Vec::new();
        for e in eps.iter().filter(|e| e.ifname.is_none()) {
            let seen = match obs.state.endpoints.get(&e.name) {
                Some(v) => Some((&v.netns, &v.ifname)),
                // Not in the kernel: what was recorded (a reboot).
                None => obs
                    .host
                    .allocated
                    .endpoints
                    .get(&e.name)
                    .map(|a| (&a.netns, &a.ifname)),
            };
            let kept = seen
                .filter(|(ns, name)| {
                    **ns == netns && name.starts_with("eth") && name[3..].parse::<u32>().is_ok()
                })
                .map(|(_, name)| name.clone());
            match kept {
                Some(k) if used.insert(k.clone()) => {
                    out.insert(e.name.clone(), k);
                }
                _ => pending.push(e.name.clone()),
            }
        }
        let mut n = 0;
        for e in pending {
            while used.contains(&format!("eth{n}")) {
                n += 1;
            }
            used.insert(format!("eth{n}"));
            out.insert(e, format!("eth{n}"));
        }
    }
    out
}

/// The interface names in sandbox `sandbox`'s borrowed namespace that are
/// not this topology's (none for a namespace of cnm's own).
fn foreign_names(t: &Topology, obs: &Observed, sandbox: &str) -> BTreeSet<String> {
    let Some(Ok(found)) = obs.host.borrowed.get(sandbox) else {
        return BTreeSet::new();
    };
    found
        .links
        .iter()
        .filter(|(_, alias)| {
            !alias
                .as_deref()
                .and_then(naming::parse_mark)
                .is_some_and(|m| m.topology == t.name && m.kind == naming::MarkKind::Endpoint)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// A MAC derived from an address may collide with one given explicitly.
pub(super) fn check_derived_macs(t: &Topology, state: &State) -> Result<(), (Loc, String)> {
    let mut seen: BTreeMap<[u8; 6], &str> = BTreeMap::new();
    for v in state.endpoints.values() {
        if let Some(m) = v.mac {
            if let Some(first) = seen.insert(m, &v.endpoint) {
                let loc = t
                    .endpoints
                    .get(&v.endpoint)
                    .map(|e| e.loc)
                    .unwrap_or_default();
                return Err((
                    loc,
                    format!(
                        "endpoint {}: mac {} is also used by endpoint {first}",
                        v.endpoint,
                        naming_mac(&m)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn naming_mac(m: &[u8; 6]) -> String {
    crate::model::fmt_mac(m)
}
