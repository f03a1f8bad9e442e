//! `overlay`: on each host, a bridge without addresses, a VXLAN device as
//! one of its ports, and a veth pair per local endpoint. The VXLAN device
//! learns nothing: a static FDB entry sends each remote endpoint's MAC to
//! its host's VTEP, a flood entry per remote VTEP carries broadcast, and
//! permanent neighbour entries let the device answer ARP/ND itself.

use super::bridge::{add_veths, bridge_ifname};
use super::{Driver, NetworkCtx, VXLAN_PORT};
use crate::model::{BridgeRes, FdbRes, NeighRes, State, VxlanRes};
use crate::naming;
use crate::spec::DriverKind;
use std::collections::BTreeSet;

pub struct OverlayDriver;

impl Driver for OverlayDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Overlay
    }

    fn gives_interface(&self) -> bool {
        true
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) {
        let Some(ov) = &ctx.overlay else {
            return; // not realized on this host
        };
        let net = ctx.network;
        let bridge = bridge_ifname(ctx.topology, net);
        let dev = naming::vxlan_name(ctx.topology, &net.name);
        out.bridges.insert(
            net.name.clone(),
            BridgeRes {
                network: net.name.clone(),
                ifname: bridge.clone(),
                mtu: ov.mtu,
                addrs: BTreeSet::new(),
                up: true,
                marked: true,
            },
        );
        out.vxlans.insert(
            net.name.clone(),
            VxlanRes {
                network: net.name.clone(),
                ifname: dev.clone(),
                vni: net.vni.unwrap_or(0),
                local: ov.local,
                port: VXLAN_PORT,
                learning: false,
                proxy: true,
                mtu: ov.mtu,
                bridge: bridge.clone(),
                up: true,
                marked: true,
            },
        );
        add_veths(ctx, &bridge, ov.mtu, false, out);
        for r in &ov.remotes {
            for dst in [r.mac, [0; 6]] {
                out.fdb.insert(
                    (net.name.clone(), dst, r.vtep),
                    FdbRes {
                        network: net.name.clone(),
                        dev: dev.clone(),
                        mac: dst,
                        dst: r.vtep,
                    },
                );
            }
            for ip in &r.ips {
                out.neighs.insert(
                    (net.name.clone(), *ip),
                    NeighRes {
                        network: net.name.clone(),
                        dev: dev.clone(),
                        ip: *ip,
                        mac: r.mac,
                    },
                );
            }
        }
    }
}
