//! Any other driver name: a libnetwork remote driver plugin (M
//! `drivers/remote`). cnm's IPAM (or an IPAM plugin) gives addresses; the
//! plugin makes the network (`CreateNetwork`) and, per endpoint, an
//! interface (`CreateEndpoint`, `Join`) that cnm moves into the sandbox,
//! renames `DstPrefix` + index, addresses and marks, as Docker does. The
//! plugin programs published ports (`ProgramExternalConnectivity`); cnm
//! adds no DNAT for them. What the plugin decided (interface name, MAC,
//! gateway, routes) is learned and recorded.

mod calls;
mod join;
mod leave;
mod moves;
mod reply;

use super::{
    Caps, Diagnostics, Driver, Effect, Kernel, Learned, NetworkCtx, NetworkInput, Opaque, Options,
    DEFAULT_MTU,
};
use crate::model::KNOWN_AFTER_APPLY;
use crate::model::{EndpointRes, PluginCall, PluginRes, RouteRes, State};
use crate::plugins::{stable_id, Plugin};
use crate::topology::Loc;
use ipnetwork::IpNetwork;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Learned keys (see `Learned`).
pub(crate) const STATE: &str = "plugin_endpoint";
const KIND: &str = "kind";
const SRC_NAME: &str = "src_name";
const ROUTES: &str = "routes";
const PORTS: &str = "ports";
use super::LEARNED_DRIVER as DRIVER;

/// What `desired` worked out for an endpoint, for its create.
#[derive(Debug, Clone, Default)]
struct EndpointPlan {
    /// The network's `CreateNetwork` request (asked again if the plugin
    /// lost the network).
    network: Value,
    /// `Options` of CreateEndpoint and ProgramExternalConnectivity.
    options: Value,
    has_ports: bool,
}

pub struct RemoteDriver {
    name: &'static str,
    /// `None`: recorded but unreachable now (plan from the records).
    plugin: Option<Plugin>,
    global: bool,
    /// One endpoint at a time per plugin, in plan order: a plugin sees the
    /// same sequence of calls for the same plan.
    turn: tokio::sync::Mutex<()>,
    plans: Mutex<BTreeMap<String, EndpointPlan>>,
}

/// Driver names are `&'static str`: a plugin's name is interned once per
/// process (a handful of names, however many runs).
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::OnceLock<Mutex<BTreeSet<&'static str>>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| Mutex::new(BTreeSet::new()));
    let Ok(mut names) = names.lock() else {
        return Box::leak(name.to_string().into_boxed_str());
    };
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(n);
    n
}

impl RemoteDriver {
    /// `scope`: what `GetCapabilities` said (`global` spans hosts).
    pub fn new(name: &str, plugin: Option<Plugin>, scope: &str) -> Arc<RemoteDriver> {
        Arc::new(RemoteDriver {
            name: intern(name),
            plugin,
            global: scope == "global",
            turn: tokio::sync::Mutex::new(()),
            plans: Mutex::new(BTreeMap::new()),
        })
    }

    fn plugin(&self) -> Result<&Plugin, crate::errors::ApplyError> {
        self.plugin.as_ref().ok_or_else(|| {
            crate::errors::ApplyError::Internal(format!("plugin {} is not reachable", self.name))
        })
    }
}

impl Driver for RemoteDriver {
    fn name(&self) -> &'static str {
        self.name
    }

    fn caps(&self) -> Caps {
        Caps {
            spans_hosts: false,
            ..Caps::UNKNOWN
        }
    }

    fn check(&self, net: &NetworkInput<'_>, _d: &mut Diagnostics) -> Options {
        Options(Arc::new(Opaque(
            net.raw
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
        )))
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) -> Result<(), (Loc, String)> {
        let net = ctx.network;
        let network = network_request(ctx);
        out.plugins.insert(
            format!("network {}", net.name),
            PluginRes {
                key: format!("network {}", net.name),
                call: PluginCall::Network,
                plugin: self.name.to_string(),
                network: net.name.clone(),
                endpoint: String::new(),
                request: network.clone(),
                returned: Value::Null,
                pending: false,
            },
        );
        if self.global {
            nodes(self.name, ctx, out);
        }
        // The plugin names the interface (Join's DstPrefix).
        if let Some(ep) = ctx.endpoints.iter().find(|e| e.spec.ifname.is_some()) {
            return Err((
                ep.spec.loc,
                format!(
                    "endpoint {}: ifname does not apply to a network of plugin {}: the plugin names the interface (DstPrefix)",
                    ep.spec.name, self.name
                ),
            ));
        }
        let mtu = net.mtu.unwrap_or(DEFAULT_MTU);
        let mut plans = self
            .plans
            .lock()
            .map_err(|_| (net.loc, "lock poisoned".to_string()))?;
        for ep in &ctx.endpoints {
            let (plan, endpoint) = self.endpoint(ep, ctx, network.clone(), mtu, out);
            plans.insert(ep.spec.name.clone(), plan);
            out.endpoints.insert(ep.spec.name.clone(), endpoint);
        }
        Ok(())
    }

    fn create_endpoint<'a>(&'a self, e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, Learned> {
        Box::pin(async move {
            let plugin = self.plugin()?;
            let plan = self
                .plans
                .lock()
                .ok()
                .and_then(|p| p.get(&e.endpoint).cloned())
                .unwrap_or_default();
            join::create(plugin, e, k, &plan, &self.turn).await
        })
    }

    fn delete_endpoint<'a>(&'a self, e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, ()> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            let learned = k.learned(&e.endpoint);
            let released = match &self.plugin {
                Some(p) => leave::delete(p, e, k, &learned).await,
                None => false,
            };
            let what = format!("endpoint {}", e.endpoint);
            // What was noted of it stays while the plugin may hold it: a
            // later destroy finds it again (a stray endpoint) and lets go.
            if !released && k.keep_unreleased(self.name, &what) {
                return Ok(());
            }
            k.note(&e.endpoint, &Learned::new())
        })
    }
}

/// The `CreateNetwork` request: stable ID, the user's options as Docker
/// passes them, and the pools (or what is not known yet).
fn network_request(ctx: &NetworkCtx<'_>) -> Value {
    let net = ctx.network;
    let a = ctx.addressing;
    let space = a
        .address_space
        .clone()
        .unwrap_or_else(|| "LocalDefault".into());
    let data = |pool: Option<String>, gateway: Option<String>| -> Value {
        if a.pending {
            return json!([{
                "AddressSpace": KNOWN_AFTER_APPLY,
                "Pool": KNOWN_AFTER_APPLY,
                "Gateway": KNOWN_AFTER_APPLY,
            }]);
        }
        match pool {
            Some(pool) => {
                let mut d = json!({ "AddressSpace": space, "Pool": pool });
                if let Some(g) = gateway {
                    d["Gateway"] = json!(g);
                }
                json!([d])
            }
            None => json!([]),
        }
    };
    let v4 = data(
        a.gateway_v4
            .map(|g| format!("{}/{}", g.network(), g.prefix())),
        a.gateway_v4.map(|g| g.to_string()),
    );
    let v6 = match a.gateway_v6 {
        Some(g) => data(
            Some(format!("{}/{}", g.network(), g.prefix())),
            Some(g.to_string()),
        ),
        None if a.pending && net.ipv6.is_some() => data(None, None),
        None => json!([]),
    };
    let generic: BTreeMap<String, Value> = net.options.0.to_file();
    json!({
        "NetworkID": stable_id(ctx.topology, "network", &net.name),
        "Options": {
            "com.docker.network.generic": generic,
            "com.docker.network.enable_ipv6": net.ipv6.is_some(),
            "com.docker.network.internal": net.internal,
        },
        "IPv4Data": v4,
        "IPv6Data": v6,
    })
}

/// A global-scope plugin is told about the other hosts of the file.
fn nodes(plugin: &str, ctx: &NetworkCtx<'_>, out: &mut State) {
    let Some(me) = ctx.me else {
        return;
    };
    for h in ctx.full.hosts.values().filter(|h| h.name != me.name) {
        let key = format!("node {plugin} {}", h.name);
        out.plugins.entry(key.clone()).or_insert_with(|| PluginRes {
            key,
            call: PluginCall::Node,
            plugin: plugin.to_string(),
            network: ctx.network.name.clone(),
            endpoint: String::new(),
            request: json!({
                "DiscoveryType": 1,
                "DiscoveryData": {
                    "Address": h.address.to_string(),
                    "BindAddress": me.address.to_string(),
                    "Self": false,
                },
            }),
            returned: Value::Null,
            pending: false,
        });
    }
}

/// A digest of what CreateEndpoint tells the plugin (addresses, a MAC the
/// file sets, published ports).
fn made_with(
    addrs: &BTreeSet<IpNetwork>,
    mac: Option<crate::model::Mac>,
    options: &Value,
) -> String {
    super::learned::digest(&json!({
        "addrs": addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "mac": mac.map(|m| crate::model::fmt_mac(&m)),
        "options": options,
    }))
}

impl RemoteDriver {
    /// One endpoint of the network: what the plugin is to be told, and the
    /// interface as cnm can know it before Join (what only the plugin
    /// decides is unknown until then). Its static routes, learned from an
    /// earlier Join, go to `out`.
    fn endpoint(
        &self,
        ep: &crate::drivers::ResolvedEndpoint<'_>,
        ctx: &NetworkCtx<'_>,
        network: Value,
        mtu: u32,
        out: &mut State,
    ) -> (EndpointPlan, EndpointRes) {
        let name = &ep.spec.name;
        let learned = ctx.learned.get(name).cloned().unwrap_or_default();
        let known = |field: &str| learned.get(field).filter(|v| !v.is_empty()).cloned();
        let mut unknown: Vec<String> = ["ifname", "mac", KIND]
            .into_iter()
            .filter(|f| known(f).is_none())
            .map(str::to_string)
            .collect();
        let ifname = known("ifname").unwrap_or_else(|| ep.ifname.clone());
        let mac = ep
            .spec
            .mac
            .or_else(|| known("mac").and_then(|m| crate::topology::parse_mac(&m).ok()));
        if ep.spec.mac.is_some() {
            unknown.retain(|u| u != "mac");
        }
        let kind = known(KIND).unwrap_or_else(|| "veth".into());
        // The plugin's interface may be of any kind: its settings (a
        // macvlan's parent, ...) are not cnm's to compare.
        unknown.push("settings".into());
        let addrs = ep.addrs();
        for r in super::learned::routes(&learned, ROUTES) {
            out.routes.insert(
                (ep.spec.sandbox.clone(), r.0),
                RouteRes {
                    sandbox: ep.spec.sandbox.clone(),
                    netns: ep.netns.clone(),
                    dst: r.0,
                    gateway: r.1,
                    dev: ifname.clone(),
                },
            );
        }
        let (options, has_ports) = calls::endpoint_options(ep.spec);
        // What the plugin is told: a change means a new endpoint.
        let made_with = made_with(&addrs, ep.spec.mac, &options);
        let plan = EndpointPlan {
            network,
            options,
            has_ports,
        };
        let endpoint = EndpointRes {
            endpoint: name.clone(),
            network: ctx.network.name.clone(),
            sandbox: ep.spec.sandbox.clone(),
            netns: ep.netns.clone(),
            kind,
            ifname,
            mac,
            mtu,
            addrs,
            up: true,
            host: None,
            settings: Vec::new(),
            unknown,
            made_with,
            driver: self.name.to_string(),
        };
        (plan, endpoint)
    }
}
