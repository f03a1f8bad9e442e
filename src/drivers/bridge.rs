//! `bridge`: a Linux bridge holding the gateway addresses, and one veth pair
//! per endpoint (host end on the bridge, `ethN` in the sandbox).

use super::{Driver, NetworkCtx, DEFAULT_MTU};
use crate::model::{BridgeRes, State, VethRes};
use crate::naming;
use crate::spec::DriverKind;
use ipnetwork::IpNetwork;
use std::collections::BTreeSet;

pub struct BridgeDriver;

/// The bridge's kernel name for a network.
pub fn bridge_ifname(topology: &str, network: &crate::spec::Network) -> String {
    network
        .bridge_name
        .clone()
        .unwrap_or_else(|| naming::bridge_name(topology, &network.name))
}

impl Driver for BridgeDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Bridge
    }

    fn gives_interface(&self) -> bool {
        true
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) {
        let net = ctx.network;
        let ifname = bridge_ifname(ctx.topology, net);
        let mtu = net.mtu.unwrap_or(DEFAULT_MTU);
        let mut addrs = BTreeSet::new();
        if let Some(g) = ctx.addressing.gateway_v4 {
            addrs.insert(IpNetwork::V4(g));
        }
        if let Some(g) = ctx.addressing.gateway_v6 {
            addrs.insert(IpNetwork::V6(g));
        }
        out.bridges.insert(
            net.name.clone(),
            BridgeRes {
                network: net.name.clone(),
                ifname: ifname.clone(),
                mtu,
                addrs,
                up: true,
                marked: true,
            },
        );
        add_veths(ctx, &ifname, mtu, true, out);
    }
}

/// One veth pair per endpoint: host end on `bridge`, `ethN` in the sandbox.
pub fn add_veths(ctx: &NetworkCtx<'_>, bridge: &str, mtu: u32, hairpin: bool, out: &mut State) {
    for ep in &ctx.endpoints {
        let mut addrs = BTreeSet::new();
        if let Some(a) = ep.ipv4 {
            addrs.insert(IpNetwork::V4(a));
        }
        if let Some(a) = ep.ipv6 {
            addrs.insert(IpNetwork::V6(a));
        }
        out.veths.insert(
            ep.spec.name.clone(),
            VethRes {
                endpoint: ep.spec.name.clone(),
                network: ctx.network.name.clone(),
                sandbox: ep.spec.sandbox.clone(),
                netns: ep.netns.clone(),
                host_ifname: naming::host_veth_name(ctx.topology, &ep.spec.name),
                bridge: bridge.to_string(),
                ifname: ep.ifname.clone(),
                mac: ep.mac,
                mtu,
                addrs,
                up: true,
                marked: true,
                hairpin,
            },
        );
    }
}
