//! Observed state → a topology file, like Terraform's `show`: the topology
//! as last applied (the record holds what the kernel cannot: names of
//! remote endpoints, how ports and DNS were written, sandboxes sharing the
//! host's stack), corrected by what cnm observes of the objects it owns
//! here. Applying what `show` prints changes nothing; objects that are gone
//! from the kernel are gone from the output, and with no record at all the
//! output is built from the kernel alone.

use crate::files;
use crate::model::{fmt_mac, BridgeRes, Observed, State, VethRes};
use crate::naming;
use crate::spec::file::{FileEndpoint, FileIpv6, FileNetwork, FileSandbox, FileTopology};
use crate::store::AppliedRecord;
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, BTreeSet};

pub fn show(topology: &str, obs: &Observed, applied: Option<&AppliedRecord>) -> FileTopology {
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

    for b in s.bridges.values() {
        let net = network(topology, base.networks.get(&b.network), b, s);
        out.networks.insert(b.network.clone(), net);
    }
    for (name, n) in &base.networks {
        let kernel_less = matches!(n.driver.as_deref(), Some(d) if d != "bridge" && d != "overlay");
        let remote_only = base
            .endpoints
            .values()
            .filter(|e| &e.network == name)
            .all(|e| !local(&e.sandbox));
        if !out.networks.contains_key(name)
            && (kernel_less || (remote_only && !base.hosts.is_empty()))
        {
            out.networks.insert(name.clone(), n.clone());
        }
    }

    for ns in s.namespaces.values() {
        out.sandboxes.insert(
            ns.sandbox.clone(),
            sandbox(base.sandboxes.get(&ns.sandbox), s, &ns.netns, &me),
        );
    }
    for e in s.veths.values() {
        out.endpoints.insert(
            e.endpoint.clone(),
            endpoint(base.endpoints.get(&e.endpoint), e, s),
        );
    }
    // What has no kernel object here: endpoints on other hosts, and local
    // ones on networks without kernel objects (host, null, a plugin's).
    for (name, e) in &base.endpoints {
        let Some(net) = out.networks.get(&e.network) else {
            continue;
        };
        let kernel_less = !s.bridges.contains_key(&e.network);
        let shown = if local(&e.sandbox) {
            let host_stack = net.driver.as_deref() == Some("host");
            kernel_less && (host_stack || s.namespaces.contains_key(&e.sandbox))
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
    if applied.is_none() {
        mark_gateways(&mut out, s);
    }
    out
}

fn network(topology: &str, base: Option<&FileNetwork>, b: &BridgeRes, s: &State) -> FileNetwork {
    let mut net = base.cloned().unwrap_or_default();
    let vx = s.vxlans.get(&b.network);
    net.mtu = Some(b.mtu);
    if b.ifname != naming::bridge_name(topology, &b.network) {
        net.options
            .insert("bridge_name".into(), b.ifname.clone().into());
    }
    if let Some(x) = vx {
        net.driver = Some("overlay".into());
        if x.vni != crate::spec::derived_vni(topology, &b.network) {
            net.options.insert("vni".into(), x.vni.into());
        }
        // The subnets show on the endpoints, not on the bridge.
        for v in s.veths.values().filter(|v| v.network == b.network) {
            for a in &v.addrs {
                match a {
                    IpNetwork::V4(x) if net.subnet.is_none() => {
                        net.subnet = Some(format!("{}/{}", x.network(), x.prefix()))
                    }
                    IpNetwork::V6(x) if net.ipv6.is_none() => {
                        net.ipv6 = Some(FileIpv6 {
                            subnet: format!("{}/{}", x.network(), x.prefix()),
                            ..FileIpv6::default()
                        })
                    }
                    _ => {}
                }
            }
        }
    } else {
        net.driver = None;
        let (range, range6) = (
            net.ip_range.take(),
            net.ipv6.take().and_then(|v| v.ip_range),
        );
        net.subnet = None;
        net.gateway = None;
        for a in &b.addrs {
            match a {
                IpNetwork::V4(v) => {
                    net.subnet = Some(format!("{}/{}", v.network(), v.prefix()));
                    net.gateway = Some(v.ip().to_string());
                    net.ip_range = range.clone();
                }
                IpNetwork::V6(v) => {
                    net.ipv6 = Some(FileIpv6 {
                        subnet: format!("{}/{}", v.network(), v.prefix()),
                        gateway: Some(v.ip().to_string()),
                        ip_range: range6.clone(),
                    })
                }
            }
        }
    }
    if let Some(fw) = &s.firewall {
        // The firewall's rules record internal networks and icc.
        net.internal = fw
            .rules
            .iter()
            .any(|r| r.label.starts_with(&format!("internal {}: ", b.network)));
        let icc_off = fw
            .rules
            .iter()
            .any(|r| r.label.starts_with(&format!("icc off on {}:", b.ifname)));
        if icc_off {
            net.options.insert("icc".into(), false.into());
        }
    }
    net
}

fn sandbox(base: Option<&FileSandbox>, s: &State, netns: &str, me: &Option<String>) -> FileSandbox {
    let mut sb = base.cloned().unwrap_or_default();
    if let Some(f) = s.files.get(&naming::hosts_path(netns)) {
        let (h, d, _) = files::parse_hosts_meta(&f.content);
        sb.hostname = h;
        sb.domainname = d;
    }
    if sb.host.is_none() {
        sb.host = me.clone();
    }
    sb
}

fn endpoint(base: Option<&FileEndpoint>, v: &VethRes, s: &State) -> FileEndpoint {
    let mut ep = base.cloned().unwrap_or_default();
    ep.network = v.network.clone();
    ep.sandbox = v.sandbox.clone();
    ep.address = None;
    ep.ipv6_address = None;
    let mut derived = None;
    for a in &v.addrs {
        match a {
            IpNetwork::V4(x) => {
                ep.address = Some(x.ip().to_string());
                derived = Some(naming::mac_from_ipv4(x.ip()));
            }
            IpNetwork::V6(x) => ep.ipv6_address = Some(x.ip().to_string()),
        }
    }
    ep.mac = match v.mac {
        Some(m) if Some(m) != derived => Some(fmt_mac(&m)),
        // The same MAC either way: keep how the file wrote it.
        _ => ep
            .mac
            .filter(|m| v.mac.map(|o| fmt_mac(&o)).as_deref() == Some(m.as_str())),
    };
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

/// (published, target, protocol) of a short-syntax port, host IP left out.
fn shape(p: &str) -> Option<(String, String, String)> {
    let (spec, proto) = p.rsplit_once('/').unwrap_or((p, "tcp"));
    let mut parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    parts.reverse();
    let n = parts.len();
    (n >= 2).then(|| {
        (
            parts[n - 2].to_string(),
            parts[n - 1].to_string(),
            proto.to_string(),
        )
    })
}

/// The endpoint's published ports, from the firewall's rule labels
/// (`port HOST:P/PROTO → ENDPOINT ADDR:T`). A wildcard host IP is left out
/// when the rules cover every family of the endpoint (as the file would
/// have it), and kept when they cover one family only.
fn ports_of(fw: &crate::model::FirewallRes, endpoint: &str, v: &VethRes) -> Vec<String> {
    let mut by_port: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for r in fw.rules.iter().filter(|r| r.chain == "prerouting") {
        if let Some((ep, host, published, target, proto)) = parse_port_label(&r.label) {
            if ep == endpoint {
                by_port
                    .entry((published, target, proto))
                    .or_default()
                    .insert(host);
            }
        }
    }
    let has_v4 = v.addrs.iter().any(|a| a.is_ipv4());
    let has_v6 = v.addrs.iter().any(|a| a.is_ipv6());
    let mut out = Vec::new();
    for ((published, target, proto), hosts) in by_port {
        let any4 = hosts.contains("0.0.0.0");
        let any6 = hosts.contains("[::]");
        let wildcard = (any4 || !has_v4) && (any6 || !has_v6) && (any4 || any6);
        if wildcard {
            out.push(format!("{published}:{target}/{proto}"));
        }
        for h in hosts {
            let is_wild = h == "0.0.0.0" || h == "[::]";
            if !(wildcard && is_wild) {
                out.push(format!("{h}:{published}:{target}/{proto}"));
            }
        }
    }
    out
}

/// `port HOST:P/PROTO → ENDPOINT ADDR:T[ (from the host)]` →
/// (endpoint, host, published, target, protocol).
fn parse_port_label(label: &str) -> Option<(String, String, String, String, String)> {
    let (left, right) = label.strip_prefix("port ")?.split_once(" → ")?;
    let (hostport, proto) = left.rsplit_once('/')?;
    let (host, published) = hostport.rsplit_once(':')?;
    let (ep, addrport) = right.split_once(' ')?;
    let (_, target) = addrport.rsplit_once(':')?;
    Some((
        ep.to_string(),
        host.to_string(),
        published.to_string(),
        target.to_string(),
        proto.to_string(),
    ))
}

/// Without a record: which endpoint carries each sandbox's default route
/// (`gateway: true` where it is not the one cnm would pick anyway).
fn mark_gateways(out: &mut FileTopology, s: &State) {
    for r in s.routes.values() {
        let Some(v) = s
            .veths
            .values()
            .find(|v| v.sandbox == r.sandbox && v.ifname == r.dev)
        else {
            continue;
        };
        let first = s.veths.values().find(|x| x.sandbox == r.sandbox);
        let several = s.veths.values().filter(|x| x.sandbox == r.sandbox).count() > 1;
        if several && first.map(|f| &f.endpoint) != Some(&v.endpoint) {
            if let Some(e) = out.endpoints.get_mut(&v.endpoint) {
                e.gateway = true;
            }
        }
    }
}
