//! The firewall half of the bridge driver: published ports (DNAT), outbound
//! masquerade, isolation between networks, internal networks and
//! `icc: false`, as nftables rules in tables cnm owns. `rules` is pure (the
//! desired rules, rendered from the topology); `nft` talks to the kernel.

pub mod nft;

use crate::model::{BridgeRes, FirewallRes, FwRule, State, SysctlRes};
use crate::spec::{DriverKind, PortMapping, Protocol, Topology};
use ipnetwork::IpNetwork;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The table name for a topology (both families use it).
pub fn table_name(topology: &str) -> String {
    format!("cnm-{topology}")
}

/// Chains of the inet table, in creation order: (name, type, hook, priority).
pub const INET_CHAINS: [(&str, &str, &str, i32); 4] = [
    ("prerouting", "nat", "prerouting", -100),
    ("output", "nat", "output", -100),
    ("postrouting", "nat", "postrouting", 100),
    ("forward", "filter", "forward", 0),
];
/// The bridge-family chain enforcing `icc: false`.
pub const ICC_CHAIN: &str = "icc";

/// Desired firewall and sysctls for the bridge networks of `t`, given the
/// already-resolved bridges and veths in `state`.
/// The pseudo-chain naming iptables' `FORWARD` chain of a family
/// (`ip filter FORWARD`): cnm owns rules there, not the chain.
pub fn forward_chain(family: &str) -> String {
    format!("{FOREIGN_PREFIX}{family}")
}
pub const FOREIGN_PREFIX: &str = "iptables-forward-";

/// cnm's rules in foreign chains, in one order (inserting puts each on
/// top, so the kernel lists them reversed; their order does not matter).
pub fn sorted_foreign(mut rules: Vec<FwRule>) -> Vec<FwRule> {
    rules.sort_by(|a, b| (&a.chain, &a.label).cmp(&(&b.chain, &b.label)));
    rules
}

/// The mark that starts the label of cnm's rules in a foreign chain.
pub fn foreign_mark(topology: &str) -> String {
    format!("cnm:{topology}:forward")
}

pub fn desired(
    t: &Topology,
    state: &State,
    forward_chains: &[String],
) -> (Option<FirewallRes>, BTreeMap<String, SysctlRes>) {
    let mut sysctls = BTreeMap::new();
    let bridges: Vec<(&crate::spec::Network, &BridgeRes)> = t
        .networks
        .values()
        .filter(|n| n.driver == DriverKind::Bridge)
        .filter_map(|n| state.bridges.get(&n.name).map(|b| (n, b)))
        .collect();
    if bridges.is_empty() {
        return (None, sysctls);
    }
    let mut rules = Vec::new();
    let mut push =
        |chain: &str, label: String, body: Vec<Value>| rules.push(FwRule::new(chain, label, body));

    // Published ports: DNAT from any host address (or the given one), for
    // traffic arriving (prerouting) and from the host itself (output). A
    // range is one rule: the ports unchanged, or shifted through a map.
    for chain in ["prerouting", "output"] {
        for ep in t.endpoints.values().filter(|e| !e.ports.is_empty()) {
            let Some(v) = state.veths.get(&ep.name) else {
                continue;
            };
            for pm in &ep.ports {
                for addr in v.addrs.iter().map(IpNetwork::ip) {
                    if let Some(body) = dnat(pm, addr) {
                        let suffix = if chain == "output" {
                            " (from the host)"
                        } else {
                            ""
                        };
                        push(
                            chain,
                            format!(
                                "port {}:{}/{} → {} {}:{}{suffix}",
                                host_ip(pm, addr),
                                range(pm.published),
                                pm.protocol.as_str(),
                                ep.name,
                                fmt_addr(addr),
                                range(pm.target),
                            ),
                            body,
                        );
                    }
                }
            }
        }
    }

    // Outbound masquerade, hairpin and localhost access to published ports.
    for (net, br) in &bridges {
        let publishes = t
            .endpoints_on_network(&net.name)
            .any(|e| !e.ports.is_empty());
        for subnet in subnets(br) {
            let (family, proto) = family_of(&subnet);
            if !net.internal {
                push(
                    "postrouting",
                    format!("masquerade {} {subnet} leaving {}", net.name, br.ifname),
                    vec![
                        nfproto(family),
                        m(
                            "==",
                            json!({"payload": {"protocol": proto, "field": "saddr"}}),
                            prefix(&subnet),
                        ),
                        m("!=", meta("oifname"), json!(br.ifname)),
                        json!({"masquerade": null}),
                    ],
                );
            }
            if publishes {
                push(
                    "postrouting",
                    format!("hairpin {} {subnet} on {}", net.name, br.ifname),
                    vec![
                        m("==", meta("oifname"), json!(br.ifname)),
                        m(
                            "==",
                            json!({"payload": {"protocol": proto, "field": "saddr"}}),
                            prefix(&subnet),
                        ),
                        m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                        json!({"masquerade": null}),
                    ],
                );
            }
        }
        if publishes && br.addrs.iter().any(|a| a.is_ipv4()) {
            push(
                "postrouting",
                format!("localhost to published ports on {}", br.ifname),
                vec![
                    m("==", meta("oifname"), json!(br.ifname)),
                    m(
                        "==",
                        json!({"payload": {"protocol": "ip", "field": "saddr"}}),
                        json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                    ),
                    json!({"masquerade": null}),
                ],
            );
            sysctls.insert(
                route_localnet(&br.ifname),
                SysctlRes {
                    key: route_localnet(&br.ifname),
                    value: "1".into(),
                },
            );
        }
    }

    // Internal networks reach nothing beyond their bridge, and no network
    // reaches another through the host.
    for (net, br) in &bridges {
        if net.internal {
            push(
                "forward",
                format!("internal {}: nothing leaves {}", net.name, br.ifname),
                vec![
                    m("==", meta("iifname"), json!(br.ifname)),
                    m("!=", meta("oifname"), json!(br.ifname)),
                    json!({"drop": null}),
                ],
            );
            push(
                "forward",
                format!("internal {}: nothing enters {}", net.name, br.ifname),
                vec![
                    m("==", meta("oifname"), json!(br.ifname)),
                    m("!=", meta("iifname"), json!(br.ifname)),
                    json!({"drop": null}),
                ],
            );
        }
    }
    for (a, ba) in bridges.iter().filter(|(n, _)| !n.internal) {
        for (b, bb) in bridges
            .iter()
            .filter(|(n, _)| !n.internal && n.name != a.name)
        {
            push(
                "forward",
                format!("isolate {} → {}", a.name, b.name),
                vec![
                    m("==", meta("iifname"), json!(ba.ifname)),
                    m("==", meta("oifname"), json!(bb.ifname)),
                    json!({"drop": null}),
                ],
            );
        }
    }

    // Next to iptables' FORWARD chain (Docker, ufw, ... set its policy to
    // DROP, and a drop in any base chain wins): accept what goes in and out
    // of cnm's non-internal bridges there. Plain interface matches only, so
    // iptables-nft can still list and edit that chain.
    for family in forward_chains {
        for (net, br) in bridges.iter().filter(|(n, _)| !n.internal) {
            let wanted = match family.as_str() {
                "ip" => br.addrs.iter().any(|a| a.is_ipv4()),
                _ => br.addrs.iter().any(|a| a.is_ipv6()),
            };
            if !wanted {
                continue;
            }
            for (dir, key) in [("from", "iifname"), ("to", "oifname")] {
                push(
                    &forward_chain(family),
                    format!(
                        "{} accept {dir} {} ({family} filter FORWARD, network {})",
                        foreign_mark(&t.name),
                        br.ifname,
                        net.name
                    ),
                    vec![
                        m("==", meta(key), json!(br.ifname)),
                        json!({"accept": null}),
                    ],
                );
            }
        }
    }

    // icc: false — bridged traffic between the network's own ports.
    let mut bridge_table = false;
    for (net, br) in bridges.iter().filter(|(n, _)| !n.icc) {
        let ports: Vec<&str> = state
            .veths
            .values()
            .filter(|v| v.network == net.name)
            .map(|v| v.host_ifname.as_str())
            .collect();
        if ports.len() < 2 {
            continue;
        }
        bridge_table = true;
        let set = json!({"set": ports});
        push(
            ICC_CHAIN,
            format!(
                "icc off on {}: no traffic between its {} endpoints",
                br.ifname,
                ports.len()
            ),
            vec![
                m("==", meta("iifname"), set.clone()),
                m("==", meta("oifname"), set),
                json!({"drop": null}),
            ],
        );
    }

    // Forwarding for non-internal networks (outbound NAT, published ports).
    if bridges.iter().any(|(n, _)| !n.internal) {
        sysctls.insert(
            "net/ipv4/ip_forward".into(),
            SysctlRes {
                key: "net/ipv4/ip_forward".into(),
                value: "1".into(),
            },
        );
    }
    if bridges
        .iter()
        .any(|(n, b)| !n.internal && b.addrs.iter().any(|a| a.is_ipv6()))
    {
        let key = "net/ipv6/conf/all/forwarding".to_string();
        sysctls.insert(
            key.clone(),
            SysctlRes {
                key,
                value: "1".into(),
            },
        );
    }

    let (foreign, mut rules): (Vec<FwRule>, Vec<FwRule>) = rules
        .into_iter()
        .partition(|r| r.chain.starts_with(FOREIGN_PREFIX));
    rules.extend(sorted_foreign(foreign));
    let fw = FirewallRes {
        table: table_name(&t.name),
        bridge_table,
        rules,
        intact: true,
    };
    (Some(fw), sysctls)
}

pub fn route_localnet(bridge: &str) -> String {
    format!("net/ipv4/conf/{bridge}/route_localnet")
}

/// "80" or "8000-8010".
fn range((a, b): (u16, u16)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// The DNAT rule for one published mapping towards `addr`, if the host
/// IP's family fits. Ports kept as they are need no port in the DNAT;
/// shifted ranges map each host port to its target (one map element per
/// port, one rule in all).
fn dnat(pm: &PortMapping, addr: IpAddr) -> Option<Vec<Value>> {
    let (family, proto, nat) = match addr {
        IpAddr::V4(_) => ("ipv4", "ip", "ip"),
        IpAddr::V6(_) => ("ipv6", "ip6", "ip6"),
    };
    let mut body = vec![nfproto(family)];
    match pm.host_ip {
        Some(ip) if ip.is_ipv4() != addr.is_ipv4() => return None,
        Some(ip) if !ip.is_unspecified() => {
            body.push(m(
                "==",
                json!({"payload": {"protocol": proto, "field": "daddr"}}),
                json!(ip.to_string()),
            ));
        }
        _ => body.push(m(
            "==",
            json!({"fib": {"result": "type", "flags": ["daddr"]}}),
            json!("local"),
        )),
    }
    let dport = json!({"payload": {"protocol": l4(pm.protocol), "field": "dport"}});
    let (lo, hi) = pm.published;
    body.push(m(
        "==",
        dport.clone(),
        if lo == hi {
            json!(lo)
        } else {
            json!({"range": [lo, hi]})
        },
    ));
    let port = if pm.published == pm.target {
        None
    } else if lo == hi {
        Some(json!(pm.target.0))
    } else {
        let pairs: Vec<Value> = (lo..=hi)
            .map(|p| json!([p, pm.target.0 + (p - lo)]))
            .collect();
        Some(json!({"map": {"key": dport, "data": {"set": pairs}}}))
    };
    let mut stmt = json!({"family": nat, "addr": addr.to_string()});
    if let Some(p) = port {
        stmt["port"] = p;
    }
    body.push(json!({ "dnat": stmt }));
    Some(body)
}

fn l4(p: Protocol) -> &'static str {
    p.as_str()
}

fn host_ip(pm: &PortMapping, addr: IpAddr) -> String {
    match (pm.host_ip, addr) {
        (Some(ip), _) => fmt_addr(ip),
        (None, IpAddr::V4(_)) => "0.0.0.0".into(),
        (None, IpAddr::V6(_)) => "[::]".into(),
    }
}

fn fmt_addr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

fn subnets(br: &BridgeRes) -> Vec<IpNetwork> {
    br.addrs
        .iter()
        .filter_map(|a| IpNetwork::new(a.network(), a.prefix()).ok())
        .collect()
}

fn family_of(n: &IpNetwork) -> (&'static str, &'static str) {
    if n.is_ipv4() {
        ("ipv4", "ip")
    } else {
        ("ipv6", "ip6")
    }
}

fn nfproto(family: &str) -> Value {
    m("==", meta("nfproto"), json!(family))
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn m(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn prefix(n: &IpNetwork) -> Value {
    json!({"prefix": {"addr": n.network().to_string(), "len": n.prefix()}})
}
