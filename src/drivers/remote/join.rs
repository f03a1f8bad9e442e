//! An endpoint's life with a plugin: CreateEndpoint, Join, the interface
//! moved into the sandbox (M `osl/interface_linux.go`), external
//! connectivity; and back: Revoke, the interface returned to the host
//! under its own name, Leave, DeleteEndpoint. The endpoint is noted in the
//! records first, so a crash is cleaned up by the next create.

use super::leave::release;
use super::moves::{move_in, move_out};
use super::reply::{network_lost, returned_mac, static_routes};
use super::{EndpointPlan, DRIVER, KIND, PORTS, ROUTES, SRC_NAME, STATE};
use crate::drivers::{Kernel, Learned};
use crate::errors::ApplyError;
use crate::model::Link;
use crate::model::{fmt_mac, EndpointRes, Mac};
use crate::netlink::dump_links;
use crate::plugins::{stable_id, Plugin, PluginError, NETWORK_DRIVER};
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub(super) struct Ids {
    pub(super) network: String,
    pub(super) endpoint: String,
    pub(super) what: String,
}

pub(super) fn ids(k: &dyn Kernel, e: &EndpointRes) -> Ids {
    Ids {
        network: stable_id(k.topology(), "network", &e.network),
        endpoint: stable_id(k.topology(), "endpoint", &e.endpoint),
        what: format!("endpoint {}", e.endpoint),
    }
}

/// Make endpoint `e` with `plugin`; returns what the plugin decided.
/// One endpoint at a time per plugin (`turn`), in plan order: a plugin sees
/// each endpoint's calls together, and the same sequence for the same plan.
/// Nothing is lost by it: moving the interface into its sandbox (~20 ms
/// here, the kernel waits for an RCU grace period holding RTNL) serializes
/// every link change of the host anyway.
pub(super) async fn create(
    plugin: &Plugin,
    e: &EndpointRes,
    k: &dyn Kernel,
    plan: &EndpointPlan,
    turn: &tokio::sync::Mutex<()>,
) -> Result<Learned, ApplyError> {
    let _turn = turn.lock().await;
    let id = ids(k, e);
    let mut learned = Learned::new();
    let joined = ask(plugin, e, k, plan, &id, &mut learned).await;
    let taken = match joined {
        Ok(j) => take_in(e, k, &j, &mut learned).await,
        Err(err) => Err(err),
    };
    if let Err(err) = taken {
        // Nothing half-made: the interface back to the host, and the
        // plugin forgets the endpoint (and its interface).
        if let Some(src) = learned.get(SRC_NAME) {
            let _ = move_out(e, k, src).await;
        }
        if learned.get(STATE).is_some_and(|s| s != "creating") {
            release(plugin, &id, &learned, false).await;
            k.note(&e.endpoint, &Learned::new())?;
        }
        return Err(err);
    }
    learned.insert(
        crate::drivers::LEARNED_MADE_WITH.into(),
        e.made_with.clone(),
    );
    // The engine records what is returned, at once.
    Ok(learned)
}

/// What Join gave, for taking the interface in.
pub(super) struct Joined {
    src: String,
    prefix: String,
    mac: Option<Mac>,
}

/// CreateEndpoint, Join, ProgramExternalConnectivity.
async fn ask(
    plugin: &Plugin,
    e: &EndpointRes,
    k: &dyn Kernel,
    plan: &EndpointPlan,
    id: &Ids,
    learned: &mut Learned,
) -> Result<Joined, ApplyError> {
    let earlier = k.learned(&e.endpoint);
    if earlier.contains_key(STATE) {
        // An earlier incarnation (a crash, or the interface lost): the
        // plugin may still hold it under the same ID.
        release(plugin, id, &earlier, true).await;
    }
    *learned = Learned::from([
        (STATE.to_string(), "creating".to_string()),
        (DRIVER.to_string(), plugin.name.clone()),
        (
            crate::drivers::LEARNED_NETWORK.to_string(),
            e.network.clone(),
        ),
    ]);
    k.note(&e.endpoint, learned)?;
    // Links the host has now: the plugin's interface must be a new one.
    let before = host_links(k).await?;
    let v4 = e.addrs.iter().find(|a| a.is_ipv4());
    let v6 = e.addrs.iter().find(|a| a.is_ipv6());
    let iface = json!({
        "Address": v4.map(|a| a.to_string()).unwrap_or_default(),
        "AddressIPv6": v6.map(|a| a.to_string()).unwrap_or_default(),
        "MacAddress": e.mac.map(|m| fmt_mac(&m)).unwrap_or_default(),
    });
    let req = json!({
        "NetworkID": id.network,
        "EndpointID": id.endpoint,
        "Interface": iface,
        "Options": plan.options,
    });
    let reply = match plugin
        .call(NETWORK_DRIVER, "CreateEndpoint", Some(&req), &id.what)
        .await
    {
        Ok(r) => r,
        Err(first @ PluginError::Failed { .. })
            if plan.network.is_object() && network_lost(&first) =>
        {
            // The plugin lost the network (its state wiped): create it
            // again, then the endpoint once more.
            let again = plugin
                .call(
                    NETWORK_DRIVER,
                    "CreateNetwork",
                    Some(&plan.network),
                    &format!("network {}", e.network),
                )
                .await;
            let retried = match again {
                Ok(_) => {
                    plugin
                        .call(NETWORK_DRIVER, "CreateEndpoint", Some(&req), &id.what)
                        .await
                }
                Err(_) => Err(first),
            };
            match retried {
                Ok(r) => r,
                Err(err) => return Err(refused(k, e, err, learned)?),
            }
        }
        Err(err) => return Err(refused(k, e, err, learned)?),
    };
    learned.insert(STATE.into(), "created".into());
    join(plugin, e, k, plan, id, &reply, &before, learned).await
}

/// CreateEndpoint failed. A refusal means the plugin holds nothing; a
/// connection lost after sending may have left the endpoint made, so the
/// note stays and the next create cleans up first.
fn refused(
    k: &dyn Kernel,
    e: &EndpointRes,
    err: PluginError,
    learned: &mut Learned,
) -> Result<ApplyError, ApplyError> {
    if matches!(err, PluginError::Failed { .. }) {
        learned.clear();
        k.note(&e.endpoint, learned)?;
    }
    Ok(err.into())
}

/// Indexes of the host's links.
async fn host_links(k: &dyn Kernel) -> Result<BTreeSet<u32>, ApplyError> {
    Ok(dump_links(k.host())
        .await
        .map_err(ApplyError::kernel("list the host's links"))?
        .iter()
        .map(|m| m.header.index)
        .collect())
}

/// Join, then take the plugin's interface into the sandbox.
#[allow(clippy::too_many_arguments)]
async fn join(
    plugin: &Plugin,
    e: &EndpointRes,
    k: &dyn Kernel,
    plan: &EndpointPlan,
    id: &Ids,
    created: &Value,
    before: &BTreeSet<u32>,
    learned: &mut Learned,
) -> Result<Joined, ApplyError> {
    let mac = returned_mac(plugin, e, id, created)?;
    let req = json!({
        "NetworkID": id.network,
        "EndpointID": id.endpoint,
        "SandboxKey": format!("/run/netns/{}", e.netns),
        "Options": {},
    });
    let reply = plugin
        .call(NETWORK_DRIVER, "Join", Some(&req), &id.what)
        .await?;
    learned.insert(STATE.into(), "joined".into());
    let name = |f: &str| {
        reply
            .get("InterfaceName")
            .and_then(|i| i.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (src, prefix) = (name("SrcName"), name("DstPrefix"));
    check_src(plugin, k, id, (&src, &prefix), before).await?;
    learned.insert(SRC_NAME.into(), src.clone());
    learn_gateways(&reply, learned);
    if plan.has_ports {
        program_ports(plugin, plan, id, learned).await?;
    }
    Ok(Joined { src, prefix, mac })
}

/// The interface names Join gave are valid, and `src` is one the plugin
/// just made: never one that was on the host before (the uplink, another
/// container's), nor one that carries someone's mark.
async fn check_src(
    plugin: &Plugin,
    k: &dyn Kernel,
    id: &Ids,
    (src, prefix): (&str, &str),
    before: &BTreeSet<u32>,
) -> Result<(), ApplyError> {
    for (what, n) in [("SrcName", src), ("DstPrefix", prefix)] {
        if let Err(why) = crate::naming::valid_kernel_name(if n.is_empty() { "" } else { n }) {
            return Err(PluginError::Failed {
                plugin: plugin.name.clone(),
                call: "NetworkDriver.Join".into(),
                what: id.what.clone(),
                message: format!("InterfaceName.{what} '{n}' {why}"),
            }
            .into());
        }
    }
    let refuse = |message: String| -> ApplyError {
        PluginError::Failed {
            plugin: plugin.name.clone(),
            call: "NetworkDriver.Join".into(),
            what: id.what.clone(),
            message,
        }
        .into()
    };
    let theirs = dump_links(k.host())
        .await
        .map_err(ApplyError::kernel("list the host's links"))?
        .iter()
        .map(Link::from_msg)
        .find(|l| l.name == src);
    match theirs {
        None => Err(refuse(format!("SrcName {src} is not an interface on the host"))),
        Some(l) if before.contains(&l.index) => Err(refuse(format!(
            "SrcName {src} was on the host before the endpoint was made; cnm takes only an interface the plugin makes"
        ))),
        Some(l) if l.alias.is_some() || l.kind.is_none() => Err(refuse(format!(
            "SrcName {src} carries a mark, or is not a virtual interface; cnm does not take it"
        ))),
        Some(_) => Ok(()),
    }
}

/// The sandbox's gateways through this endpoint are the ones Join gives
/// (none when it gives none), as in Docker; its static routes too.
fn learn_gateways(reply: &Value, learned: &mut Learned) {
    for (key, field, v6) in [
        ("gateway", "Gateway", false),
        ("gateway6", "GatewayIPv6", true),
    ] {
        // A gateway of the wrong family is no gateway.
        let gw = reply
            .get(field)
            .and_then(Value::as_str)
            .and_then(|g| g.parse::<std::net::IpAddr>().ok())
            .filter(|g| g.is_ipv6() == v6)
            .map(|g| g.to_string())
            .unwrap_or_default();
        learned.insert(key.into(), gw);
    }
    let routes = static_routes(reply);
    if !routes.is_empty() {
        learned.insert(
            ROUTES.into(),
            serde_json::to_string(&routes).unwrap_or_default(),
        );
    }
}

/// ProgramExternalConnectivity, for an endpoint that publishes ports.
async fn program_ports(
    plugin: &Plugin,
    plan: &EndpointPlan,
    id: &Ids,
    learned: &mut Learned,
) -> Result<(), ApplyError> {
    let req = json!({
        "NetworkID": id.network,
        "EndpointID": id.endpoint,
        "Options": plan.options,
    });
    match plugin
        .call(
            NETWORK_DRIVER,
            "ProgramExternalConnectivity",
            Some(&req),
            &id.what,
        )
        .await
    {
        Ok(_) => {
            learned.insert(PORTS.into(), "programmed".into());
            Ok(())
        }
        Err(PluginError::NotImplemented { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Take the plugin's interface into the sandbox; learn what it became.
async fn take_in(
    e: &EndpointRes,
    k: &dyn Kernel,
    j: &Joined,
    learned: &mut Learned,
) -> Result<(), ApplyError> {
    let link = move_in(e, k, &j.src, &j.prefix, j.mac).await?;
    learned.insert("ifname".into(), link.name.clone());
    if let Some(m) = link.mac {
        learned.insert("mac".into(), fmt_mac(&m));
    }
    learned.insert(KIND.into(), link.kind.clone().unwrap_or_default());
    Ok(())
}
