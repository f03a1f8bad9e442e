//! The bridge driver's firewall: published ports (DNAT), outbound
//! masquerade, hairpin and localhost access, isolation between networks,
//! internal networks and `icc: false`, accept rules in iptables' FORWARD
//! chain when it exists, and the sysctls all this needs. Pure: typed rules
//! from the desired state.

use super::{bridge_ifname, BridgeOptions};
use crate::drivers::{FirewallCtx, FirewallPart};
use crate::firewall::rules::{self as r, Body};
use crate::firewall::{
    foreign_mark, forward_chain, port_maps as port_maps_of, route_localnet, ICC_CHAIN,
};
use crate::model::{Atom, FwMap, FwRule, LinkRes, SysctlRes};
use crate::naming::MarkKind;
use crate::topology::{Network, PortMapping};
use ipnetwork::IpNetwork;
use std::net::IpAddr;

/// A bridge network with its desired bridge.
struct Net<'a> {
    spec: &'a Network,
    br: &'a LinkRes,
}

pub fn rules(ctx: &FirewallCtx<'_>) -> FirewallPart {
    let nets: Vec<Net<'_>> = ctx
        .networks
        .iter()
        .filter_map(|n| {
            let br = ctx.state.links.get(&(n.name.clone(), MarkKind::Network))?;
            Some(Net { spec: n, br })
        })
        .collect();
    let mut part = FirewallPart::default();
    if nets.is_empty() {
        return part;
    }
    let maps = port_maps(ctx);
    let mut push =
        |chain: &str, label: String, body: Body| part.rules.push(FwRule::new(chain, label, body));
    map_rules(&maps, &mut push);
    ports(ctx, &mut push);
    for n in &nets {
        masquerades(ctx, n, &mut push);
    }
    isolation(&nets, &mut push);
    accepts(ctx, &nets, &mut push);
    icc(ctx, &nets, &mut push);
    part.sysctls = sysctls(ctx, &nets);
    part.maps = maps;
    part
}

/// A port that names no host address binds to its network's
/// `host_binding_ipv4` when the network sets one (Docker's default host IP).
fn with_binding(ctx: &FirewallCtx<'_>, network: &str, pm: &PortMapping) -> PortMapping {
    let binding = ctx
        .topology
        .networks
        .get(network)
        .and_then(|n| n.options.get::<BridgeOptions>())
        .and_then(|o| o.host_binding_ipv4);
    PortMapping {
        host_ip: pm.host_ip.or(binding.map(IpAddr::V4)),
        ..*pm
    }
}

/// A single published port to a single target: one map element. Ranges
/// stay rules of their own (a shifted range is a per-port mapping).
fn single(pm: &PortMapping) -> bool {
    pm.published.0 == pm.published.1 && pm.target.0 == pm.target.1
}

/// Published single ports as elements of the port maps (IPv4/IPv6, any
/// host address / one host address; each an address map and a port map):
/// `[HOST .] PROTO . PORT → ADDR` and `→ TARGET`. The first address of a
/// family wins a key (as the first of two rules did).
fn port_maps(ctx: &FirewallCtx<'_>) -> Vec<FwMap> {
    let mut maps = [
        port_maps_of(true, false),
        port_maps_of(true, true),
        port_maps_of(false, false),
        port_maps_of(false, true),
    ];
    for ep in ctx.topology.endpoints.values() {
        let Some(v) = ctx.state.endpoints.get(&ep.name) else {
            continue;
        };
        for pm in ep.ports.iter().filter(|pm| single(pm)) {
            let pm = &with_binding(ctx, &ep.network, pm);
            for addr in v.addrs.iter().map(IpNetwork::ip) {
                let at = match pm.host_ip {
                    Some(ip) if ip.is_ipv4() != addr.is_ipv4() => continue,
                    Some(ip) if !ip.is_unspecified() => Some(ip),
                    _ => None,
                };
                let i = if addr.is_ipv4() { 0 } else { 2 } + usize::from(at.is_some());
                let mut key: Vec<Atom> = at.iter().map(|ip| Atom::Text(ip.to_string())).collect();
                key.push(Atom::Text(pm.protocol.as_str().to_string()));
                key.push(Atom::Num(u32::from(pm.published.0)));
                let [addrs, ports] = &mut maps[i];
                if addrs.elements.contains_key(&key) {
                    continue;
                }
                let label = port_label(pm, &ep.name, addr);
                addrs
                    .elements
                    .insert(key.clone(), vec![Atom::Text(addr.to_string())]);
                addrs.labels.insert(key.clone(), label.clone());
                ports
                    .elements
                    .insert(key.clone(), vec![Atom::Num(u32::from(pm.target.0))]);
                ports.labels.insert(key, label);
            }
        }
    }
    maps.into_iter()
        .flatten()
        .filter(|m| !m.elements.is_empty())
        .collect()
}

/// The DNAT rules that look the port maps up, for traffic arriving
/// (prerouting) and from the host itself (output): the maps keyed by host
/// address first, then those for any local address.
fn map_rules(maps: &[FwMap], push: &mut impl FnMut(&str, String, Body)) {
    for chain in ["prerouting", "output"] {
        for at_address in [true, false] {
            for addrs in maps
                .iter()
                .filter(|m| (m.key_type.len() == 3) == at_address && m.name.ends_with("_addr"))
            {
                let v4 = addrs.value_type.first().is_some_and(|t| t == "ipv4_addr");
                let base = addrs.name.trim_end_matches("_addr");
                let ports = format!("{base}_port");
                let mut body = Vec::new();
                if !at_address {
                    body.push(r::nfproto(v4));
                    body.push(r::to_local_address());
                }
                body.push(r::dnat_maps(v4, at_address, &addrs.name, &ports));
                let suffix = if chain == "output" {
                    " (from the host)"
                } else {
                    ""
                };
                push(chain, format!("published ports: @{base}_*{suffix}"), body);
            }
        }
    }
}

/// Published port ranges: DNAT from any host address (or the given one),
/// for traffic arriving (prerouting) and from the host itself (output). A
/// range is one rule: the ports kept, or shifted through a map.
fn ports(ctx: &FirewallCtx<'_>, push: &mut impl FnMut(&str, String, Body)) {
    for chain in ["prerouting", "output"] {
        for ep in ctx
            .topology
            .endpoints
            .values()
            .filter(|e| !e.ports.is_empty())
        {
            let Some(v) = ctx.state.endpoints.get(&ep.name) else {
                continue;
            };
            for pm in ep.ports.iter().filter(|pm| !single(pm)) {
                let pm = &with_binding(ctx, &ep.network, pm);
                for addr in v.addrs.iter().map(IpNetwork::ip) {
                    let Some(body) = dnat(pm, addr) else { continue };
                    let suffix = if chain == "output" {
                        " (from the host)"
                    } else {
                        ""
                    };
                    push(
                        chain,
                        format!("{}{suffix}", port_label(pm, &ep.name, addr)),
                        body,
                    );
                }
            }
        }
    }
}

/// Rules are written as nft lists them back (the golden files compare the
/// two): a match on an `ip`/`ip6` header field implies the family, so
/// `meta nfproto` is only written where nothing else says it.
fn dnat(pm: &PortMapping, addr: IpAddr) -> Option<Body> {
    let mut body = Vec::new();
    match pm.host_ip {
        Some(ip) if ip.is_ipv4() != addr.is_ipv4() => return None,
        Some(ip) if !ip.is_unspecified() => body.push(r::daddr_eq(ip)),
        _ => {
            body.push(r::nfproto(addr.is_ipv4()));
            body.push(r::to_local_address());
        }
    }
    let proto = pm.protocol.as_str();
    body.push(r::dport(proto, pm.published));
    body.push(r::dnat(addr, proto, pm.published, pm.target));
    Some(body)
}

/// Outbound masquerade, hairpin, and localhost access to published ports.
fn masquerades(ctx: &FirewallCtx<'_>, n: &Net<'_>, push: &mut impl FnMut(&str, String, Body)) {
    let (net, br) = (n.spec, n.br);
    let publishes = ctx
        .topology
        .endpoints_on_network(&net.name)
        .any(|e| !e.ports.is_empty());
    for subnet in subnets(br) {
        if !net.internal
            && net
                .options
                .get::<BridgeOptions>()
                .is_none_or(|o| o.masquerade)
        {
            push(
                "postrouting",
                format!("masquerade {} {subnet} leaving {}", net.name, br.ifname),
                vec![
                    r::saddr_in(&subnet),
                    r::ifname(false, &br.ifname, true),
                    r::masquerade(),
                ],
            );
        }
        if publishes {
            push(
                "postrouting",
                format!("hairpin {} {subnet} on {}", net.name, br.ifname),
                vec![
                    r::ifname(false, &br.ifname, false),
                    r::saddr_in(&subnet),
                    r::dnated(),
                    r::masquerade(),
                ],
            );
        }
    }
    if publishes && br.addrs.iter().any(|a| a.is_ipv4()) {
        let loopback: IpNetwork = "127.0.0.0/8".parse().expect("a valid prefix");
        push(
            "postrouting",
            format!("localhost to published ports on {}", br.ifname),
            vec![
                r::ifname(false, &br.ifname, false),
                r::saddr_in(&loopback),
                r::masquerade(),
            ],
        );
    }
}

/// Internal networks reach nothing beyond their bridge, and no network
/// reaches another through the host.
fn isolation(nets: &[Net<'_>], push: &mut impl FnMut(&str, String, Body)) {
    for Net { spec: net, br } in nets.iter().filter(|n| n.spec.internal) {
        push(
            "forward",
            format!("internal {}: nothing leaves {}", net.name, br.ifname),
            vec![
                r::ifname(true, &br.ifname, false),
                r::ifname(false, &br.ifname, true),
                r::drop(),
            ],
        );
        push(
            "forward",
            format!("internal {}: nothing enters {}", net.name, br.ifname),
            vec![
                r::ifname(false, &br.ifname, false),
                r::ifname(true, &br.ifname, true),
                r::drop(),
            ],
        );
    }
    let open: Vec<&Net<'_>> = nets.iter().filter(|n| !n.spec.internal).collect();
    for a in &open {
        for b in open.iter().filter(|b| b.spec.name != a.spec.name) {
            push(
                "forward",
                format!("isolate {} → {}", a.spec.name, b.spec.name),
                vec![
                    r::ifname(true, &a.br.ifname, false),
                    r::ifname(false, &b.br.ifname, false),
                    r::drop(),
                ],
            );
        }
    }
}

/// Next to iptables' FORWARD chain (Docker, ufw, … set its policy to
/// DROP, and a drop in any base chain wins): accept what goes in and out
/// of the non-internal bridges there. Plain interface matches only, so
/// iptables-nft can still list and edit that chain.
fn accepts(ctx: &FirewallCtx<'_>, nets: &[Net<'_>], push: &mut impl FnMut(&str, String, Body)) {
    for family in ctx.forward_chains {
        for Net { spec: net, br } in nets.iter().filter(|n| !n.spec.internal) {
            let wanted = match family.as_str() {
                "ip" => br.addrs.iter().any(|a| a.is_ipv4()),
                _ => br.addrs.iter().any(|a| a.is_ipv6()),
            };
            if !wanted {
                continue;
            }
            for (dir, input) in [("from", true), ("to", false)] {
                push(
                    &forward_chain(family),
                    format!(
                        "{} accept {dir} {} ({family} filter FORWARD, network {})",
                        foreign_mark(&ctx.topology.name),
                        br.ifname,
                        net.name
                    ),
                    vec![r::ifname(input, &br.ifname, false), r::accept()],
                );
            }
        }
    }
}

/// `icc: false`: no bridged traffic between the network's own ports.
fn icc(ctx: &FirewallCtx<'_>, nets: &[Net<'_>], push: &mut impl FnMut(&str, String, Body)) {
    for Net { spec: net, br } in nets {
        if net.options.get::<BridgeOptions>().is_none_or(|o| o.icc) {
            continue;
        }
        let ports: Vec<String> = ctx
            .state
            .endpoints
            .values()
            .filter(|v| v.network == net.name)
            .filter_map(|v| v.host.as_ref().map(|h| h.ifname.clone()))
            .collect();
        if ports.len() < 2 {
            continue;
        }
        push(
            ICC_CHAIN,
            format!(
                "icc off on {}: no traffic between its {} endpoints",
                br.ifname,
                ports.len()
            ),
            vec![
                r::ifname_in(true, &ports),
                r::ifname_in(false, &ports),
                r::drop(),
            ],
        );
    }
}

/// Forwarding for non-internal networks (outbound NAT, published ports),
/// and 127.0.0.1 routable into bridges with published ports.
fn sysctls(
    ctx: &FirewallCtx<'_>,
    nets: &[Net<'_>],
) -> std::collections::BTreeMap<String, SysctlRes> {
    let mut keys = Vec::new();
    if nets.iter().any(|n| !n.spec.internal) {
        keys.push("net/ipv4/ip_forward".to_string());
    }
    if nets
        .iter()
        .any(|n| !n.spec.internal && n.br.addrs.iter().any(|a| a.is_ipv6()))
    {
        keys.push("net/ipv6/conf/all/forwarding".to_string());
    }
    for n in nets {
        let publishes = ctx
            .topology
            .endpoints_on_network(&n.spec.name)
            .any(|e| !e.ports.is_empty());
        if publishes && n.br.addrs.iter().any(|a| a.is_ipv4()) {
            keys.push(route_localnet(&bridge_ifname(&ctx.topology.name, n.spec)));
        }
    }
    keys.into_iter()
        .map(|key| {
            (
                key.clone(),
                SysctlRes {
                    key,
                    value: "1".into(),
                },
            )
        })
        .collect()
}

/// `port 0.0.0.0:8080/tcp → web 10.0.0.2:80`.
fn port_label(pm: &PortMapping, endpoint: &str, addr: IpAddr) -> String {
    format!(
        "port {}:{}/{} → {endpoint} {}:{}",
        host_ip(pm, addr),
        range(pm.published),
        pm.protocol.as_str(),
        fmt_addr(addr),
        range(pm.target),
    )
}

/// "80" or "8000-8010".
fn range((a, b): (u16, u16)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
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

fn subnets(br: &LinkRes) -> Vec<IpNetwork> {
    br.addrs
        .iter()
        .filter_map(|a| IpNetwork::new(a.network(), a.prefix()).ok())
        .collect()
}
