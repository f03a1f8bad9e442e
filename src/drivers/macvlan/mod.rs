//! `macvlan`: endpoints are macvlan interfaces on a host interface (the
//! parent), each with its own MAC on the parent's segment, so sandboxes sit
//! directly on the outside network. No link of its own on the host, no
//! firewall; the gateway is a router on the outside network. The kernel
//! never passes traffic between a parent and its macvlan children: the host
//! cannot reach its own sandboxes over the parent.

mod options;

use super::parent::{self, setting};
use super::{
    Caps, Diagnostics, Driver, Effect, Gateway, Kernel, Learned, LinkView, NetworkCtx,
    NetworkInput, Options, ShowCtx,
};
use crate::errors::ApplyError;
use crate::model::{EndpointRes, HostFacts, State};
use crate::netlink::index_of;
use crate::topology::file::{FileEndpoint, FileNetwork};
use crate::topology::{Loc, Network};
use netlink_packet_route::link::{InfoData, InfoMacVlan, LinkInfo};
use rtnetlink::LinkMacVlan;
use std::os::fd::AsRawFd;

pub use options::{MacvlanOptions, Mode};

pub struct MacvlanDriver;

fn opts(net: &Network) -> Option<&MacvlanOptions> {
    net.options.get::<MacvlanOptions>()
}

impl Driver for MacvlanDriver {
    fn options_schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["parent"],
            "properties": {
                "parent": crate::topology::schema::ifname(),
                "macvlan_mode": { "enum": options::Mode::NAMES },
                (super::DOCKER_MTU_OPTION): crate::topology::schema::docker_mtu()
            }
        })
    }
    fn name(&self) -> &'static str {
        "macvlan"
    }

    fn caps(&self) -> Caps {
        Caps {
            gateway: Gateway::Outside,
            internal: true,
            ..Caps::ADDRESSED
        }
    }

    fn check(&self, net: &NetworkInput<'_>, d: &mut Diagnostics) -> Options {
        options::check(net, d)
    }

    fn check_together(&self, nets: &[&Network], d: &mut Diagnostics) {
        options::check_parents(nets, d);
    }

    fn check_host(&self, net: &Network, facts: &HostFacts) -> Result<(), (Loc, String)> {
        match opts(net) {
            Some(o) => parent::check_host(net, &o.parent, o.parent_loc, facts),
            None => Ok(()),
        }
    }

    fn host_warnings(&self, net: &Network, facts: &HostFacts) -> Vec<String> {
        opts(net).map_or_else(Vec::new, |o| parent::warnings(net, &o.parent, facts))
    }

    fn link_kinds(&self) -> &'static [&'static str] {
        &["macvlan"]
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) -> Result<(), (Loc, String)> {
        let net = ctx.network;
        let Some(o) = opts(net) else {
            return Ok(());
        };
        if o.mode == Mode::Passthru {
            if let Some(second) = ctx.endpoints.get(1) {
                return Err((
                    second.spec.loc,
                    format!(
                        "endpoint {}: network {} is in passthru mode, which gives parent {} to one endpoint only",
                        second.spec.name, net.name, o.parent
                    ),
                ));
            }
        }
        let mtu = parent::mtu(net, &o.parent, ctx.facts);
        for ep in &ctx.endpoints {
            // A passthru interface takes the parent's MAC, and setting its
            // MAC would set the parent's: cnm asks for none.
            let mac = match (o.mode, ep.spec.mac) {
                (Mode::Passthru, Some(_)) => {
                    return Err((
                        ep.spec.loc,
                        format!(
                            "endpoint {}: network {} is in passthru mode, where the endpoint has the MAC of parent {}; remove mac:",
                            ep.spec.name, net.name, o.parent
                        ),
                    ))
                }
                (Mode::Passthru, None) => None,
                _ => ep.mac,
            };
            let addrs = ep.addrs();
            out.endpoints.insert(
                ep.spec.name.clone(),
                EndpointRes {
                    endpoint: ep.spec.name.clone(),
                    network: net.name.clone(),
                    sandbox: ep.spec.sandbox.clone(),
                    netns: ep.netns.clone(),
                    kind: "macvlan".into(),
                    ifname: ep.ifname.clone(),
                    mac,
                    mtu,
                    addrs,
                    up: true,
                    host: None,
                    settings: settings(&o.parent, o.mode.name()),
                    unknown: Vec::new(),
                    made_with: String::new(),
                    driver: self.name().into(),
                },
            );
        }
        Ok(())
    }

    fn create_endpoint<'a>(&'a self, e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, Learned> {
        Box::pin(create(e, k))
    }

    fn settings(&self, link: &LinkView<'_>) -> Option<Vec<(String, String)>> {
        if link.kind != "macvlan" {
            return None;
        }
        let mode = link
            .info
            .iter()
            .find_map(|i| match i {
                LinkInfo::Data(InfoData::MacVlan(attrs)) => attrs.iter().find_map(|a| match a {
                    InfoMacVlan::Mode(m) => Some(Mode::kernel_name(m)),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap_or_default();
        Some(settings(link.lower.unwrap_or(""), &mode))
    }

    /// A passthru endpoint's MAC is the parent's, which the file cannot
    /// ask for.
    fn show_endpoint(&self, _net: &FileNetwork, ep: &mut FileEndpoint, v: &EndpointRes) {
        if setting(v, "mode") == Some("passthru") {
            ep.mac = None;
        }
    }

    fn show(&self, net: &mut FileNetwork, ctx: &ShowCtx<'_>) {
        // The kernel's word on parent and mode, from any endpoint here.
        let Some(e) = ctx
            .state
            .endpoints
            .values()
            .find(|e| e.network == ctx.network && e.kind == "macvlan")
        else {
            return;
        };
        if let Some(parent) = setting(e, "parent").filter(|p| !p.is_empty()) {
            net.options.insert("parent".into(), parent.into());
        }
        match setting(e, "mode") {
            Some("bridge") | None => {
                net.options.remove("macvlan_mode");
            }
            Some(m) => {
                net.options.insert("macvlan_mode".into(), m.into());
            }
        }
    }
}

/// An endpoint's fixed settings, parent first (it names the interface in
/// plans).
fn settings(parent: &str, mode: &str) -> Vec<(String, String)> {
    vec![
        ("parent".into(), parent.to_string()),
        ("mode".into(), mode.to_string()),
    ]
}

/// The interface is born inside the sandbox (IFLA_NET_NS_FD; the parent
/// is looked up in the host, where the request is made) under its
/// temporary name; there it is marked, renamed, brought up and addressed.
async fn create(e: &EndpointRes, k: &dyn Kernel) -> Result<Learned, ApplyError> {
    let what = format!("create endpoint {}", e.endpoint);
    let err = |source| ApplyError::Kernel {
        action: what.clone(),
        source,
    };
    let parent = setting(e, "parent").unwrap_or_default();
    let mode = match setting(e, "mode") {
        Some("private") => Mode::Private,
        Some("vepa") => Mode::Vepa,
        Some("passthru") => Mode::Passthru,
        _ => Mode::Bridge,
    };
    let tmp = k.temp_name(&e.endpoint)?;
    let ns = k.netns_file(&e.netns)?;
    let parent_idx = index_of(k.host(), parent).await.map_err(err)?;
    let mut msg = LinkMacVlan::new(&tmp, parent_idx, mode.kernel())
        .mtu(e.mtu)
        .setns_by_fd(ns.as_raw_fd());
    if let Some(mac) = e.mac {
        msg = msg.address(mac.to_vec());
    }
    k.host()
        .link()
        .add(msg.build())
        .execute()
        .await
        .map_err(err)?;
    drop(ns);
    parent::finish(e, k, &tmp).await
}
