//! `cni`: networks delegated to a chain of CNI plugins (containerd's,
//! CRI-O's and podman's way of wiring containers). Every endpoint is one
//! CNI attachment: ADD through the chain with `prevResult` chaining, DEL in
//! reverse with the recorded result. cnm gives the addresses (a `static`
//! IPAM section, so plan shows them) unless the chain has IPAM of its own
//! (then they are known after apply, and learned). The plugins' own host
//! objects (bridges, iptables chains, leases) stay theirs and go only
//! through DEL; cnm marks the sandbox-side interface, which is all it
//! changes or deletes itself.

mod attach;
mod chain;
mod options;

use super::{
    Caps, Diagnostics, Driver, Effect, Gateway, Ipam, Kernel, Learned, NetworkCtx, NetworkInput,
    Options, DEFAULT_MTU,
};
use crate::model::{EndpointRes, HostFacts, RouteRes, State};
use crate::topology::file::{FileEndpoint, FileNetwork};
use crate::topology::{Loc, Network};
use chain::Chain;
use ipnetwork::IpNetwork;
use options::CniOptions;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Learned keys.
const CHAIN: &str = "cni_chain";
const RESULT: &str = "cni_result";
const NAME: &str = "cni_name";
const CONTAINER_ID: &str = "cni_container_id";
const IFNAME: &str = "cni_ifname";
const MAC: &str = "mac";
const MTU: &str = "mtu";
const KIND: &str = "kind";
use super::LEARNED_ADDRS as ADDRS;
const ROUTES: &str = "routes";

/// What `desired` worked out for an endpoint, for its ADD.
#[derive(Debug, Clone)]
struct AttachPlan {
    chain: Chain,
    /// cnm's addresses as `static` IPAM entries (empty: the chain's IPAM).
    addresses: Vec<Value>,
    ports: Vec<crate::topology::PortMapping>,
}

#[derive(Default)]
pub struct CniDriver {
    plans: Mutex<BTreeMap<String, AttachPlan>>,
}

fn opts(net: &Network) -> Option<&CniOptions> {
    net.options.get::<CniOptions>()
}

impl Driver for CniDriver {
    fn name(&self) -> &'static str {
        "cni"
    }

    fn caps(&self) -> Caps {
        Caps {
            gateway: Gateway::Outside,
            ports: true,
            ..Caps::ADDRESSED
        }
    }

    /// A chain with IPAM of its own gives addresses and routes: cnm gives
    /// none, and the file's addressing keys do not apply.
    fn network_caps(&self, o: &Options) -> Caps {
        match o.get::<CniOptions>() {
            Some(o) if o.own_ipam => Caps {
                ipam: Ipam::None,
                gateway: Gateway::None,
                addressing: false,
                ..self.caps()
            },
            _ => self.caps(),
        }
    }

    fn check(&self, net: &NetworkInput<'_>, d: &mut Diagnostics) -> Options {
        options::check(net, d)
    }

    fn options_schema(&self) -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "plugins": {
                    "description": "a conflist's plugins, run as a chain (name and cniVersion are cnm's)",
                    "type": "array", "minItems": 1, "maxItems": options::MAX_PLUGINS,
                    "items": { "type": "object", "required": ["type"], "properties": { "type": { "type": "string" } } }
                },
                "conflist": { "description": "the name of a network configuration list in /etc/cni/net.d", "type": "string" }
            }
        })
    }

    /// Plan time: the conflist is there, and every plugin of the chain is
    /// in the CNI path.
    fn check_host(&self, net: &Network, _facts: &HostFacts) -> Result<(), (Loc, String)> {
        let Some(o) = opts(net) else { return Ok(()) };
        let located = |e: String| (o.loc, e);
        let chain = Chain::load("", &net.name, o).map_err(located)?;
        chain
            .find_all(&crate::cni::exec::search_path())
            .map_err(located)?;
        Ok(())
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) -> Result<(), (Loc, String)> {
        let net = ctx.network;
        let Some(o) = opts(net) else { return Ok(()) };
        let chain = Chain::load(ctx.topology, &net.name, o)
            .map_err(|e| (o.loc, format!("network {}: {e}", net.name)))?;
        if chain.own_ipam() != o.own_ipam {
            let why = if o.own_ipam {
                "has no ipam section: give the network a subnet, and cnm gives the addresses"
            } else {
                "has an ipam section of its own: leave subnet out, or the ipam out of the chain"
            };
            return Err((o.loc, format!("network {}: the chain {why}", net.name)));
        }
        let mut plans = self
            .plans
            .lock()
            .map_err(|_| (net.loc, "lock poisoned".to_string()))?;
        for ep in &ctx.endpoints {
            if let Some(bad) = refused(ep, &chain) {
                return Err((ep.spec.loc, format!("endpoint {}: {bad}", ep.spec.name)));
            }
            let learned = ctx.learned.get(&ep.spec.name).cloned().unwrap_or_default();
            let plan = AttachPlan {
                // The chain's own IPAM: addresses learned from it are not
                // cnm's to hand back.
                addresses: if o.own_ipam {
                    Vec::new()
                } else {
                    static_addresses(ep, ctx.addressing)
                },
                ports: ep.spec.ports.clone(),
                chain: chain.clone(),
            };
            let e = endpoint(ep, ctx, &plan, &learned, o.own_ipam);
            for (dst, gw) in super::learned::routes(&learned, ROUTES) {
                out.routes.insert(
                    (ep.spec.sandbox.clone(), dst),
                    RouteRes {
                        sandbox: ep.spec.sandbox.clone(),
                        netns: ep.netns.clone(),
                        dst,
                        gateway: gw,
                        dev: e.ifname.clone(),
                    },
                );
            }
            out.endpoints.insert(ep.spec.name.clone(), e);
            plans.insert(key(ctx.topology, &ep.spec.name), plan);
        }
        Ok(())
    }

    fn create_endpoint<'a>(&'a self, e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, Learned> {
        Box::pin(async move {
            let plan = self
                .plans
                .lock()
                .ok()
                .and_then(|p| p.get(&key(k.topology(), &e.endpoint)).cloned());
            let plan = plan.ok_or_else(|| {
                crate::errors::ApplyError::Internal(format!(
                    "endpoint {} was not planned",
                    e.endpoint
                ))
            })?;
            attach::add(e, k, &plan).await
        })
    }

    /// The chain chose the MAC, and with its own IPAM the addresses: a
    /// file asks for neither.
    fn show_endpoint(&self, net: &FileNetwork, ep: &mut FileEndpoint, _v: &EndpointRes) {
        ep.mac = None;
        let own_ipam = match net.options.get("plugins").and_then(Value::as_array) {
            Some(p) => p.iter().any(|p| p.get("ipam").is_some()),
            None => net.subnet.is_none(),
        };
        if own_ipam {
            ep.address = None;
            ep.ipv6_address = None;
        }
    }

    /// Each attachment's CHECK, all at once.
    fn broken<'a>(
        &'a self,
        endpoints: Vec<(&'a EndpointRes, Learned)>,
    ) -> futures::future::BoxFuture<'a, Vec<(String, String)>> {
        Box::pin(async move {
            let checks = endpoints.into_iter().map(|(e, l)| async move {
                attach::check(e, &l)
                    .await
                    .map(|why| (e.endpoint.clone(), why))
            });
            futures::future::join_all(checks)
                .await
                .into_iter()
                .flatten()
                .collect()
        })
    }

    fn delete_endpoint<'a>(&'a self, e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, ()> {
        Box::pin(async move { attach::del(e, k).await })
    }
}

/// Plans by topology and endpoint (the registry, and so this driver, is
/// shared by every topology a process applies).
fn key(topology: &str, endpoint: &str) -> String {
    format!("{topology}/{endpoint}")
}

/// What a CNI endpoint cannot have.
fn refused(ep: &super::ResolvedEndpoint<'_>, chain: &Chain) -> Option<String> {
    if ep.spec.mac.is_some() {
        return Some("mac does not apply on a cni network: the chain's plugins choose it".into());
    }
    if !ep.spec.ports.is_empty() && !chain.has_capability("portMappings") {
        return Some(
            "ports need a plugin with capabilities { portMappings: true } in the chain (portmap)"
                .into(),
        );
    }
    None
}

/// cnm's addresses as `static` IPAM entries, with the gateway.
fn static_addresses(ep: &super::ResolvedEndpoint<'_>, a: &super::Addressing) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(v4) = ep.ipv4 {
        let mut x = json!({ "address": v4.to_string() });
        if let Some(g) = a.gateway_v4 {
            x["gateway"] = json!(g.ip().to_string());
        }
        out.push(x);
    }
    if let Some(v6) = ep.ipv6 {
        let mut x = json!({ "address": v6.to_string() });
        if let Some(g) = a.gateway_v6 {
            x["gateway"] = json!(g.ip().to_string());
        }
        out.push(x);
    }
    out
}

/// The endpoint as cnm knows it before ADD: what the chain decides (kind,
/// MAC, the chain's own addresses) is learned, or unknown until then.
fn endpoint(
    ep: &super::ResolvedEndpoint<'_>,
    ctx: &NetworkCtx<'_>,
    plan: &AttachPlan,
    learned: &Learned,
    own_ipam: bool,
) -> EndpointRes {
    let known = |k: &str| learned.get(k).filter(|v| !v.is_empty()).cloned();
    let mut unknown = vec!["kind".to_string(), "settings".to_string()];
    let mac = known(MAC).and_then(|m| crate::topology::parse_mac(&m).ok());
    if mac.is_none() {
        unknown.push("mac".into());
    }
    let addrs = if own_ipam {
        match known(ADDRS) {
            Some(a) => a
                .split(',')
                .filter_map(|x| x.parse::<IpNetwork>().ok())
                .collect(),
            None => {
                unknown.push("addrs".into());
                Default::default()
            }
        }
    } else {
        ep.addrs()
    };
    let mtu = known(MTU)
        .and_then(|m| m.parse().ok())
        .or(ctx.network.mtu)
        .unwrap_or(DEFAULT_MTU);
    EndpointRes {
        endpoint: ep.spec.name.clone(),
        network: ctx.network.name.clone(),
        sandbox: ep.spec.sandbox.clone(),
        netns: ep.netns.clone(),
        kind: known(KIND).unwrap_or_else(|| "veth".into()),
        ifname: ep.ifname.clone(),
        mac,
        mtu,
        addrs,
        up: true,
        host: None,
        settings: Vec::new(),
        unknown,
        made_with: made_with(plan),
        driver: "cni".into(),
    }
}

/// A digest of what the chain is told: a change replaces the attachment
/// (DEL, then ADD).
fn made_with(plan: &AttachPlan) -> String {
    super::learned::digest(&json!({
        "name": plan.chain.name,
        "plugins": plan.chain.plugins,
        "addresses": plan.addresses,
        "ports": plan.ports.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>(),
    }))
}
