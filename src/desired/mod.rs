//! Topology × what exists → the desired [`State`]. Pure.
//!
//! The engine decides what every sandbox needs whatever its networks
//! (namespace, addresses, interface names, default routes, hosts and
//! resolv.conf files); each network's driver adds its own objects and
//! firewall rules. IPAM lives here because its answers depend on what
//! already exists (see `addressing`).

mod addressing;
mod dns;
mod files;
pub mod host_ports;
mod hosts;
mod ifnames;
mod incremental;
mod ipam_plugins;
mod routes;
mod sandboxes;
mod subnets;

use crate::drivers::{Addressing, FirewallCtx, Learned, NetworkCtx, Registry, ResolvedEndpoint};
use crate::model::{FirewallRes, NamespaceRes, Observed, State};
use crate::naming;
use crate::topology::{Host, Loc, Topology};
use ipnetwork::{Ipv4Network, Ipv6Network};
use std::collections::BTreeMap;

pub use crate::errors::PlanError;
use dns::{dns_redirects, resolver_config};
pub use hosts::host_found_by_address;
use hosts::this_host;
pub use incremental::Incremental;
pub use routes::gateway_endpoint;

/// Addresses chosen for one endpoint.
#[derive(Debug, Clone, Default, Hash)]
pub(crate) struct EndpointAddr {
    v4: Option<Ipv4Network>,
    v6: Option<Ipv6Network>,
}

/// The desired state of `full` on this machine, with cnm's drivers and no
/// values learned by them.
pub fn build(full: &Topology, obs: &Observed) -> Result<State, PlanError> {
    build_with(Registry::builtin(), full, obs, &BTreeMap::new())
}

/// The desired state of `full` on this machine. `learned`: values drivers
/// returned on earlier applies, by endpoint.
pub fn build_with(
    reg: &Registry,
    full: &Topology,
    obs: &Observed,
    learned: &BTreeMap<String, Learned>,
) -> Result<State, PlanError> {
    build_reusing(reg, full, obs, learned, None)
}

/// [`build_with`], reusing what `memo` kept of the last build of the same
/// topology where its inputs are unchanged (and keeping this one's).
pub fn build_reusing(
    reg: &Registry,
    full: &Topology,
    obs: &Observed,
    learned: &BTreeMap<String, Learned>,
    memo: Option<&mut Incremental>,
) -> Result<State, PlanError> {
    let err = |(loc, message): (Loc, String)| PlanError::at(full, loc, message);
    // A multi-host file: this machine realizes its own share only.
    let me = this_host(full, obs)?;
    let share;
    let t: &Topology = match me {
        Some(h) => {
            share = full.share_of(&h.name);
            &share
        }
        None => full,
    };
    let mut p = Plan::resolve(reg, full, t, me, obs).map_err(err)?;
    p.learned_addresses(learned);
    let mut state = State::default();
    add_namespaces(t, obs, &mut state).map_err(err)?;
    add_network_objects(reg, &p, learned, &mut state).map_err(err)?;
    state.plugins.extend(p.plugin_objects.clone());
    for name in &p.pending {
        if let Some(e) = state.endpoints.get_mut(name) {
            e.unknown.push(ADDRS.to_string());
        }
    }
    ifnames::check_derived_macs(t, &state).map_err(err)?;
    let dns = resolver_config(&p);
    sandboxes::add_routes_and_files(&p, learned, dns.as_ref(), memo, &mut state);
    if let Some(c) = &dns {
        state.dns = dns_redirects(c);
    }
    state.resolver = dns.map(|c| crate::resolver::control::desired(&t.name, &c));
    firewall(reg, t, obs, &mut state);
    Ok(state)
}

/// What the per-network and per-sandbox steps read: the file, this
/// machine's share of it, and the subnets, addresses and interface names
/// resolved before any driver runs.
struct Plan<'a> {
    full: &'a Topology,
    /// This machine's share of `full` (all of it in a single-host file).
    t: &'a Topology,
    me: Option<&'a Host>,
    obs: &'a Observed,
    subnets: BTreeMap<String, Addressing>,
    addrs: BTreeMap<String, EndpointAddr>,
    ifnames: BTreeMap<String, String>,
    /// Objects asked of IPAM plugins, and the endpoints whose addresses
    /// they have not given yet.
    plugin_objects: BTreeMap<String, crate::model::PluginRes>,
    pending: std::collections::BTreeSet<String>,
}

impl Plan<'_> {
    /// Addresses drivers learned (a CNI chain's own IPAM) for endpoints
    /// cnm's IPAM gave none: peers find them by name.
    fn learned_addresses(&mut self, learned: &BTreeMap<String, Learned>) {
        for (endpoint, l) in learned {
            let Some(text) = l.get(crate::drivers::LEARNED_ADDRS) else {
                continue;
            };
            if !self.t.endpoints.contains_key(endpoint) {
                continue;
            }
            let a = self.addrs.entry(endpoint.clone()).or_default();
            for net in text
                .split(',')
                .filter_map(|x| x.parse::<ipnetwork::IpNetwork>().ok())
            {
                match net {
                    ipnetwork::IpNetwork::V4(v4) if a.v4.is_none() => a.v4 = Some(v4),
                    ipnetwork::IpNetwork::V6(v6) if a.v6.is_none() => a.v6 = Some(v6),
                    _ => {}
                }
            }
        }
    }
}

/// The unknown-field name of an endpoint's addresses.
pub const ADDRS: &str = "addrs";

impl<'a> Plan<'a> {
    fn resolve(
        reg: &Registry,
        full: &'a Topology,
        t: &'a Topology,
        me: Option<&'a Host>,
        obs: &'a Observed,
    ) -> Result<Self, (Loc, String)> {
        let plugged = ipam_plugins::resolve(reg, t, obs)?;
        let mut subnets = subnets::resolve_subnets(t, obs)?;
        subnets.extend(plugged.subnets);
        let mut addrs = addressing::resolve_addresses(t, obs, &subnets)?;
        addrs.extend(plugged.addrs);
        // Hashed addresses are computed over the whole file, so every host
        // derives the same ones, remote endpoints included.
        addrs.extend(addressing::hashed_addresses(full)?);
        let ifnames = ifnames::resolve_ifnames(t, obs);
        Ok(Plan {
            full,
            t,
            me,
            obs,
            subnets,
            addrs,
            ifnames,
            plugin_objects: plugged.objects,
            pending: plugged.pending,
        })
    }
}

/// A namespace for every sandbox that does not use the host's stack: its
/// own, or the one its `netns:` names (as found by observe).
fn add_namespaces(t: &Topology, obs: &Observed, state: &mut State) -> Result<(), (Loc, String)> {
    let mut borrowers: BTreeMap<u64, &str> = BTreeMap::new();
    for sb in t
        .sandboxes
        .values()
        .filter(|s| !t.sandbox_uses_host_stack(&s.name))
    {
        let borrowed = match &sb.netns {
            None => None,
            Some(r) => Some(match obs.host.borrowed.get(&sb.name) {
                Some(Ok(found)) => {
                    if let Some(other) = borrowers.insert(found.ino, &sb.name) {
                        return Err((
                            sb.loc,
                            format!(
                                "sandbox {}: netns {r} is the namespace sandbox {other} borrows already",
                                sb.name
                            ),
                        ));
                    }
                    crate::model::Borrowed {
                        from: r.to_string(),
                        ino: found.ino,
                        path: found.path.clone(),
                    }
                }
                Some(Err(e)) => {
                    return Err((sb.loc, format!("sandbox {}: netns {r}: {e}", sb.name)))
                }
                // Not looked up (a drawing): no identity.
                None => crate::model::Borrowed {
                    from: r.to_string(),
                    ino: 0,
                    path: String::new(),
                },
            }),
        };
        state.namespaces.insert(
            sb.name.clone(),
            NamespaceRes {
                sandbox: sb.name.clone(),
                netns: naming::netns_name(&t.name, &sb.name),
                lo_up: true,
                lo_addrs: crate::model::loopback_addrs(),
                ino: None,
                etc_dir: None,
                borrowed,
                sysctls: sb.sysctls.clone(),
            },
        );
    }
    Ok(())
}

/// Each network's objects, from its driver.
fn add_network_objects(
    reg: &Registry,
    p: &Plan<'_>,
    learned: &BTreeMap<String, Learned>,
    state: &mut State,
) -> Result<(), (Loc, String)> {
    let all: BTreeMap<String, (Option<Ipv4Network>, Option<Ipv6Network>)> = p
        .addrs
        .iter()
        .map(|(k, a)| (k.clone(), (a.v4, a.v6)))
        .collect();
    let none = Default::default();
    for net in p.t.networks.values() {
        let Some(driver) = reg.get(&net.driver) else {
            continue; // refused before planning (apply::drivers)
        };
        let ctx = NetworkCtx {
            topology: &p.t.name,
            network: net,
            addressing: p.subnets.get(&net.name).unwrap_or(&none),
            endpoints: resolved_endpoints(p, &net.name),
            full: p.full,
            me: p.me,
            facts: &p.obs.host,
            addresses: &all,
            learned,
        };
        driver.desired(&ctx, state)?;
    }
    Ok(())
}

/// The endpoints on `network` realized here, with their addresses, MAC,
/// interface name and namespace.
fn resolved_endpoints<'a>(p: &Plan<'a>, network: &'a str) -> Vec<ResolvedEndpoint<'a>> {
    let t = p.t;
    t.endpoints_on_network(network)
        .map(|e| {
            let a = p.addrs.get(&e.name).cloned().unwrap_or_default();
            ResolvedEndpoint {
                spec: e,
                ipv4: a.v4,
                ipv6: a.v6,
                mac: e
                    .mac
                    .or_else(|| a.v4.map(|v| naming::mac_from_ipv4(v.ip()))),
                ifname: p.ifnames.get(&e.name).cloned().unwrap_or_default(),
                netns: naming::netns_name(&t.name, &e.sandbox),
            }
        })
        .collect()
}

/// Every driver's firewall rules and sysctls, in one firewall object.
fn firewall(reg: &Registry, t: &Topology, obs: &Observed, state: &mut State) {
    let mut rules = Vec::new();
    let mut maps = Vec::new();
    let mut sysctls = BTreeMap::new();
    for name in reg.names() {
        let networks: Vec<_> = t.networks.values().filter(|n| n.driver == name).collect();
        let Some(driver) = reg.get(name).filter(|_| !networks.is_empty()) else {
            continue;
        };
        let part = driver.firewall(&FirewallCtx {
            topology: t,
            networks,
            state,
            forward_chains: &obs.host.forward_chains,
        });
        rules.extend(part.rules);
        maps.extend(part.maps);
        sysctls.extend(part.sysctls);
    }
    state.sysctls = sysctls;
    if rules.is_empty() {
        return;
    }
    let (foreign, mut rules): (Vec<_>, Vec<_>) = rules
        .into_iter()
        .partition(|r| r.chain.starts_with(crate::firewall::FOREIGN_PREFIX));
    rules.extend(crate::firewall::sorted_foreign(foreign));
    state.firewall = Some(FirewallRes {
        table: crate::firewall::table_name(&t.name),
        bridge_table: crate::firewall::needs_bridge_table(&rules),
        rules,
        maps: crate::firewall::merge_maps(maps),
        intact: true,
    });
}
