//! `overlay`: on each host, a bridge without addresses, a VXLAN device as
//! one of its ports, and a veth pair per local endpoint. The VXLAN device
//! learns nothing: a static FDB entry sends each remote endpoint's MAC to
//! its host's VTEP, a flood entry per remote VTEP carries broadcast, and
//! permanent neighbour entries let the device answer ARP/ND itself. Every
//! value is derived from the file, so all hosts agree without talking.

mod options;

use super::{
    veth, Caps, Diagnostics, Driver, Effect, Gateway, Ipam, Kernel, Learned, LinkView, NetworkCtx,
    NetworkInput, Options, ShowCtx,
};
use crate::errors::ApplyError;
use crate::model::{EndpointRes, FdbRes, LinkRes, Mac, NeighRes, State};
use crate::naming::{self, MarkKind};
use crate::netlink::{add_marked, index_of};
use crate::topology::file::FileNetwork;
use crate::topology::{Host, Loc, Network};
use netlink_packet_route::link::{InfoData, InfoVxlan, LinkInfo};
use rtnetlink::LinkVxlan;
use std::collections::BTreeSet;
use std::net::IpAddr;

pub use options::{derived_vni, OverlayOptions};

pub struct OverlayDriver;

/// IANA's VXLAN port (the kernel's default is the pre-standard 8472).
pub const VXLAN_PORT: u16 = 4789;

/// Bytes VXLAN adds to each frame: outer IPv4 (20) or IPv6 (40), UDP (8),
/// VXLAN (8) and the inner Ethernet header (14).
pub fn vxlan_overhead(underlay: &IpAddr) -> u32 {
    if underlay.is_ipv4() {
        50
    } else {
        70
    }
}

/// An endpoint of the network on another host.
struct Remote {
    vtep: IpAddr,
    mac: Mac,
    ips: Vec<IpAddr>,
}

impl Driver for OverlayDriver {
    fn claims(&self, link: &LinkRes) -> Vec<(&'static str, String)> {
        link.settings
            .iter()
            .filter(|(k, _)| k == "vni")
            .map(|(_, v)| ("vni", v.clone()))
            .collect()
    }

    fn options_schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "vni": { "type": "integer", "minimum": 1, "maximum": 16777215 },
                (super::DOCKER_MTU_OPTION): crate::topology::schema::docker_mtu()
            }
        })
    }
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn caps(&self) -> Caps {
        Caps {
            ipam: Ipam::Hashed,
            gateway: Gateway::None,
            needs_subnet: true,
            spans_hosts: true,
            network_link: true,
            ..Caps::ADDRESSED
        }
    }

    fn check(&self, net: &NetworkInput<'_>, d: &mut Diagnostics) -> Options {
        options::check(net, d)
    }

    fn check_together(&self, nets: &[&Network], d: &mut Diagnostics) {
        options::check_vnis(nets, d);
    }

    fn link_kinds(&self) -> &'static [&'static str] {
        &["bridge", "vxlan", "veth"]
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) -> Result<(), (Loc, String)> {
        let Some(me) = ctx.me else {
            return Ok(()); // not realized on this host
        };
        let net = ctx.network;
        let mtu = mtu(net, me, ctx)?;
        let bridge = super::bridge::bridge_ifname(ctx.topology, net);
        let dev = vxlan_name(ctx.topology, &net.name);
        let link = veth::bridge_link(self.name(), &net.name, &bridge, mtu, BTreeSet::new());
        out.links.insert(link.key(), link);
        let vni = net.options.get::<OverlayOptions>().map_or(0, |o| o.vni);
        let vx = LinkRes {
            network: net.name.clone(),
            role: MarkKind::Vtep,
            ifname: dev.clone(),
            kind: "vxlan".into(),
            mtu,
            addrs: BTreeSet::new(),
            up: true,
            master: bridge.clone(),
            settings: settings(vni, me.address, VXLAN_PORT, false, true),
            driver: self.name().into(),
        };
        out.links.insert(vx.key(), vx);
        veth::endpoints(ctx, self.name(), &bridge, mtu, false, out);
        for r in remotes(ctx, me) {
            entries(&net.name, &dev, &r, out);
        }
        Ok(())
    }

    fn create_link<'a>(&'a self, l: &'a LinkRes, k: &'a dyn Kernel) -> Effect<'a, ()> {
        match l.kind.as_str() {
            "vxlan" => Box::pin(create_vxlan(l, k)),
            _ => veth::create_bridge(l, k),
        }
    }

    fn create_endpoint<'a>(&'a self, e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, Learned> {
        veth::create(e, k)
    }

    fn settings(&self, link: &LinkView<'_>) -> Option<Vec<(String, String)>> {
        if link.kind != "vxlan" {
            return None;
        }
        let attrs = link.info.iter().find_map(|i| match i {
            LinkInfo::Data(InfoData::Vxlan(a)) => Some(a),
            _ => None,
        })?;
        let (mut vni, mut local, mut port, mut learning, mut proxy) =
            (0, IpAddr::from([0, 0, 0, 0]), 0, false, false);
        for a in attrs {
            match a {
                InfoVxlan::Id(id) => vni = *id,
                InfoVxlan::Local(ip) => local = IpAddr::V4(*ip),
                InfoVxlan::Local6(ip) => local = IpAddr::V6(*ip),
                InfoVxlan::Port(p) => port = *p,
                InfoVxlan::Learning(b) => learning = *b,
                InfoVxlan::Proxy(b) => proxy = *b,
                _ => {}
            }
        }
        Some(settings(vni, local, port, learning, proxy))
    }

    fn show(&self, net: &mut FileNetwork, ctx: &ShowCtx<'_>) {
        let key = (ctx.network.to_string(), MarkKind::Vtep);
        if let Some(vni) = ctx.state.links.get(&key).and_then(|x| setting(x, "vni")) {
            if vni != derived_vni(ctx.topology, ctx.network).to_string() {
                net.options
                    .insert("vni".into(), vni.parse::<u64>().unwrap_or(0).into());
            }
        }
        // Without a record: the subnets show on the endpoints.
        for v in ctx
            .state
            .endpoints
            .values()
            .filter(|v| v.network == ctx.network)
        {
            for a in &v.addrs {
                match a {
                    ipnetwork::IpNetwork::V4(x) if net.subnet.is_none() => {
                        net.subnet = Some(format!("{}/{}", x.network(), x.prefix()))
                    }
                    ipnetwork::IpNetwork::V6(x) if net.ipv6.is_none() => {
                        net.ipv6 = Some(crate::topology::file::FileIpv6 {
                            subnet: format!("{}/{}", x.network(), x.prefix()),
                            ..Default::default()
                        })
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The VXLAN device's fixed settings, VNI first (it names the device).
fn settings(
    vni: u32,
    local: IpAddr,
    port: u16,
    learning: bool,
    proxy: bool,
) -> Vec<(String, String)> {
    vec![
        ("vni".into(), vni.to_string()),
        ("local".into(), local.to_string()),
        ("port".into(), port.to_string()),
        ("learning".into(), learning.to_string()),
        ("arp proxy".into(), proxy.to_string()),
    ]
}

fn setting(l: &LinkRes, key: &str) -> Option<String> {
    l.settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// The underlay's MTU less VXLAN's overhead, unless `mtu:` says.
fn mtu(net: &Network, me: &Host, ctx: &NetworkCtx<'_>) -> Result<u32, (Loc, String)> {
    let Some((link, underlay)) = ctx.facts.local_addrs.get(&me.address) else {
        return Err((
            me.loc,
            format!(
                "host {}: no interface of this machine has address {} (the VTEP of network {}); is --host {} right?",
                me.name, me.address, net.name, me.name
            ),
        ));
    };
    let overhead = vxlan_overhead(&me.address);
    match net.mtu {
        Some(m) => Ok(m),
        None if *underlay > overhead + 68 => Ok(underlay - overhead),
        None => Err((
            net.loc,
            format!(
                "network {}: the underlay {link} has MTU {underlay}, too small for VXLAN; set mtu:",
                net.name
            ),
        )),
    }
}

/// The network's endpoints on other hosts, with their VTEP, MAC and
/// addresses (all derived from the file).
fn remotes(ctx: &NetworkCtx<'_>, me: &Host) -> Vec<Remote> {
    let full = ctx.full;
    let mut out = Vec::new();
    for e in full.endpoints_on_network(&ctx.network.name) {
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
        let (v4, v6) = ctx.addresses.get(&e.name).cloned().unwrap_or_default();
        let Some(mac) = e.mac.or_else(|| v4.map(|v| naming::mac_from_ipv4(v.ip()))) else {
            continue;
        };
        out.push(Remote {
            vtep: host.address,
            mac,
            ips: super::ips(v4, v6),
        });
    }
    out
}

/// A remote endpoint's FDB entry, its VTEP's flood entry, and a neighbour
/// entry per address.
fn entries(network: &str, dev: &str, r: &Remote, out: &mut State) {
    for dst in [r.mac, [0; 6]] {
        out.fdb.insert(
            (network.to_string(), dst, r.vtep),
            FdbRes {
                network: network.to_string(),
                dev: dev.to_string(),
                mac: dst,
                dst: r.vtep,
            },
        );
    }
    for ip in &r.ips {
        out.neighs.insert(
            (network.to_string(), *ip),
            NeighRes {
                network: network.to_string(),
                dev: dev.to_string(),
                ip: *ip,
                mac: r.mac,
            },
        );
    }
}

/// The VXLAN device, made as a port of its bridge (down under its
/// temporary name, marked, renamed, up).
async fn create_vxlan(l: &LinkRes, k: &dyn Kernel) -> Result<(), ApplyError> {
    let what = format!("create vxlan {}", l.ifname);
    let err = |source| ApplyError::Kernel {
        action: what.clone(),
        source,
    };
    let get = |key: &str| setting(l, key).unwrap_or_default();
    let tmp = k.temp_name(&l.ifname)?;
    let bridge = index_of(k.host(), &l.master).await.map_err(err)?;
    let mut msg = LinkVxlan::new(&tmp, get("vni").parse().unwrap_or(0))
        .port(get("port").parse().unwrap_or(VXLAN_PORT))
        .learning(get("learning") == "true")
        .proxy(get("arp proxy") == "true")
        .mtu(l.mtu)
        .controller(bridge)
        .down();
    msg = match get("local").parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => msg.local(a),
        Ok(IpAddr::V6(a)) => msg.local6(a),
        Err(_) => msg,
    };
    let mark = naming::mark(k.topology(), l.role, &l.network);
    add_marked(k.host(), msg.build(), &tmp, &l.ifname, mark, l.up)
        .await
        .map(|_| ())
        .map_err(err)
}

/// VXLAN device of an overlay network: `vx-<topology>-<network>` when that
/// fits in 15 bytes, else `vx-` and 12 hex digits of a hash.
pub fn vxlan_name(topology: &str, network: &str) -> String {
    let readable = format!("vx-{topology}-{network}");
    if readable.len() <= 15 {
        readable
    } else {
        format!(
            "vx-{}",
            naming::short_hash(&[topology, network, "vxlan"], 12)
        )
    }
}
