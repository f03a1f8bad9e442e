//! `bridge` (Docker's default): a Linux bridge holding the gateway
//! addresses, one veth pair per endpoint, and the firewall that publishes
//! ports, masquerades, isolates networks and enforces `icc: false`.

mod firewall;
mod options;

use super::{
    veth, Caps, Diagnostics, Driver, Effect, FirewallCtx, FirewallPart, Kernel, Learned,
    NetworkCtx, NetworkInput, Options, ShowCtx, DEFAULT_MTU,
};
use crate::model::{EndpointRes, LinkRes, State};
use crate::naming::{self, MarkKind};
use crate::topology::file::FileNetwork;
use crate::topology::{Loc, Network};
use ipnetwork::IpNetwork;
use std::collections::BTreeSet;

pub use options::BridgeOptions;

pub struct BridgeDriver;

/// The bridge's kernel name for a network: `options.bridge_name`, else
/// `br-<topology>-<network>` (or `br-` and a hash when that is too long).
pub fn bridge_ifname(topology: &str, network: &Network) -> String {
    network
        .options
        .get::<BridgeOptions>()
        .and_then(|o| o.bridge_name.clone())
        .unwrap_or_else(|| bridge_name(topology, &network.name))
}

impl Driver for BridgeDriver {
    fn options_schema(&self) -> serde_json::Value {
        options::schema()
    }
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn caps(&self) -> Caps {
        Caps {
            internal: true,
            ports: true,
            network_link: true,
            ..Caps::ADDRESSED
        }
    }

    fn check(&self, net: &NetworkInput<'_>, d: &mut Diagnostics) -> Options {
        options::check(net, d)
    }

    fn check_together(&self, nets: &[&Network], d: &mut Diagnostics) {
        options::check_names(nets, d);
    }

    fn link_kinds(&self) -> &'static [&'static str] {
        &["bridge", "veth"]
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) -> Result<(), (Loc, String)> {
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
        let link = veth::bridge_link(self.name(), &net.name, &ifname, mtu, addrs);
        out.links.insert(link.key(), link);
        veth::endpoints(ctx, self.name(), &ifname, mtu, true, out);
        Ok(())
    }

    fn firewall(&self, ctx: &FirewallCtx<'_>) -> FirewallPart {
        firewall::rules(ctx)
    }

    fn create_link<'a>(&'a self, l: &'a LinkRes, k: &'a dyn Kernel) -> Effect<'a, ()> {
        veth::create_bridge(l, k)
    }

    fn create_endpoint<'a>(&'a self, e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, Learned> {
        veth::create(e, k)
    }

    fn show(&self, net: &mut FileNetwork, ctx: &ShowCtx<'_>) {
        let Some(b) = ctx
            .state
            .links
            .get(&(ctx.network.to_string(), MarkKind::Network))
        else {
            return;
        };
        if b.ifname != bridge_name(ctx.topology, ctx.network) {
            net.options
                .insert("bridge_name".into(), b.ifname.clone().into());
        }
        let range = net.ip_range.take();
        let range6 = net.ipv6.take().and_then(|v| v.ip_range);
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
                    net.ipv6 = Some(crate::topology::file::FileIpv6 {
                        subnet: format!("{}/{}", v.network(), v.prefix()),
                        gateway: Some(v.ip().to_string()),
                        ip_range: range6.clone(),
                    })
                }
            }
        }
        if let Some(fw) = &ctx.state.firewall {
            // The firewall's rules record internal networks and icc.
            net.internal = fw
                .rules
                .iter()
                .any(|r| r.label.starts_with(&format!("internal {}: ", ctx.network)));
            if fw
                .rules
                .iter()
                .any(|r| r.label.starts_with(&format!("icc off on {}:", b.ifname)))
            {
                net.options.insert("icc".into(), false.into());
            }
            // A network that is not internal and has no masquerade rule
            // was written with masquerade: false.
            let masquerades = fw
                .rules
                .iter()
                .any(|r| r.label.starts_with(&format!("masquerade {} ", ctx.network)));
            if !net.internal && !masquerades && !b.addrs.is_empty() {
                net.options.insert("masquerade".into(), false.into());
            }
        }
    }
}

/// Default bridge name: `br-<topology>-<network>` when that fits in 15 bytes,
/// else `br-` and 12 hex digits of a hash (Docker's `br-<id>` shape).
pub fn bridge_name(topology: &str, network: &str) -> String {
    let readable = format!("br-{topology}-{network}");
    if readable.len() <= 15 {
        readable
    } else {
        format!("br-{}", naming::short_hash(&[topology, network], 12))
    }
}

#[cfg(test)]
mod name_tests {
    use super::bridge_name;

    #[test]
    fn bridge_names_fit() {
        assert_eq!(bridge_name("shop", "front"), "br-shop-front");
        let long = bridge_name("a-long-topology", "network");
        assert!(long.starts_with("br-") && long.len() == 15);
    }
}
