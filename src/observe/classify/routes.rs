//! Routes: those cnm keeps in its namespaces, and the destinations routed
//! on the host (which the default address pools must avoid).

use super::{OwnedNs, TempLinks};
use crate::model::{RouteRes, State};
use crate::observe::kernel::NsView;
use ipnetwork::IpNetwork;

/// Routes of the namespace's main table on cnm's interfaces (loopback and
/// marked interfaces), except what the kernel makes itself (connected
/// routes, IPv6 link-local and multicast, router advertisements). Routes on
/// interfaces someone else added to the namespace are theirs.
pub fn of_sandbox(ns: &OwnedNs, topology: &str, state: &mut State) {
    let prefix = format!("cnm:{topology}:endpoint:");
    let table = &ns.view.table;
    let ours = |i: u32| {
        table.links.get(&i).is_some_and(|l| {
            l.name == "lo" || l.alias.as_deref().is_some_and(|a| a.starts_with(&prefix))
        })
    };
    for r in ns.view.routes.iter().filter(|r| !r.by_kernel) {
        let Some(idx) = r.oif.filter(|i| ours(*i)) else {
            continue;
        };
        if kernel_made(&r.dst) {
            continue;
        }
        let dev = table
            .links
            .get(&idx)
            .map(|l| l.name.clone())
            .unwrap_or_default();
        state
            .routes
            .entry((ns.sandbox.clone(), r.dst))
            .or_insert(RouteRes {
                sandbox: ns.sandbox.clone(),
                netns: ns.netns.clone(),
                dst: r.dst,
                gateway: r.gateway,
                dev,
            });
    }
}

/// IPv6 link-local and multicast destinations: the kernel's own.
fn kernel_made(dst: &IpNetwork) -> bool {
    match dst {
        IpNetwork::V6(n) => {
            let first = n.ip().segments()[0];
            first & 0xffc0 == 0xfe80 || first & 0xff00 == 0xff00
        }
        IpNetwork::V4(n) => n.ip().is_multicast(),
    }
}

/// Destinations routed on the host, except through links the topology
/// owns or left under a temporary name (default routes and IPv6
/// link-local left out).
pub fn routed_subnets(host: &NsView, topology: &str, temp: &TempLinks) -> Vec<IpNetwork> {
    let owned = |i: u32| {
        host.table.links.get(&i).is_some_and(|l| {
            super::links::mark_of(l, topology).is_some() || temp.host.contains_key(&l.name)
        })
    };
    host.routes
        .iter()
        .filter(|r| r.dst.prefix() != 0 && !r.oif.is_some_and(owned))
        .map(|r| r.dst)
        .filter(|d| !matches!(d, IpNetwork::V6(n) if n.ip().segments()[0] & 0xffc0 == 0xfe80))
        .collect()
}
