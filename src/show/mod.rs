//! Observed state → a topology file, like Terraform's `show`: the topology
//! as last applied (the record holds what the kernel cannot: names of
//! remote endpoints, how ports and DNS were written, sandboxes sharing the
//! host's stack), corrected by what cnm observes of the objects it owns
//! here; each network's driver writes its own part (subnets it holds,
//! options). Applying what `show` prints changes nothing; objects gone from
//! the kernel are gone from the output, and with no record at all the
//! output is built from the kernel alone.

use crate::drivers::{Registry, ShowCtx};
use crate::files;
use crate::model::{fmt_mac, EndpointRes, Observed, State};
use crate::naming::{self, MarkKind};
use crate::spec::file::{FileEndpoint, FileNetwork, FileSandbox, FileTopology};
use crate::spec::DEFAULT_DRIVER;
use crate::store::AppliedRecord;
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, BTreeSet};

mod ports;
use ports::{ports_of, shape};

pub fn show(topology: &str, obs: &Observed, applied: Option<&AppliedRecord>) -> FileTopology {
    show_with(Registry::builtin(), topology, obs, applied)
}

pub fn show_with(
    reg: &Registry,
    topology: &str,
    obs: &Observed,
    applied: Option<&AppliedRecord>,
) -> FileTopology {
    let base: FileTopology = applied
        .and_then(|r| serde_json::from_value(r.topology.clone()).ok())
        .unwrap_or_default();
    let me = applied.and_then(|r| r.this_host.clone());
    let s = &obs.state;
    let mut out = FileTopology {
        version: 1,
        name: topology.to_string(),
        hosts: base.hosts.clone(),
        ..FileTopology::default()
    };
    // A sandbox is realized on this machine unless the file puts it on
    // another host.
    let local = |sb: &str| match (&me, base.sandboxes.get(sb).and_then(|b| b.host.as_ref())) {
        (Some(me), Some(h)) => h == me,
        _ => true,
    };
    networks(reg, topology, &base, s, &local, &mut out);
    for ns in s.namespaces.values() {
        out.sandboxes.insert(
            ns.sandbox.clone(),
            sandbox(base.sandboxes.get(&ns.sandbox), s, ns, &me),
        );
    }
    for e in s.endpoints.values() {
        // An IPAM plugin's addresses, and a plugin driver's MACs, are the
        // plugin's: what the file asked is kept.
        let net = base.networks.get(&e.network);
        let plugin = Plugin {
            addresses: net.is_some_and(|n| n.ipam.is_some()),
            mac: net.is_some_and(|n| {
                reg.get(n.driver.as_deref().unwrap_or(DEFAULT_DRIVER))
                    .is_none()
            }),
        };
        let mut shown = endpoint(base.endpoints.get(&e.endpoint), e, s, plugin);
        if let Some(n) = out.networks.get(&shown.network) {
            if let Some(d) = reg.get(n.driver.as_deref().unwrap_or(DEFAULT_DRIVER)) {
                d.show_endpoint(n, &mut shown, e);
            }
        }
        out.endpoints.insert(e.endpoint.clone(), shown);
    }
    kernel_less(reg, &base, s, &local, &mut out);
    if applied.is_none() {
        mark_gateways(&mut out, s);
    }
    out
}

/// Networks with a link here, from the kernel and their drivers; networks
/// whose only objects are endpoints (macvlan), from the record when one of
/// their endpoints is here; networks without kernel objects (host, null) or
/// only on other hosts, from the record.
fn networks(
    reg: &Registry,
    topology: &str,
    base: &FileTopology,
    s: &State,
    local: &dyn Fn(&str) -> bool,
    out: &mut FileTopology,
) {
    let driver_show = |name: &str, net: &mut FileNetwork, driver: &str| {
        if let Some(d) = reg.get(driver) {
            let ctx = ShowCtx {
                topology,
                network: name,
                state: s,
            };
            d.show(net, &ctx);
        }
    };
    for l in s.links.values().filter(|l| l.role == MarkKind::Network) {
        let mut net = base.networks.get(&l.network).cloned().unwrap_or_default();
        net.mtu = Some(l.mtu);
        let recorded = net.driver.clone();
        let driver = driver_of(reg, recorded.as_deref(), s, &l.network).to_string();
        net.driver = (driver != DEFAULT_DRIVER).then(|| driver.clone());
        driver_show(&l.network, &mut net, &driver);
        out.networks.insert(l.network.clone(), net);
    }
    // A driver not built in is a plugin's: show needs no plugin to tell.
    let caps_of = |n: &FileNetwork| {
        Some(
            reg.get(n.driver.as_deref().unwrap_or(DEFAULT_DRIVER))
                .map_or(crate::drivers::Caps::UNKNOWN, |d| d.caps()),
        )
    };
    for (name, n) in &base.networks {
        if out.networks.contains_key(name) {
            continue;
        }
        let of_net = || {
            base.endpoints
                .iter()
                .filter(move |(_, e)| &e.network == name)
        };
        let remote_only = of_net().all(|(_, e)| !local(&e.sandbox));
        let has_endpoint_here = of_net().any(|(ep, _)| s.endpoints.contains_key(ep));
        let caps = caps_of(n);
        let linkless = caps.is_some_and(|c| !c.network_link);
        let shown = (remote_only && !base.hosts.is_empty())
            || (linkless && (!caps.is_some_and(|c| c.interfaces) || has_endpoint_here));
        if shown {
            let mut net = n.clone();
            let driver = n.driver.clone().unwrap_or_else(|| DEFAULT_DRIVER.into());
            driver_show(name, &mut net, &driver);
            out.networks.insert(name.clone(), net);
        }
    }
}

/// The driver of a network with links here: the record's, else the
/// driver that makes every kind of link the network has, with the fewest
/// kinds of its own (a bridge alone: `bridge`; a bridge and a VXLAN
/// device: `overlay`).
fn driver_of<'a>(
    reg: &'a Registry,
    recorded: Option<&'a str>,
    s: &State,
    network: &str,
) -> &'a str {
    if let Some(d) = recorded {
        return d;
    }
    let kinds: BTreeSet<&str> = s
        .links
        .values()
        .filter(|l| l.network == network)
        .map(|l| l.kind.as_str())
        .collect();
    reg.names()
        .into_iter()
        .filter_map(|n| reg.get(n))
        .filter(|d| kinds.iter().all(|k| d.link_kinds().contains(k)))
        .min_by_key(|d| d.link_kinds().len())
        .map_or(DEFAULT_DRIVER, |d| d.name())
}

/// What has no kernel object here: endpoints on other hosts, and local
/// ones on networks without kernel objects (host, null, a plugin's).
fn kernel_less(
    reg: &Registry,
    base: &FileTopology,
    s: &State,
    local: &dyn Fn(&str) -> bool,
    out: &mut FileTopology,
) {
    for (name, e) in &base.endpoints {
        let Some(net) = out.networks.get(&e.network) else {
            continue;
        };
        let caps = Some(
            reg.get(net.driver.as_deref().unwrap_or(DEFAULT_DRIVER))
                .map_or(crate::drivers::Caps::UNKNOWN, |d| d.caps()),
        );
        let shown = if local(&e.sandbox) {
            // Only endpoints without an interface: one with an interface
            // shows (from the kernel) or is gone.
            caps.is_some_and(|c| !c.interfaces)
                && (caps.is_some_and(|c| c.host_stack) || s.namespaces.contains_key(&e.sandbox))
        } else {
            true
        };
        if shown && !out.endpoints.contains_key(name) {
            out.endpoints.insert(name.clone(), e.clone());
            if let Some(sb) = base.sandboxes.get(&e.sandbox) {
                out.sandboxes
                    .entry(e.sandbox.clone())
                    .or_insert_with(|| sb.clone());
            }
        }
    }
}

fn sandbox(
    base: Option<&FileSandbox>,
    s: &State,
    ns: &crate::model::NamespaceRes,
    me: &Option<String>,
) -> FileSandbox {
    let mut sb = base.cloned().unwrap_or_default();
    sb.netns = ns.borrowed.as_ref().map(|b| b.from.clone());
    // Sysctls as read back (those cnm set), by key as written.
    for (k, v) in &ns.sysctls {
        sb.sysctls.insert(k.replace('/', "."), v.clone());
    }
    if let Some(f) = s.files.get(&naming::hosts_path(&ns.netns)) {
        let (h, d, _) = files::parse_hosts_meta(&f.content);
        sb.hostname = h;
        sb.domainname = d;
    }
    if sb.host.is_none() {
        sb.host = me.clone();
    }
    sb
}

/// What of an endpoint a plugin decided (and `show` leaves as written).
#[derive(Clone, Copy)]
struct Plugin {
    addresses: bool,
    mac: bool,
}

fn endpoint(
    base: Option<&FileEndpoint>,
    v: &EndpointRes,
    s: &State,
    plugin: Plugin,
) -> FileEndpoint {
    let plugin_addressed = plugin.addresses;
    let mut ep = base.cloned().unwrap_or_default();
    if !v.network.is_empty() {
        ep.network = v.network.clone();
    }
    ep.sandbox = v.sandbox.clone();
    let mut derived = None;
    if !plugin_addressed {
        ep.address = None;
        ep.ipv6_address = None;
    }
    for a in &v.addrs {
        match a {
            IpNetwork::V4(x) => {
                if !plugin_addressed {
                    ep.address = Some(x.ip().to_string());
                }
                derived = Some(naming::mac_from_ipv4(x.ip()));
            }
            IpNetwork::V6(x) if !plugin_addressed => ep.ipv6_address = Some(x.ip().to_string()),
            IpNetwork::V6(_) => {}
        }
    }
    ep.mac = match v.mac {
        _ if plugin.mac => ep.mac,
        Some(m) if Some(m) != derived => Some(fmt_mac(&m)),
        // The same MAC either way: keep how the file wrote it.
        _ => ep
            .mac
            .filter(|m| v.mac.map(|o| fmt_mac(&o)).as_deref() == Some(m.as_str())),
    };
    // A name the file gave is shown as the kernel has it.
    if ep.ifname.is_some() && !v.ifname.is_empty() {
        ep.ifname = Some(v.ifname.clone());
    }
    if base.is_none() {
        ep.aliases = s
            .files
            .values()
            .flat_map(|f| files::parse_hosts_meta(&f.content).2)
            .find(|(e, _)| *e == v.endpoint)
            .map(|(_, a)| a)
            .unwrap_or_default();
    }
    if let Some(fw) = &s.firewall {
        let seen = ports_of(fw, &v.endpoint, v);
        let written: BTreeSet<(String, String, String)> =
            ep.ports.iter().filter_map(|p| shape(p)).collect();
        let observed: BTreeSet<(String, String, String)> =
            seen.iter().filter_map(|p| shape(p)).collect();
        if written != observed || base.is_none() {
            ep.ports = seen;
        }
    }
    ep
}

/// Without a record: which endpoint carries each sandbox's default route
/// (`gateway: true` where it is not the one cnm would pick anyway).
fn mark_gateways(out: &mut FileTopology, s: &State) {
    for r in s.routes.values() {
        let Some(v) = s
            .endpoints
            .values()
            .find(|v| v.sandbox == r.sandbox && v.ifname == r.dev)
        else {
            continue;
        };
        let first = s.endpoints.values().find(|x| x.sandbox == r.sandbox);
        let several = s
            .endpoints
            .values()
            .filter(|x| x.sandbox == r.sandbox)
            .count()
            > 1;
        if several && first.map(|f| &f.endpoint) != Some(&v.endpoint) {
            if let Some(e) = out.endpoints.get_mut(&v.endpoint) {
                e.gateway = true;
            }
        }
    }
}
