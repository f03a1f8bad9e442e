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

mod ports;
use ports::*;

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

fn subnets(br: &LinkRes) -> Vec<IpNetwork> {
    br.addrs
        .iter()
        .filter_map(|a| IpNetwork::new(a.network(), a.prefix()).ok())
        .collect()
}
