//! Desired × observed → an ordered [`Plan`]. Pure and deterministic: no
//! kernel access, so it is tested with plain values and golden snapshots.
//!
//! Order: deletes first, dependents before what they depend on (files,
//! routes, veths, bridges, namespaces); then creates, updates and replaces
//! in dependency order (namespaces, bridges, veths, routes, files).

use crate::desired::PlanError;
use crate::model::{fmt_mac, HostFacts, Observed, State};
use crate::naming::{self, MarkKind};
use crate::plan::{Action, Change, Op, Plan, Resource};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

pub fn diff(
    topology: &str,
    file: &str,
    desired: &State,
    observed: &Observed,
) -> Result<Plan, PlanError> {
    let obs = &observed.state;
    let host = &observed.host;
    let fail = |message: String| PlanError {
        file: file.to_string(),
        loc: None,
        message,
    };
    let mut deletes: Vec<Action> = Vec::new();
    let mut ups: Vec<Action> = Vec::new();

    // Namespaces.
    pair(
        &desired.namespaces,
        &obs.namespaces,
        &mut deletes,
        &mut ups,
        Resource::Namespace,
        |d, o| {
            let mut c = Vec::new();
            field(&mut c, "loopback up", &o.lo_up, &d.lo_up);
            if d.lo_addrs != o.lo_addrs {
                c.push(chg(
                    "loopback addresses",
                    &list(&o.lo_addrs),
                    &list(&d.lo_addrs),
                ));
            }
            (c, None)
        },
    );
    check_foreign(desired, observed).map_err(fail)?;
    pair(
        &BTreeMap::new(),
        &obs.strays,
        &mut deletes,
        &mut ups,
        Resource::Stray,
        |_, _| (Vec::new(), None),
    );

    // Bridges.
    pair(
        &desired.bridges,
        &obs.bridges,
        &mut deletes,
        &mut ups,
        Resource::Bridge,
        |d, o| {
            if d.ifname != o.ifname {
                return (
                    vec![chg("name", &o.ifname, &d.ifname)],
                    Some("the bridge name changed".into()),
                );
            }
            let mut c = Vec::new();
            link_fields(
                &mut c,
                (o.mtu, &o.addrs, o.up, o.marked),
                (d.mtu, &d.addrs, d.up, d.marked),
            );
            (c, None)
        },
    );
    for b in desired.bridges.values() {
        if obs
            .bridges
            .get(&b.network)
            .is_none_or(|o| o.ifname != b.ifname)
        {
            check_link_name(topology, host, &b.ifname, MarkKind::Network, &b.network)
                .map_err(fail)?;
        }
    }

    // Veths.
    pair(
        &desired.veths,
        &obs.veths,
        &mut deletes,
        &mut ups,
        Resource::Veth,
        |d, o| {
            if o.netns.is_empty() || o.ifname.is_empty() {
                return (Vec::new(), Some("its sandbox end is missing".into()));
            }
            if d.netns != o.netns {
                return (
                    vec![chg("sandbox", &o.sandbox, &d.sandbox)],
                    Some("it moves to another sandbox".into()),
                );
            }
            if d.host_ifname != o.host_ifname {
                return (
                    vec![chg("host interface", &o.host_ifname, &d.host_ifname)],
                    Some("its interface name changed".into()),
                );
            }
            if d.ifname != o.ifname {
                return (
                    vec![chg("interface", &o.ifname, &d.ifname)],
                    Some("its interface name changed".into()),
                );
            }
            let mut c = Vec::new();
            if d.bridge != o.bridge {
                c.push(chg("bridge", &or_none(&o.bridge), &d.bridge));
            }
            field(&mut c, "hairpin", &o.hairpin, &d.hairpin);
            if d.mac.is_some() && d.mac != o.mac {
                c.push(chg(
                    "mac",
                    &o.mac.map(|m| fmt_mac(&m)).unwrap_or_default(),
                    &d.mac.map(|m| fmt_mac(&m)).unwrap_or_default(),
                ));
            }
            link_fields(
                &mut c,
                (o.mtu, &o.addrs, o.up, o.marked),
                (d.mtu, &d.addrs, d.up, d.marked),
            );
            (c, None)
        },
    );
    for v in desired.veths.values() {
        if obs
            .veths
            .get(&v.endpoint)
            .is_none_or(|o| o.host_ifname != v.host_ifname)
        {
            check_link_name(
                topology,
                host,
                &v.host_ifname,
                MarkKind::Endpoint,
                &v.endpoint,
            )
            .map_err(fail)?;
        }
    }

    // VXLAN devices; their FDB and neighbour entries die with them.
    pair(
        &desired.vxlans,
        &obs.vxlans,
        &mut deletes,
        &mut ups,
        Resource::Vxlan,
        |d, o| {
            let mut fixed = Vec::new();
            field(&mut fixed, "name", &o.ifname, &d.ifname);
            field(&mut fixed, "vni", &o.vni, &d.vni);
            field(&mut fixed, "local", &o.local, &d.local);
            field(&mut fixed, "port", &o.port, &d.port);
            field(&mut fixed, "learning", &o.learning, &d.learning);
            field(&mut fixed, "arp proxy", &o.proxy, &d.proxy);
            if !fixed.is_empty() {
                return (fixed, Some("its VXLAN settings changed".into()));
            }
            let mut c = Vec::new();
            if d.bridge != o.bridge {
                c.push(chg("bridge", &or_none(&o.bridge), &d.bridge));
            }
            field(&mut c, "mtu", &o.mtu, &d.mtu);
            field(&mut c, "up", &o.up, &d.up);
            field(&mut c, "ownership mark", &o.marked, &d.marked);
            (c, None)
        },
    );
    for x in desired.vxlans.values() {
        if obs
            .vxlans
            .get(&x.network)
            .is_none_or(|o| o.ifname != x.ifname)
        {
            check_link_name(topology, host, &x.ifname, MarkKind::Vtep, &x.network).map_err(fail)?;
        }
    }
    // Entries on a device being replaced or deleted go with it.
    let gone: BTreeSet<String> = ups
        .iter()
        .chain(deletes.iter())
        .filter_map(|a| match &a.resource {
            Resource::Vxlan(x) if matches!(a.op, Op::Replace | Op::Delete) => {
                Some(x.network.clone())
            }
            _ => None,
        })
        .collect();
    let survivors = |net: &str| !gone.contains(net);
    let obs_fdb: BTreeMap<_, _> = obs
        .fdb
        .iter()
        .filter(|(k, _)| survivors(&k.0))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pair(
        &desired.fdb,
        &obs_fdb,
        &mut deletes,
        &mut ups,
        Resource::Fdb,
        |_, _| (Vec::new(), Some("its device changed".into())),
    );
    let obs_neighs: BTreeMap<_, _> = obs
        .neighs
        .iter()
        .filter(|(k, _)| survivors(&k.0))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pair(
        &desired.neighs,
        &obs_neighs,
        &mut deletes,
        &mut ups,
        Resource::Neigh,
        |d, o| {
            let mut c = Vec::new();
            if d.mac != o.mac {
                c.push(chg("mac", &fmt_mac(&o.mac), &fmt_mac(&d.mac)));
            }
            (c, None)
        },
    );

    // Routes.
    pair(
        &desired.routes,
        &obs.routes,
        &mut deletes,
        &mut ups,
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

    // Removing an interface's last address in a subnet makes the kernel drop
    // the routes through it, so a route on an interface whose addresses
    // change is set again even when it is otherwise unchanged.
    // A veth created again takes its routes with it: they are set again too.
    let readdressed: Vec<(String, String, String)> = ups
        .iter()
        .filter_map(|a| match (&a.resource, &a.before) {
            (Resource::Veth(v), Some(Resource::Veth(o)))
                if a.op == Op::Update && (v.addrs != o.addrs || bounces(v, o)) =>
            {
                let why = format!("set again: the addresses of {} change", v.ifname);
                Some((v.sandbox.clone(), v.ifname.clone(), why))
            }
            (Resource::Veth(v), _) if a.op == Op::Replace => {
                let why = format!("set again: {} is created again", v.ifname);
                Some((v.sandbox.clone(), v.ifname.clone(), why))
            }
            _ => None,
        })
        .collect();
    for (key, r) in &desired.routes {
        let touched = ups.iter().any(
            |a| matches!(&a.resource, Resource::Route(x) if x.sandbox == r.sandbox && x.dst == key.1),
        );
        let why = readdressed
            .iter()
            .find(|(s, dev, _)| *s == r.sandbox && *dev == r.dev)
            .map(|(.., why)| why.clone());
        if let (false, Some(why), Some(o)) = (touched, why, obs.routes.get(key)) {
            ups.push(Action {
                op: Op::Update,
                resource: Resource::Route(r.clone()),
                before: Some(Resource::Route(o.clone())),
                changes: Vec::new(),
                reason: Some(why),
            });
        }
    }

    // Firewall: one object, replaced whole by each apply.
    let fw = |f: &Option<crate::model::FirewallRes>| {
        f.iter()
            .map(|f| ((), f.clone()))
            .collect::<BTreeMap<(), _>>()
    };
    pair(
        &fw(&desired.firewall),
        &fw(&obs.firewall),
        &mut deletes,
        &mut ups,
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
            if d.bridge_table != o.bridge_table {
                c.push(chg("bridge table", &o.bridge_table, &d.bridge_table));
            }
            if !o.intact {
                c.push(chg("state", &"edited outside cnm", &"as cnm writes it"));
            }
            (c, None)
        },
    );

    // Sysctls cnm needs; never reset (other software may rely on them).
    for (k, d) in &desired.sysctls {
        match obs.sysctls.get(k) {
            Some(o) if o == d => {}
            before => ups.push(Action {
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

    // Files.
    pair(
        &desired.files,
        &obs.files,
        &mut deletes,
        &mut ups,
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

    // Stable order: by kind rank (reversed for deletes), then by key order
    // (the maps iterate sorted, and sort_by_key is stable).
    deletes.sort_by_key(|a| std::cmp::Reverse(a.resource.rank()));
    ups.sort_by_key(|a| a.resource.rank());
    deletes.extend(ups);
    Ok(Plan {
        format_version: 1,
        topology: topology.to_string(),
        actions: deletes,
    })
}

/// Compare one map of resources. `compare` returns the field changes and,
/// when the object must be recreated, the reason.
fn pair<K: Ord, T: Clone + PartialEq>(
    desired: &BTreeMap<K, T>,
    observed: &BTreeMap<K, T>,
    deletes: &mut Vec<Action>,
    ups: &mut Vec<Action>,
    wrap: impl Fn(T) -> Resource,
    compare: impl Fn(&T, &T) -> (Vec<Change>, Option<String>),
) {
    for (k, o) in observed {
        if !desired.contains_key(k) {
            deletes.push(Action {
                op: Op::Delete,
                resource: wrap(o.clone()),
                before: None,
                changes: Vec::new(),
                reason: None,
            });
        }
    }
    for (k, d) in desired {
        match observed.get(k) {
            None => ups.push(Action {
                op: Op::Create,
                resource: wrap(d.clone()),
                before: None,
                changes: Vec::new(),
                reason: None,
            }),
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
                ups.push(Action {
                    op,
                    resource: wrap(d.clone()),
                    before: Some(wrap(o.clone())),
                    changes,
                    reason: replace,
                });
            }
        }
    }
}

/// Changing a veth's MAC takes it down and up again, which drops its routes
/// (and IPv6 addresses): everything on it is set again.
fn bounces(v: &crate::model::VethRes, o: &crate::model::VethRes) -> bool {
    v.mac.is_some() && v.mac != o.mac
}

/// Names cnm needs that something else holds: a namespace, a file cnm
/// must not write (a link, a foreign file), a firewall table. Each is a
/// plan error; nothing foreign is ever taken over.
fn check_foreign(desired: &State, observed: &Observed) -> Result<(), String> {
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
    for f in desired.files.values() {
        if let Some(why) = host.blocked_paths.get(&f.path) {
            return Err(format!("sandbox {}: {why}", f.sandbox));
        }
    }
    if desired.firewall.is_some() {
        if let Some(t) = host.foreign_tables.first() {
            return Err(format!(
                "nftables table {t} already exists and cnm did not create it; cnm will not touch it: remove it or rename the topology"
            ));
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
        MarkKind::Vtep => format!("network {name} (its vxlan device)"),
        MarkKind::Sandbox => format!("sandbox {name}"),
    };
    match host.links.get(ifname) {
        None => Ok(()),
        Some(Some(mark)) if naming::parse_mark(mark).is_some_and(|m| m.topology == topology) => Ok(()),
        Some(Some(mark)) => Err(format!("{what}: interface {ifname} already exists and belongs to something else ({mark}); cnm will not touch it")),
        Some(None) => Err(format!("{what}: interface {ifname} already exists and cnm does not own it; remove it or choose another name")),
    }
}

/// The fields bridges and veths share: MTU, addresses, up, ownership mark.
type LinkFields<'a> = (u32, &'a BTreeSet<ipnetwork::IpNetwork>, bool, bool);

fn link_fields(c: &mut Vec<Change>, o: LinkFields<'_>, d: LinkFields<'_>) {
    field(c, "mtu", &o.0, &d.0);
    if d.1 != o.1 {
        c.push(chg("addresses", &list(o.1), &list(d.1)));
    }
    field(c, "up", &o.2, &d.2);
    field(c, "ownership mark", &o.3, &d.3);
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
