//! `ipvlan`, Docker's driver of that name: endpoints are ipvlan interfaces
//! on a host interface (the parent), sharing its MAC. In l2 mode (the
//! default) they sit on the parent's segment, their gateway a router
//! there, like macvlan; in l3 and l3s the parent routes for them: no
//! gateway, the default route goes out of the endpoint's interface. No
//! link of its own on the host, no firewall. Kernels without ipvlan (this
//! project's CI machines) are told so by plan, before any change.

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
use netlink_packet_route::link::{InfoData, InfoIpVlan, LinkInfo};
use rtnetlink::LinkIpVlan;
use std::os::fd::AsRawFd;

pub use options::{Flag, IpvlanOptions, Mode};

pub struct IpvlanDriver;

fn opts(net: &Network) -> Option<&IpvlanOptions> {
    net.options.get::<IpvlanOptions>()
}

impl Driver for IpvlanDriver {
    fn options_schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["parent"],
            "properties": {
                "parent": crate::topology::schema::ifname(),
                "ipvlan_mode": { "enum": Mode::NAMES },
                "ipvlan_flag": { "enum": Flag::NAMES },
                (super::DOCKER_MTU_OPTION): crate::topology::schema::docker_mtu()
            }
        })
    }

    fn name(&self) -> &'static str {
        "ipvlan"
    }

    fn caps(&self) -> Caps {
        Caps {
            gateway: Gateway::Outside,
            internal: true,
            ..Caps::ADDRESSED
        }
    }

    fn network_caps(&self, options: &Options) -> Caps {
        let routed = options
            .get::<IpvlanOptions>()
            .is_some_and(|o| o.mode != Mode::L2);
        Caps {
            gateway: if routed {
                Gateway::Device
            } else {
                Gateway::Outside
            },
            ..self.caps()
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
        &["ipvlan"]
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) -> Result<(), (Loc, String)> {
        let net = ctx.network;
        let Some(o) = opts(net) else {
            return Ok(());
        };
        let mtu = parent::mtu(net, &o.parent, ctx.facts);
        for ep in &ctx.endpoints {
            if ep.spec.mac.is_some() {
                return Err((
                    ep.spec.loc,
                    format!(
                        "endpoint {}: ipvlan endpoints have the MAC of their parent ({}); remove mac:",
                        ep.spec.name, o.parent
                    ),
                ));
            }
            out.endpoints.insert(
                ep.spec.name.clone(),
                EndpointRes {
                    endpoint: ep.spec.name.clone(),
                    network: net.name.clone(),
                    sandbox: ep.spec.sandbox.clone(),
                    netns: ep.netns.clone(),
                    kind: "ipvlan".into(),
                    ifname: ep.ifname.clone(),
                    mac: None,
                    mtu,
                    addrs: ep.addrs(),
                    up: true,
                    host: None,
                    settings: settings(&o.parent, o.mode.name(), o.flag.name()),
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
        if link.kind != "ipvlan" {
            return None;
        }
        let attrs = link.info.iter().find_map(|i| match i {
            LinkInfo::Data(InfoData::IpVlan(attrs)) => Some(attrs.as_slice()),
            _ => None,
        });
        let attrs = attrs.unwrap_or_default();
        let mode = attrs.iter().find_map(|a| match a {
            InfoIpVlan::Mode(m) => Some(Mode::kernel_name(m)),
            _ => None,
        });
        let flag = attrs.iter().find_map(|a| match a {
            InfoIpVlan::Flags(f) => Some(Flag::kernel_name(f)),
            _ => None,
        });
        Some(settings(
            link.lower.unwrap_or(""),
            &mode.unwrap_or_default(),
            flag.unwrap_or("bridge"),
        ))
    }

    /// The MAC seen is the parent's, which the file cannot ask for.
    fn show_endpoint(&self, _net: &FileNetwork, ep: &mut FileEndpoint, _v: &EndpointRes) {
        ep.mac = None;
    }

    fn show(&self, net: &mut FileNetwork, ctx: &ShowCtx<'_>) {
        // The kernel's word on parent, mode and flag, from any endpoint here.
        let Some(e) = ctx
            .state
            .endpoints
            .values()
            .find(|e| e.network == ctx.network && e.kind == "ipvlan")
        else {
            return;
        };
        if let Some(parent) = setting(e, "parent").filter(|p| !p.is_empty()) {
            net.options.insert("parent".into(), parent.into());
        }
        for (key, option, default) in [
            ("mode", "ipvlan_mode", "l2"),
            ("flag", "ipvlan_flag", "bridge"),
        ] {
            match setting(e, key) {
                Some(v) if v != default => {
                    net.options.insert(option.into(), v.into());
                }
                _ => {
                    net.options.remove(option);
                }
            }
        }
    }
}

/// An endpoint's fixed settings, parent first (it names the interface in
/// plans).
fn settings(parent: &str, mode: &str, flag: &str) -> Vec<(String, String)> {
    vec![
        ("parent".into(), parent.to_string()),
        ("mode".into(), mode.to_string()),
        ("flag".into(), flag.to_string()),
    ]
}

/// The interface is born inside the sandbox (IFLA_NET_NS_FD; the parent
/// is looked up in the host, where the request is made) under its
/// temporary name; there it is marked, renamed, brought up and addressed.
async fn create(e: &EndpointRes, k: &dyn Kernel) -> Result<Learned, ApplyError> {
    let what = format!("create endpoint {}", e.endpoint);
    let err = ApplyError::kernel(&what);
    let parent = setting(e, "parent").unwrap_or_default();
    let mode = setting(e, "mode").and_then(Mode::parse).unwrap_or(Mode::L2);
    let flag = setting(e, "flag")
        .and_then(Flag::parse)
        .unwrap_or(Flag::Bridge);
    let tmp = k.temp_name(&e.endpoint)?;
    let ns = k.netns_file(&e.netns)?;
    let parent_idx = index_of(k.host(), parent).await.map_err(&err)?;
    let msg = LinkIpVlan::new(&tmp, parent_idx, mode.kernel())
        .flag(flag.kernel())
        .mtu(e.mtu)
        .setns_by_fd(ns.as_raw_fd());
    k.host()
        .link()
        .add(msg.build())
        .execute()
        .await
        .map_err(&err)?;
    drop(ns);
    parent::finish(e, k, &tmp).await
}
