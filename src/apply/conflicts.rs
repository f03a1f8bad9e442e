//! Conflicts with the rest of the host, checked while planning: what other
//! topologies applied here hold (subnets, bridge names, VNIs, published
//! host ports — from their records), and host ports a process already
//! listens on (as Docker refuses with "address already in use", cnm never
//! silently redirects a port away from a running service).

use crate::drivers::Registry;
use crate::errors::{ErrorKind, PlanError};
use crate::model::{LinkRes, State};
use crate::naming::MarkKind;
use crate::observe::listeners::{self, Listener};
use crate::spec::{Loc, PortMapping, Topology};
use crate::store::{Claims, PortClaim, Store};
use ipnetwork::IpNetwork;
use std::net::IpAddr;

/// What the desired state holds host-wide: the subnets of networks on
/// links cnm makes (their addresses, or the file's subnets for links
/// without one), link names, VNIs, published ports.
pub fn claims_of(reg: &Registry, t: &Topology, desired: &State) -> Claims {
    let mut c = Claims::default();
    for l in desired.links.values() {
        c.bridges.push(l.ifname.clone());
        for (kind, value) in driver_claims(reg, t, l) {
            c.held.entry(kind.to_string()).or_default().push(value);
        }
        if l.role == MarkKind::Network {
            c.subnets.extend(subnets_of(t, l));
        }
    }
    c.subnets
        .extend(linkless_subnets(desired).into_iter().map(|(_, s)| s));
    c.subnets.sort();
    c.subnets.dedup();
    for e in t
        .endpoints
        .values()
        .filter(|e| desired.endpoints.contains_key(&e.name))
    {
        c.ports.extend(e.ports.iter().map(port_claim));
    }
    c
}

/// What the driver of `l`'s network claims for it.
fn driver_claims(reg: &Registry, t: &Topology, l: &LinkRes) -> Vec<(&'static str, String)> {
    t.networks
        .get(&l.network)
        .and_then(|n| reg.get(&n.driver))
        .map(|d| d.claims(l))
        .unwrap_or_default()
}

/// Subnets of networks without a link of their own (macvlan, a plugin's),
/// from their endpoints' addresses here.
fn linkless_subnets(desired: &State) -> Vec<(String, IpNetwork)> {
    let mut out: Vec<(String, IpNetwork)> = desired
        .endpoints
        .values()
        .filter(|e| {
            !desired
                .links
                .contains_key(&(e.network.clone(), MarkKind::Network))
        })
        .flat_map(|e| {
            e.addrs
                .iter()
                .filter_map(|a| IpNetwork::new(a.network(), a.prefix()).ok())
                .map(|s| (e.network.clone(), s))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn subnets_of(t: &Topology, l: &LinkRes) -> Vec<IpNetwork> {
    if !l.addrs.is_empty() {
        return l
            .addrs
            .iter()
            .filter_map(|a| IpNetwork::new(a.network(), a.prefix()).ok())
            .collect();
    }
    let net = t.networks.get(&l.network);
    net.and_then(|n| n.subnet)
        .map(IpNetwork::V4)
        .into_iter()
        .chain(
            net.and_then(|n| n.ipv6.as_ref())
                .map(|v| IpNetwork::V6(v.subnet)),
        )
        .collect()
}

fn port_claim(p: &PortMapping) -> PortClaim {
    PortClaim {
        protocol: p.protocol.as_str().to_string(),
        host_ip: p.host_ip.filter(|ip| !ip.is_unspecified()),
        first: p.published.0,
        last: p.published.1,
    }
}

fn ports_meet(a: &PortClaim, b: &PortClaim) -> bool {
    let ips = match (a.host_ip, b.host_ip) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    ips && a.protocol == b.protocol && a.first <= b.last && b.first <= a.last
}

fn overlap(a: &IpNetwork, b: &IpNetwork) -> bool {
    match (a, b) {
        (IpNetwork::V4(x), IpNetwork::V4(y)) => x.contains(y.network()) || y.contains(x.network()),
        (IpNetwork::V6(x), IpNetwork::V6(y)) => x.contains(y.network()) || y.contains(x.network()),
        _ => false,
    }
}

/// Whether host port `port` of `protocol` is taken on this host: a
/// process listens on it (any address), or another applied topology
/// publishes it. Read once; for choosing host ports.
pub fn busy_ports(t: &Topology, store: &Store) -> impl Fn(crate::spec::Protocol, u16) -> bool {
    let mut claims: Vec<PortClaim> = Vec::new();
    for other in store.topologies().unwrap_or_default() {
        if other == t.name {
            continue;
        }
        if let Some(rec) = store
            .topology(&other)
            .ok()
            .and_then(|s| s.applied().ok().flatten())
        {
            claims.extend(rec.claims.ports);
        }
    }
    let listening = listeners::dump();
    move |protocol, port| {
        let proto = protocol.as_str();
        listening
            .iter()
            .any(|l| l.protocol == proto && l.port == port)
            || claims
                .iter()
                .any(|c| c.protocol == proto && c.first <= port && port <= c.last)
    }
}

/// Before any plugin is asked anything: a subnet the file gives (whatever
/// the network's driver) that overlaps one another applied topology holds
/// is a plan error.
pub fn check_file_subnets(t: &Topology, store: &Store) -> Result<(), PlanError> {
    for (other, claims) in others(t, store) {
        for net in t.networks.values() {
            let mine = net
                .subnet
                .map(IpNetwork::V4)
                .into_iter()
                .chain(net.ipv6.as_ref().map(|v| IpNetwork::V6(v.subnet)));
            for s in mine {
                if let Some(o) = claims.subnets.iter().find(|o| overlap(&s, o)) {
                    return Err(PlanError::at(
                        t,
                        net.loc,
                        format!(
                            "network {}: subnet {s} overlaps subnet {o} of topology {other}, applied on this host; choose another",
                            net.name
                        ),
                    )
                    .of_kind(ErrorKind::Host));
                }
            }
        }
    }
    Ok(())
}

/// The topology (other than `topology`) whose subnet `s` overlaps, with
/// that subnet: for a pool an IPAM plugin returns.
pub fn subnet_taken(topology: &str, s: &IpNetwork, store: &Store) -> Option<(String, IpNetwork)> {
    store
        .topologies()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| o != topology)
        .find_map(|o| {
            let rec = store.topology(&o).ok()?.applied().ok()??;
            let theirs = rec.claims.subnets.iter().find(|x| overlap(s, x))?;
            Some((o, *theirs))
        })
}

/// Every other applied topology's claims.
fn others(t: &Topology, store: &Store) -> Vec<(String, Claims)> {
    store
        .topologies()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| *o != t.name)
        .filter_map(|o| {
            let rec = store.topology(&o).ok()?.applied().ok()??;
            Some((o, rec.claims))
        })
        .collect()
}

/// Refuse what another applied topology already holds, and new host ports
/// something already listens on. `before`: what this topology held after
/// its last apply (its own ports are no conflict).
pub fn check(
    reg: &Registry,
    t: &Topology,
    desired: &State,
    before: Option<&Claims>,
    store: &Store,
) -> Result<(), PlanError> {
    let fail = |loc: Loc, message: String| PlanError::at(t, loc, message).of_kind(ErrorKind::Host);
    for other in store.topologies().unwrap_or_default() {
        if other == t.name {
            continue;
        }
        let Some(rec) = store
            .topology(&other)
            .ok()
            .and_then(|s| s.applied().ok().flatten())
        else {
            continue;
        };
        if let Some((loc, what)) = clash(reg, t, desired, &rec.claims) {
            return Err(fail(
                loc,
                format!("{what} of topology {other}, applied on this host; choose another"),
            ));
        }
    }
    let new_ports: Vec<(&crate::spec::Endpoint, &PortMapping)> = t
        .endpoints
        .values()
        .filter(|e| desired.endpoints.contains_key(&e.name))
        .flat_map(|e| e.ports.iter().map(move |p| (e, p)))
        .filter(|(_, p)| before.is_none_or(|b| !b.ports.contains(&port_claim(p))))
        .collect();
    if new_ports.is_empty() {
        return Ok(());
    }
    let listening = listeners::dump();
    for (e, p) in new_ports {
        if let Some(l) = listening.iter().find(|l| listens_on(l, p)) {
            return Err(fail(
                e.loc,
                format!(
                    "endpoint {}: host port {}/{} is already in use on this host: {} listens on {}; cnm will not take it over (pick another host port)",
                    e.name,
                    l.port,
                    l.protocol,
                    listeners::owner(l.inode).unwrap_or_else(|| "a process".into()),
                    l.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The first thing of this topology's another topology's `theirs` holds.
fn clash(reg: &Registry, t: &Topology, desired: &State, theirs: &Claims) -> Option<(Loc, String)> {
    for l in desired.links.values() {
        let loc = t
            .networks
            .get(&l.network)
            .map(|n| n.loc)
            .unwrap_or_default();
        if theirs.bridges.contains(&l.ifname) {
            return Some((
                loc,
                format!(
                    "network {}: bridge name {} is the bridge",
                    l.network, l.ifname
                ),
            ));
        }
        for (kind, value) in driver_claims(reg, t, l) {
            if theirs.holds(kind, &value) {
                return Some((
                    loc,
                    format!("network {}: {kind} {value} is the {kind}", l.network),
                ));
            }
        }
        if l.role != MarkKind::Network {
            continue;
        }
        for s in subnets_of(t, l) {
            if let Some(o) = theirs.subnets.iter().find(|o| overlap(&s, o)) {
                return Some((
                    loc,
                    format!("network {}: subnet {s} overlaps subnet {o}", l.network),
                ));
            }
        }
    }
    for (network, s) in linkless_subnets(desired) {
        if let Some(o) = theirs.subnets.iter().find(|o| overlap(&s, o)) {
            let loc = t.networks.get(&network).map(|n| n.loc).unwrap_or_default();
            return Some((
                loc,
                format!("network {network}: subnet {s} overlaps subnet {o}"),
            ));
        }
    }
    for e in t
        .endpoints
        .values()
        .filter(|e| desired.endpoints.contains_key(&e.name))
    {
        for p in &e.ports {
            let c = port_claim(p);
            if let Some(o) = theirs.ports.iter().find(|o| ports_meet(&c, o)) {
                let ip = o.host_ip.map(|i| format!("{i}:")).unwrap_or_default();
                let range = if o.first == o.last {
                    o.first.to_string()
                } else {
                    format!("{}-{}", o.first, o.last)
                };
                return Some((
                    e.loc,
                    format!(
                        "endpoint {}: host port {p} meets the published port {ip}{range}/{}",
                        e.name, o.protocol
                    ),
                ));
            }
        }
    }
    None
}

/// Whether a listener holds the host port `p` would publish.
fn listens_on(l: &Listener, p: &PortMapping) -> bool {
    if l.protocol != p.protocol.as_str() || l.port < p.published.0 || l.port > p.published.1 {
        return false;
    }
    match p.host_ip.filter(|ip| !ip.is_unspecified()) {
        None => true,
        Some(ip) => l.addr == ip || l.addr.is_unspecified() || dual_stack_any(l.addr, ip),
    }
}

/// A listener on `[::]` also takes IPv4 unless it is IPv6-only: count it.
fn dual_stack_any(listener: IpAddr, ip: IpAddr) -> bool {
    listener.is_unspecified() && listener.is_ipv6() && ip.is_ipv4()
}
