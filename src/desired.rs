//! Topology × what exists → the desired [`State`].
//!
//! Pure. IPAM lives here because its answers depend on what already exists:
//! a network keeps its subnet, an endpoint keeps its address and interface
//! name, and new ones take the lowest free values in name order, so `plan`
//! shows exactly what `apply` will do.

use crate::drivers::{self, Addressing, NetworkCtx, OverlayCtx, RemoteEndpoint, ResolvedEndpoint};
use crate::files::{self, HostsContent, HostsEntry, Resolv};
use crate::ipam;
use crate::model::{Family, FileRes, NamespaceRes, Observed, RouteRes, State, VethRes};
use crate::naming;
use crate::spec::{DriverKind, Endpoint, Host, Loc, Topology};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A problem found while planning, located in the file when it can be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, .loc, .message))]
pub struct PlanError {
    pub file: String,
    pub loc: Option<Loc>,
    pub message: String,
}

fn render(file: &str, loc: &Option<Loc>, message: &str) -> String {
    match loc {
        Some(l) => format!("{file}:{}:{}: {message}", l.line, l.col),
        None => format!("{file}: {message}"),
    }
}

/// Addresses and names resolved for one endpoint.
#[derive(Debug, Clone, Default)]
struct EndpointAddr {
    v4: Option<Ipv4Network>,
    v6: Option<Ipv6Network>,
}

pub fn build(full: &Topology, obs: &Observed) -> Result<State, PlanError> {
    let err = |loc: Loc, message: String| PlanError {
        file: full.file.clone(),
        loc: Some(loc),
        message,
    };
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
    let addressing = resolve_subnets(t, obs).map_err(|(loc, m)| err(loc, m))?;
    let mut addrs = resolve_addresses(t, obs, &addressing).map_err(|(loc, m)| err(loc, m))?;
    // Overlay addresses are computed over the whole file, so every host
    // derives the same ones, remote endpoints included.
    addrs.extend(overlay_addresses(full).map_err(|(loc, m)| err(loc, m))?);
    let ifnames = resolve_ifnames(t, obs);

    let mut state = State::default();
    for sb in t.sandboxes.values() {
        if !t.sandbox_uses_host_stack(&sb.name) {
            state.namespaces.insert(
                sb.name.clone(),
                NamespaceRes {
                    sandbox: sb.name.clone(),
                    netns: naming::netns_name(&t.name, &sb.name),
                    lo_up: true,
                    lo_addrs: crate::model::loopback_addrs(),
                    ino: None,
                    etc_dir: None,
                },
            );
        }
    }

    for net in t.networks.values() {
        let driver = drivers::driver_for(net.driver);
        let endpoints = t
            .endpoints_on_network(&net.name)
            .map(|e| {
                let a = addrs.get(&e.name).cloned().unwrap_or_default();
                ResolvedEndpoint {
                    spec: e,
                    ipv4: a.v4,
                    ipv6: a.v6,
                    mac: e
                        .mac
                        .or_else(|| a.v4.map(|v| naming::mac_from_ipv4(v.ip()))),
                    ifname: ifnames.get(&e.name).cloned().unwrap_or_default(),
                    netns: naming::netns_name(&t.name, &e.sandbox),
                }
            })
            .collect();
        let none = Addressing::default();
        let overlay = match (net.driver, me) {
            (DriverKind::Overlay, Some(h)) => {
                Some(overlay_ctx(full, net, h, obs, &addrs).map_err(|(loc, m)| err(loc, m))?)
            }
            _ => None,
        };
        let ctx = NetworkCtx {
            topology: &t.name,
            network: net,
            addressing: addressing.get(&net.name).unwrap_or(&none),
            endpoints,
            overlay,
        };
        driver.desired(&ctx, &mut state);
    }
    check_derived_macs(t, &state).map_err(|(loc, m)| err(loc, m))?;

    // Hosts files list the local sandboxes, plus every sandbox on another
    // host that shares an overlay network with one of them.
    let index = Index::new(full, &addrs, |e| {
        t.sandboxes.contains_key(&e.sandbox)
            || (t.networks.contains_key(&e.network)
                && t.networks[&e.network].driver == DriverKind::Overlay)
    });
    let mut routes = BTreeMap::new();
    let mut files = BTreeMap::new();
    for ns in state.namespaces.values() {
        add_routes(t, &addressing, &state.veths, &ns.sandbox, &mut routes);
        add_files(t, obs, &addrs, &ns.sandbox, &ns.netns, &index, &mut files);
    }
    state.routes = routes;
    state.files = files;
    (state.firewall, state.sysctls) = crate::firewall::desired(t, &state, &obs.host.forward_chains);
    Ok(state)
}

/// Lookups built once per plan, so per-sandbox work does not rescan every
/// endpoint: a sandbox's endpoints, and each network's hosts-file lines
/// (sandbox, rendered line) that its members' files share.
struct Index<'a> {
    by_sandbox: BTreeMap<&'a str, Vec<&'a Endpoint>>,
    peer_lines: BTreeMap<&'a str, Vec<(&'a str, String)>>,
}

impl<'a> Index<'a> {
    fn new(
        t: &'a Topology,
        addrs: &BTreeMap<String, EndpointAddr>,
        visible: impl Fn(&Endpoint) -> bool,
    ) -> Self {
        let mut by_sandbox: BTreeMap<&str, Vec<&Endpoint>> = BTreeMap::new();
        let mut peer_lines: BTreeMap<&str, Vec<(&str, String)>> = BTreeMap::new();
        for e in t.endpoints.values().filter(|e| visible(e)) {
            by_sandbox.entry(e.sandbox.as_str()).or_default().push(e);
            let psb = &t.sandboxes[&e.sandbox];
            let mut names = vec![psb.name.clone()];
            if let Some(h) = &psb.hostname {
                names.push(h.clone());
            }
            names.extend(e.aliases.iter().cloned());
            let a = addrs.get(&e.name).cloned().unwrap_or_default();
            let ips =
                a.v4.map(|v| IpAddr::V4(v.ip()))
                    .into_iter()
                    .chain(a.v6.map(|v| IpAddr::V6(v.ip())));
            for addr in ips {
                let line = files::render_entry(&HostsEntry {
                    addr,
                    names: names.clone(),
                });
                peer_lines
                    .entry(e.network.as_str())
                    .or_default()
                    .push((e.sandbox.as_str(), line));
            }
        }
        Index {
            by_sandbox,
            peer_lines,
        }
    }
}

/// The host this machine is, in a multi-host file: the one `--host` named,
/// else the one whose address is on a local interface.
fn this_host<'a>(t: &'a Topology, obs: &Observed) -> Result<Option<&'a Host>, PlanError> {
    if t.hosts.is_empty() {
        return Ok(None);
    }
    if let Some(h) = t.this_host.as_ref().and_then(|h| t.hosts.get(h)) {
        return Ok(Some(h));
    }
    let mine: Vec<&Host> = t
        .hosts
        .values()
        .filter(|h| obs.host.local_addrs.contains_key(&h.address))
        .collect();
    match mine.as_slice() {
        [h] => Ok(Some(h)),
        _ => Err(PlanError {
            file: t.file.clone(),
            loc: None,
            message: format!(
                "the file declares hosts ({}) and {}; say which one this machine is with --host NAME",
                t.hosts.keys().cloned().collect::<Vec<_>>().join(", "),
                if mine.is_empty() {
                    "none of their addresses is on this machine"
                } else {
                    "several of their addresses are on this machine"
                }
            ),
        }),
    }
}

/// The VTEP, MTU and remote endpoints of an overlay network on host `me`.
fn overlay_ctx(
    full: &Topology,
    net: &crate::spec::Network,
    me: &Host,
    obs: &Observed,
    addrs: &BTreeMap<String, EndpointAddr>,
) -> Result<OverlayCtx, (Loc, String)> {
    let Some((link, underlay_mtu)) = obs.host.local_addrs.get(&me.address) else {
        return Err((
            me.loc,
            format!(
                "host {}: no interface of this machine has address {} (the VTEP of network {}); is --host {} right?",
                me.name, me.address, net.name, me.name
            ),
        ));
    };
    let overhead = drivers::vxlan_overhead(&me.address);
    let mtu = match net.mtu {
        Some(m) => m,
        None if *underlay_mtu > overhead + 68 => underlay_mtu - overhead,
        None => {
            return Err((
                net.loc,
                format!(
                    "network {}: the underlay {link} has MTU {underlay_mtu}, too small for VXLAN; set mtu:",
                    net.name
                ),
            ))
        }
    };
    let mut remotes = Vec::new();
    for e in full.endpoints_on_network(&net.name) {
        let Some(host) = full.sandboxes[&e.sandbox]
            .host
            .as_ref()
            .and_then(|h| full.hosts.get(h))
        else {
            continue;
        };
        if host.name == me.name {
            continue;
        }
        let a = addrs.get(&e.name).cloned().unwrap_or_default();
        let Some(mac) = e
            .mac
            .or_else(|| a.v4.map(|v| naming::mac_from_ipv4(v.ip())))
        else {
            continue;
        };
        remotes.push(RemoteEndpoint {
            vtep: host.address,
            mac,
            ips: a
                .v4
                .map(|v| IpAddr::V4(v.ip()))
                .into_iter()
                .chain(a.v6.map(|v| IpAddr::V6(v.ip())))
                .collect(),
        });
    }
    Ok(OverlayCtx {
        local: me.address,
        mtu,
        remotes,
    })
}

/// Addresses of every endpoint on every overlay network, from the file
/// alone: static ones, then each other endpoint (in name order) at the
/// hash of its name in the range, probing past taken addresses.
fn overlay_addresses(t: &Topology) -> Result<BTreeMap<String, EndpointAddr>, (Loc, String)> {
    let mut out: BTreeMap<String, EndpointAddr> = BTreeMap::new();
    for net in t
        .networks
        .values()
        .filter(|n| n.driver == DriverKind::Overlay)
    {
        let eps: Vec<&Endpoint> = t.endpoints_on_network(&net.name).collect();
        if let Some(subnet) = net.subnet {
            let range = net.ip_range.unwrap_or(subnet);
            let (nw, bc) = (u32::from(subnet.network()), u32::from(subnet.broadcast()));
            let chosen = hashed_family(
                &eps,
                |e| e.address.map(|a| u32::from(a).into()),
                (
                    u32::from(range.network()).into(),
                    u32::from(range.broadcast()).into(),
                ),
                |a| a == nw.into() || a == bc.into(),
            )
            .map_err(|e| no_free(e, &net.name, "IPv4", &range.to_string()))?;
            for (e, a) in chosen {
                let ip = Ipv4Addr::from(a as u32);
                out.entry(e.name.clone()).or_default().v4 =
                    Ipv4Network::new(ip, subnet.prefix()).ok();
            }
        }
        if let Some(cfg) = &net.ipv6 {
            let subnet = cfg.subnet;
            let range = cfg.ip_range.unwrap_or(subnet);
            let nw = u128::from(subnet.network());
            let chosen = hashed_family(
                &eps,
                |e| e.ipv6_address.map(u128::from),
                (range.network().into(), range.broadcast().into()),
                |a| a == nw,
            )
            .map_err(|e| no_free(e, &net.name, "IPv6", &range.to_string()))?;
            for (e, a) in chosen {
                out.entry(e.name.clone()).or_default().v6 =
                    Ipv6Network::new(Ipv6Addr::from(a), subnet.prefix()).ok();
            }
        }
    }
    Ok(out)
}

/// One family of an overlay network: static addresses, then each other
/// endpoint in name order at its hashed place in `lo..=hi`. On exhaustion,
/// the endpoint that found nothing.
fn hashed_family<'e>(
    eps: &[&'e Endpoint],
    static_of: impl Fn(&Endpoint) -> Option<u128>,
    (lo, hi): (u128, u128),
    excluded: impl Fn(u128) -> bool,
) -> Result<Vec<(&'e Endpoint, u128)>, &'e Endpoint> {
    let mut used: BTreeSet<u128> = eps.iter().filter_map(|e| static_of(e)).collect();
    let mut out = Vec::new();
    for e in eps {
        let a = match static_of(e) {
            Some(a) => a,
            None => {
                let a = ipam::hashed_free(&e.name, lo, hi, &excluded, &used).ok_or(*e)?;
                used.insert(a);
                a
            }
        };
        out.push((*e, a));
    }
    Ok(out)
}

/// Gateways of bridge networks: explicit subnets first, then networks that
/// already exist keep theirs, then new ones are allocated from the default
/// pools, skipping whatever the host already routes.
fn resolve_subnets(
    t: &Topology,
    obs: &Observed,
) -> Result<BTreeMap<String, Addressing>, (Loc, String)> {
    let mut taken: Vec<IpNetwork> = obs.host.routed.clone();
    taken.extend(
        t.networks
            .values()
            .filter_map(|n| n.subnet.map(IpNetwork::V4)),
    );
    let mut out = BTreeMap::new();
    for net in t
        .networks
        .values()
        .filter(|n| n.driver == DriverKind::Bridge)
    {
        let subnet = match net.subnet {
            Some(s) => s,
            None => {
                let existing = obs.state.bridges.get(&net.name).and_then(|b| {
                    b.addrs.iter().find_map(|a| match a {
                        IpNetwork::V4(v4) => Ipv4Network::new(v4.network(), v4.prefix()).ok(),
                        _ => None,
                    })
                });
                let keep = existing.filter(|s| {
                    let me = IpNetwork::V4(*s);
                    !t.networks
                        .values()
                        .filter_map(|n| n.subnet)
                        .any(|o| o.contains(s.network()) || s.contains(o.network()))
                        && !taken.contains(&me)
                });
                match keep.or_else(|| ipam::allocate_subnet(&taken)) {
                    Some(s) => {
                        taken.push(IpNetwork::V4(s));
                        s
                    }
                    None => {
                        return Err((net.loc, format!(
                            "network {}: no free subnet left in the default pools (172.17.0.0/16 … 192.168.240.0/20); give it a subnet:",
                            net.name
                        )))
                    }
                }
            }
        };
        let gw4 = net.gateway.unwrap_or_else(|| ipam::first_host_v4(subnet));
        let gateway_v4 = Ipv4Network::new(gw4, subnet.prefix()).ok();
        let gateway_v6 = net.ipv6.as_ref().and_then(|v6| {
            let gw = v6.gateway.unwrap_or_else(|| ipam::first_host_v6(v6.subnet));
            Ipv6Network::new(gw, v6.subnet.prefix()).ok()
        });
        out.insert(
            net.name.clone(),
            Addressing {
                gateway_v4,
                gateway_v6,
            },
        );
    }
    Ok(out)
}

/// Endpoint addresses: static ones, then kept ones (an endpoint that exists
/// keeps its address while it stays valid), then the lowest free address of
/// the range for each new endpoint, in endpoint-name order.
fn resolve_addresses(
    t: &Topology,
    obs: &Observed,
    addressing: &BTreeMap<String, Addressing>,
) -> Result<BTreeMap<String, EndpointAddr>, (Loc, String)> {
    let mut out: BTreeMap<String, EndpointAddr> = BTreeMap::new();
    for net in t
        .networks
        .values()
        .filter(|n| n.driver == DriverKind::Bridge)
    {
        let Some(a) = addressing.get(&net.name) else {
            continue;
        };
        let eps: Vec<&Endpoint> = t.endpoints_on_network(&net.name).collect();
        let observed = |e: &Endpoint| {
            obs.state
                .veths
                .get(&e.name)
                .filter(|v| v.network == net.name)
                .map(|v| v.addrs.clone())
                .unwrap_or_default()
        };

        if let Some(gw) = a.gateway_v4 {
            let subnet = Ipv4Network::new(gw.network(), gw.prefix())
                .map_err(|e| (net.loc, e.to_string()))?;
            let range = net.ip_range.unwrap_or(subnet);
            let kept = |e: &Endpoint| {
                observed(e).into_iter().find_map(|a| match a {
                    IpNetwork::V4(v) if v.prefix() == subnet.prefix() => Some(v.ip()),
                    _ => None,
                })
            };
            let usable = |ip: Ipv4Addr| {
                subnet.contains(ip) && ip != subnet.network() && ip != subnet.broadcast()
            };
            let chosen = assign(
                &eps,
                gw.ip(),
                |e| e.address,
                kept,
                usable,
                |used| ipam::lowest_free_v4(subnet, range, used),
            )
            .map_err(|e| no_free(e, &net.name, "IPv4", &range.to_string()))?;
            for (e, ip) in chosen {
                out.entry(e.name.clone()).or_default().v4 =
                    Ipv4Network::new(ip, subnet.prefix()).ok();
            }
        }

        if let (Some(gw), Some(cfg)) = (a.gateway_v6, &net.ipv6) {
            let subnet = cfg.subnet;
            let range = cfg.ip_range.unwrap_or(subnet);
            let kept = |e: &Endpoint| {
                observed(e).into_iter().find_map(|a| match a {
                    IpNetwork::V6(v) if v.prefix() == subnet.prefix() => Some(v.ip()),
                    _ => None,
                })
            };
            let usable = |ip: Ipv6Addr| subnet.contains(ip) && ip != subnet.network();
            let chosen = assign(
                &eps,
                gw.ip(),
                |e| e.ipv6_address,
                kept,
                usable,
                |used| ipam::lowest_free_v6(subnet, range, used),
            )
            .map_err(|e| no_free(e, &net.name, "IPv6", &range.to_string()))?;
            for (e, ip) in chosen {
                out.entry(e.name.clone()).or_default().v6 =
                    Ipv6Network::new(ip, subnet.prefix()).ok();
            }
        }
    }
    Ok(out)
}

/// One family's addresses for a network's endpoints (in name order): static
/// ones first, then each existing endpoint keeps its observed address while
/// it is still usable and free, then the rest take `next_free` in turn. On
/// exhaustion, the endpoint that found nothing.
fn assign<'e, A: Ord + Copy>(
    eps: &[&'e Endpoint],
    gateway: A,
    static_of: impl Fn(&Endpoint) -> Option<A>,
    kept_of: impl Fn(&Endpoint) -> Option<A>,
    usable: impl Fn(A) -> bool,
    next_free: impl Fn(&BTreeSet<A>) -> Option<A>,
) -> Result<Vec<(&'e Endpoint, A)>, &'e Endpoint> {
    let mut used: BTreeSet<A> = eps.iter().filter_map(|e| static_of(e)).collect();
    used.insert(gateway);
    let mut out = Vec::new();
    let mut pending = Vec::new();
    for e in eps {
        match (static_of(e), kept_of(e)) {
            (Some(s), _) => out.push((*e, s)),
            (None, Some(k)) if usable(k) && used.insert(k) => out.push((*e, k)),
            _ => pending.push(*e),
        }
    }
    for e in pending {
        let a = next_free(&used).ok_or(e)?;
        used.insert(a);
        out.push((e, a));
    }
    Ok(out)
}

fn no_free(e: &Endpoint, network: &str, family: &str, range: &str) -> (Loc, String) {
    (
        e.loc,
        format!(
            "endpoint {}: network {network} has no free {family} address left in {range}",
            e.name
        ),
    )
}

/// Interface names inside each sandbox: an endpoint that exists keeps its
/// `ethN`; new endpoints take the lowest free `ethN`, in endpoint-name order.
fn resolve_ifnames(t: &Topology, obs: &Observed) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for sb in t.sandboxes.values() {
        let netns = naming::netns_name(&t.name, &sb.name);
        let eps: Vec<&Endpoint> = t
            .endpoints_of_sandbox(&sb.name)
            .filter(|e| drivers::driver_for(t.networks[&e.network].driver).gives_interface())
            .collect();
        let mut used = BTreeSet::new();
        let mut pending = Vec::new();
        for e in &eps {
            let kept = obs
                .state
                .veths
                .get(&e.name)
                .filter(|v| {
                    v.netns == netns
                        && v.ifname.starts_with("eth")
                        && v.ifname[3..].parse::<u32>().is_ok()
                })
                .map(|v| v.ifname.clone());
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

/// A MAC derived from an address may collide with one given explicitly.
fn check_derived_macs(t: &Topology, state: &State) -> Result<(), (Loc, String)> {
    let mut seen: BTreeMap<[u8; 6], &str> = BTreeMap::new();
    for v in state.veths.values() {
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

/// The endpoint that carries a sandbox's default route: the one marked
/// `gateway: true`, else the first non-internal bridge endpoint by name.
pub fn gateway_endpoint<'a>(t: &'a Topology, sandbox: &'a str) -> Option<&'a Endpoint> {
    let eligible = |e: &&Endpoint| {
        let n = &t.networks[&e.network];
        n.driver == DriverKind::Bridge && !n.internal
    };
    t.endpoints_of_sandbox(sandbox)
        .find(|e| e.gateway)
        .or_else(|| t.endpoints_of_sandbox(sandbox).find(eligible))
}

fn add_routes(
    t: &Topology,
    addressing: &BTreeMap<String, Addressing>,
    veths: &BTreeMap<String, VethRes>,
    sandbox: &str,
    out: &mut BTreeMap<(String, IpNetwork), RouteRes>,
) {
    let Some(ep) = gateway_endpoint(t, sandbox) else {
        return;
    };
    let (Some(a), Some(veth)) = (addressing.get(&ep.network), veths.get(&ep.name)) else {
        return;
    };
    let netns = naming::netns_name(&t.name, sandbox);
    let gateways = [
        (Family::V4, a.gateway_v4.map(|g| IpAddr::V4(g.ip()))),
        (Family::V6, a.gateway_v6.map(|g| IpAddr::V6(g.ip()))),
    ];
    for (family, gw) in gateways {
        if let Some(gateway) = gw {
            let dst = crate::model::default_dst(family);
            out.insert(
                (sandbox.to_string(), dst),
                RouteRes {
                    sandbox: sandbox.to_string(),
                    netns: netns.clone(),
                    dst,
                    gateway: Some(gateway),
                    dev: veth.ifname.clone(),
                },
            );
        }
    }
}

fn add_files(
    t: &Topology,
    obs: &Observed,
    addrs: &BTreeMap<String, EndpointAddr>,
    sandbox: &str,
    netns: &str,
    index: &Index<'_>,
    out: &mut BTreeMap<String, FileRes>,
) {
    let Index {
        by_sandbox,
        peer_lines,
    } = index;
    let sb = &t.sandboxes[sandbox];
    let ips_of = |e: &Endpoint| -> Vec<IpAddr> {
        let a = addrs.get(&e.name).cloned().unwrap_or_default();
        a.v4.map(|v| IpAddr::V4(v.ip()))
            .into_iter()
            .chain(a.v6.map(|v| IpAddr::V6(v.ip())))
            .collect()
    };

    let mut own_names = Vec::new();
    if let (Some(h), Some(d)) = (&sb.hostname, &sb.domainname) {
        own_names.push(format!("{h}.{d}"));
    }
    if let Some(h) = &sb.hostname {
        own_names.push(h.clone());
    }
    own_names.push(sb.name.clone());

    let mine: &[&Endpoint] = by_sandbox
        .get(sandbox)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut own: Vec<HostsEntry> = mine
        .iter()
        .flat_map(|e| ips_of(e))
        .map(|addr| HostsEntry {
            addr,
            names: own_names.clone(),
        })
        .collect();
    if own.is_empty() {
        // No address of its own: resolve its names to loopback (Debian's convention).
        own.push(HostsEntry {
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)),
            names: own_names.clone(),
        });
    }
    let mut peers = Vec::new();
    for mine in mine {
        let lines = peer_lines
            .get(mine.network.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        peers.extend(
            lines
                .iter()
                .filter(|(sb, _)| *sb != sandbox)
                .map(|(_, line)| line.clone()),
        );
    }
    let hosts = HostsContent {
        topology: t.name.clone(),
        sandbox: sandbox.to_string(),
        hostname: sb.hostname.clone(),
        domainname: sb.domainname.clone(),
        aliases: mine
            .iter()
            .filter(|e| !e.aliases.is_empty())
            .map(|e| (e.name.clone(), e.aliases.clone()))
            .collect(),
        own,
        peers,
    };
    let resolv = match &sb.dns {
        Some(d) => Resolv {
            nameservers: d.servers.clone(),
            search: d.search.clone(),
            options: d.options.clone(),
        },
        None => Resolv {
            nameservers: obs
                .host
                .nameservers
                .iter()
                .filter(|ip| !ip.is_loopback())
                .cloned()
                .collect(),
            search: obs.host.search.clone(),
            options: obs.host.resolv_options.clone(),
        },
    };
    for (path, content) in [
        (naming::hosts_path(netns), files::render_hosts(&hosts)),
        (
            naming::resolv_path(netns),
            files::render_resolv(&t.name, sandbox, &resolv),
        ),
    ] {
        out.insert(
            path.clone(),
            FileRes {
                path,
                sandbox: sandbox.to_string(),
                content,
                id: None,
            },
        );
    }
}
