//! Observed state → a topology file. Re-applying what `show` prints changes
//! nothing: every value that decides kernel state is written out explicitly.

use crate::files;
use crate::model::{fmt_mac, Observed};
use crate::naming;
use ipnetwork::IpNetwork;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct ShownTopology {
    pub version: u32,
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, ShownNetwork>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sandboxes: BTreeMap<String, ShownSandbox>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, ShownEndpoint>,
}

#[derive(Debug, Serialize)]
pub struct ShownNetwork {
    pub driver: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<ShownIpv6>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    pub mtu: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ShownIpv6 {
    pub subnet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct ShownSandbox {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<ShownDns>,
}

#[derive(Debug, Serialize)]
pub struct ShownDns {
    pub servers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ShownEndpoint {
    pub network: String,
    pub sandbox: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gateway: bool,
}

pub fn show(topology: &str, obs: &Observed) -> ShownTopology {
    let s = &obs.state;
    let mut out = ShownTopology {
        version: 1,
        name: topology.to_string(),
        networks: BTreeMap::new(),
        sandboxes: BTreeMap::new(),
        endpoints: BTreeMap::new(),
    };

    for b in s.bridges.values() {
        let mut net = ShownNetwork {
            driver: "bridge",
            subnet: None,
            gateway: None,
            ipv6: None,
            internal: false,
            mtu: b.mtu,
            options: BTreeMap::new(),
        };
        for a in &b.addrs {
            match a {
                IpNetwork::V4(v) => {
                    net.subnet = Some(format!("{}/{}", v.network(), v.prefix()));
                    net.gateway = Some(v.ip().to_string());
                }
                IpNetwork::V6(v) => {
                    net.ipv6 = Some(ShownIpv6 {
                        subnet: format!("{}/{}", v.network(), v.prefix()),
                        gateway: Some(v.ip().to_string()),
                    })
                }
            }
        }
        if b.ifname != naming::bridge_name(topology, &b.network) {
            net.options
                .insert("bridge_name".into(), b.ifname.clone().into());
        }
        if let Some(x) = s.vxlans.get(&b.network) {
            // Overlay: the subnet shows on the endpoints, not the bridge.
            net.driver = "overlay";
            net.options.insert("vni".into(), x.vni.into());
            for v in s.veths.values().filter(|v| v.network == b.network) {
                for a in &v.addrs {
                    match a {
                        IpNetwork::V4(x) => {
                            net.subnet = Some(format!("{}/{}", x.network(), x.prefix()))
                        }
                        IpNetwork::V6(x) => {
                            net.ipv6 = Some(ShownIpv6 {
                                subnet: format!("{}/{}", x.network(), x.prefix()),
                                gateway: None,
                            })
                        }
                    }
                }
            }
        }
        out.networks.insert(b.network.clone(), net);
    }

    for ns in s.namespaces.values() {
        let mut sb = ShownSandbox::default();
        if let Some(f) = s.files.get(&naming::hosts_path(&ns.netns)) {
            let (h, d, _) = files::parse_hosts_meta(&f.content);
            sb.hostname = h;
            sb.domainname = d;
        }
        if let Some(f) = s.files.get(&naming::resolv_path(&ns.netns)) {
            let r = files::parse_resolv(&f.content);
            if !(r.nameservers.is_empty() && r.search.is_empty() && r.options.is_empty()) {
                sb.dns = Some(ShownDns {
                    servers: r.nameservers.iter().map(|i| i.to_string()).collect(),
                    search: r.search,
                    options: r.options,
                });
            }
        }
        out.sandboxes.insert(ns.sandbox.clone(), sb);
    }

    let aliases: BTreeMap<String, Vec<String>> = s
        .files
        .values()
        .flat_map(|f| files::parse_hosts_meta(&f.content).2)
        .collect();
    for v in s.veths.values() {
        let mut ep = ShownEndpoint {
            network: v.network.clone(),
            sandbox: v.sandbox.clone(),
            address: None,
            ipv6_address: None,
            mac: None,
            aliases: aliases.get(&v.endpoint).cloned().unwrap_or_default(),
            ports: Vec::new(),
            gateway: false,
        };
        for a in &v.addrs {
            match a {
                IpNetwork::V4(x) => {
                    ep.address = Some(x.ip().to_string());
                    if v.mac.is_some() && v.mac != Some(naming::mac_from_ipv4(x.ip())) {
                        ep.mac = v.mac.map(|m| fmt_mac(&m));
                    }
                }
                IpNetwork::V6(x) => ep.ipv6_address = Some(x.ip().to_string()),
            }
        }
        out.endpoints.insert(v.endpoint.clone(), ep);
    }

    // Which endpoint carries each sandbox's default route. A network whose
    // sandboxes never route through it, while some of them have no default
    // route at all, is internal: that is the only trace `internal` leaves
    // until the firewall records it.
    let mut routed_via: BTreeMap<String, String> = BTreeMap::new(); // sandbox → endpoint
    for r in s.routes.values() {
        if let Some(v) = s
            .veths
            .values()
            .find(|v| v.sandbox == r.sandbox && v.ifname == r.dev)
        {
            routed_via.insert(r.sandbox.clone(), v.endpoint.clone());
        }
    }
    for (sandbox, ep) in &routed_via {
        let first = s
            .veths
            .values()
            .find(|v| &v.sandbox == sandbox)
            .map(|v| v.endpoint.clone());
        if first.as_ref() != Some(ep)
            || s.veths.values().filter(|v| &v.sandbox == sandbox).count() > 1
        {
            if let Some(e) = out.endpoints.get_mut(ep) {
                e.gateway = true;
            }
        }
    }
    if let Some(fw) = &s.firewall {
        // The firewall's rule labels record ports, internal networks and icc.
        for r in fw.rules.iter().filter(|r| r.chain == "prerouting") {
            if let Some((ep, port)) = parse_port_label(&r.label) {
                if let Some(e) = out.endpoints.get_mut(&ep) {
                    if !e.ports.contains(&port) {
                        e.ports.push(port);
                    }
                }
            }
        }
        for (name, net) in out.networks.iter_mut() {
            net.internal = fw
                .rules
                .iter()
                .any(|r| r.label.starts_with(&format!("internal {name}: ")));
            let bridge = s
                .bridges
                .get(name)
                .map(|b| b.ifname.as_str())
                .unwrap_or_default();
            if fw
                .rules
                .iter()
                .any(|r| r.label.starts_with(&format!("icc off on {bridge}:")))
            {
                net.options.insert("icc".into(), false.into());
            }
        }
        return out;
    }
    for (name, net) in out.networks.iter_mut() {
        let members: Vec<&crate::model::VethRes> =
            s.veths.values().filter(|v| &v.network == name).collect();
        let used = members
            .iter()
            .any(|v| routed_via.get(&v.sandbox) == Some(&v.endpoint));
        let some_unrouted = members.iter().any(|v| !routed_via.contains_key(&v.sandbox));
        net.internal = net.driver == "bridge" && !members.is_empty() && !used && some_unrouted;
    }
    out
}

/// `port HOST:P/PROTO → ENDPOINT ADDR:T` → (endpoint, "[HOST:]P:T/PROTO").
/// Wildcard hosts (0.0.0.0, [::]) are left out, as the file would have them.
fn parse_port_label(label: &str) -> Option<(String, String)> {
    let (left, right) = label.strip_prefix("port ")?.split_once(" → ")?;
    let (hostport, proto) = left.rsplit_once('/')?;
    let (host, published) = hostport.rsplit_once(':')?;
    let (ep, addrport) = right.split_once(' ')?;
    let (_, target) = addrport.rsplit_once(':')?;
    let host = match host {
        "0.0.0.0" | "[::]" => String::new(),
        h => format!("{h}:"),
    };
    Some((
        ep.to_string(),
        format!("{host}{published}:{target}/{proto}"),
    ))
}
