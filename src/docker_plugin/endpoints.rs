//! Docker's endpoints. libnetwork configures the container's interface
//! itself: Join hands it a veth end in the host namespace (`SrcName`), which
//! Docker moves into the container, renames `ethN` and addresses. cnm makes
//! the pair at Join unmarked (so no other apply takes it for one of cnm's
//! strays), and adopts it at ProgramExternalConnectivity, once Docker has
//! placed it: both ends marked, the endpoint recorded in the topology
//! `docker` as Docker set it up, and applied (ports, firewall). From then
//! on it is an endpoint like any other: drift is found and repaired.

use super::container::{mark_container_end, ports, Placed};
use super::networks::{name_of, TOPOLOGY};
use super::pending::{self, Pending};
use crate::naming::{self, MarkKind};
use crate::topology::file::{FileEndpoint, FileSandbox, FileTopology};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::{LinkUnspec, LinkVeth};
use serde_json::{json, Value};

fn ids(req: &Value) -> Result<(String, String), String> {
    Ok((
        name_of(req["NetworkID"].as_str().unwrap_or_default())?,
        name_of(req["EndpointID"].as_str().unwrap_or_default())?,
    ))
}

fn recorded() -> Result<Option<FileTopology>, String> {
    let store = crate::store::Store::system()
        .topology(TOPOLOGY)
        .map_err(|e| e.to_string())?;
    match store.applied().map_err(|e| e.to_string())? {
        Some(rec) => serde_json::from_value(rec.topology)
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// CreateEndpoint: what Docker's IPAM gave, kept for Join; a MAC is
/// returned only when Docker sent none (Docker's own, from the address).
pub async fn create(req: &Value) -> Result<Value, String> {
    let (net, ep) = ids(req)?;
    let known = recorded()?.is_some_and(|t| t.networks.contains_key(&net));
    if !known {
        return Err(format!("cnm: network {net} is not one of cnm's"));
    }
    let iface = &req["Interface"];
    let text = |k: &str| {
        iface[k]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let address = text("Address");
    let sent_mac = text("MacAddress");
    let mac = match (&sent_mac, &address) {
        (Some(m), _) => m.clone(),
        (None, Some(a)) => {
            let ip: std::net::Ipv4Addr = a
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|e| format!("cnm: Address {a}: {e}"))?;
            crate::model::fmt_mac(&naming::mac_from_ipv4(ip))
        }
        (None, None) => {
            return Err(
                "cnm: CreateEndpoint without an address (cnm's networks need Docker's IPAM)".into(),
            )
        }
    };
    let p = Pending {
        network: net,
        address,
        address_v6: text("AddressIPv6"),
        mac: mac.clone(),
        ..Pending::default()
    };
    pending::save(&ep, &p)?;
    Ok(match sent_mac {
        Some(_) => json!({}),
        None => json!({ "Interface": { "MacAddress": mac } }),
    })
}

/// Join: the veth pair, its host end a port of the network's bridge, the
/// other end in the host namespace under a temporary name for Docker.
pub async fn join(req: &Value) -> Result<Value, String> {
    let (net, ep) = ids(req)?;
    let mut p = pending::load(&ep)?.ok_or_else(|| format!("cnm: endpoint {ep} was not created"))?;
    let t = recorded()?.ok_or("cnm: no network of cnm's is applied")?;
    let network = t
        .networks
        .get(&net)
        .ok_or_else(|| format!("cnm: network {net} is not one of cnm's"))?;
    let h = crate::netlink::connect_here().map_err(|e| e.to_string())?;
    let bridge = marked(&h, &naming::mark(TOPOLOGY, MarkKind::Network, &net))
        .await?
        .ok_or_else(|| format!("cnm: the bridge of network {net} is missing (cnm apply --topology docker makes it again)"))?;
    let host_end = naming::host_veth_name(TOPOLOGY, &ep);
    let src = format!("dkr{}", &crate::safe::random_hex(6)[..12]);
    let mac = crate::topology::parse_mac(&p.mac).map_err(|e| format!("cnm: MAC {}: {e}", p.mac))?;
    let mtu = network.mtu.unwrap_or(crate::drivers::DEFAULT_MTU);
    let msg = rtnetlink::LinkMessageBuilder::<LinkVeth>::new(&host_end, &src)
        .mtu(mtu)
        .controller(bridge.header.index)
        .up()
        .build();
    h.link()
        .add(msg)
        .execute()
        .await
        .map_err(|e| format!("cnm: create {host_end}: {e}"))?;
    let peer = crate::netlink::index_of(&h, &src)
        .await
        .map_err(|e| e.to_string())?;
    h.link()
        .set(
            LinkUnspec::new_with_index(peer)
                .address(mac.to_vec())
                .mtu(mtu)
                .build(),
        )
        .execute()
        .await
        .map_err(|e| format!("cnm: set up {src}: {e}"))?;
    p.sandbox_key = req["SandboxKey"].as_str().map(str::to_string);
    p.host_end = Some(host_end);
    p.src_name = Some(src.clone());
    pending::save(&ep, &p)?;
    let mut reply = json!({
        "InterfaceName": { "SrcName": src, "DstPrefix": "eth" },
        "DisableGatewayService": network.internal,
    });
    if let Some(gw) = network.gateway.as_ref().filter(|_| !network.internal) {
        reply["Gateway"] = json!(gw);
    }
    Ok(reply)
}

/// ProgramExternalConnectivity: Docker's port map noted. Docker moves the
/// interface into the container only when the container starts (runc's
/// hook, after this call): cnm adopts it then, in the background, and
/// Docker is answered at once.
pub async fn program(req: &Value) -> Result<Value, String> {
    let (_, ep) = ids(req)?;
    let Some(mut p) = pending::load(&ep)? else {
        // Adopted already (Docker retries).
        return Ok(json!({}));
    };
    if p.sandbox_key.is_none() {
        return Err(format!("cnm: endpoint {ep} has not joined"));
    }
    p.ports = ports(&req["Options"]["com.docker.network.portmap"]);
    pending::save(&ep, &p)?;
    tokio::spawn(adopt_when_placed(ep));
    Ok(json!({}))
}

/// At start: the topology `docker` applied from its record (networks
/// whose bridges are gone are made again, drift repaired; a failure is
/// said, not fatal), then the adoptions a stopped plugin left pending.
pub async fn resume() {
    if recorded().ok().flatten().is_some() {
        let engine = crate::apply::Engine::default();
        if let Err(e) = engine.apply_recorded(TOPOLOGY, |_| Ok(())).await {
            tracing::warn!("cannot apply the topology {TOPOLOGY} from its record: {e}");
        }
    }
    for ep in pending::all() {
        tokio::spawn(adopt_when_placed(ep));
    }
}

/// Wait (up to a minute) for Docker to place the interface, then adopt
/// it: every 20 ms for the first two seconds (a container starts within
/// them), then every 100 ms. Ends early when the endpoint is no longer
/// pending (adopted, or Leave came first).
async fn adopt_when_placed(ep: String) {
    for round in 0..680 {
        let p = match pending::load(&ep) {
            Ok(Some(p)) => p,
            _ => return,
        };
        match adopt(&ep, &p).await {
            Ok(true) => {
                pending::forget(&ep);
                tracing::info!("endpoint {ep} adopted");
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("endpoint {ep}: {e}");
                return;
            }
        }
        let pause = if round < 100 { 20 } else { 100 };
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
    tracing::warn!("endpoint {ep}: Docker did not place its interface within a minute");
}

/// Mark both ends of a placed interface and record the endpoint as Docker
/// set it up; `false` when it is not placed yet.
async fn adopt(ep: &str, p: &Pending) -> Result<bool, String> {
    let key = p.sandbox_key.clone().unwrap_or_default();
    if !std::path::Path::new(&key).exists() {
        return Ok(false);
    }
    let mark = naming::mark(TOPOLOGY, MarkKind::Endpoint, ep);
    let internal = recorded()?
        .and_then(|t| t.networks.get(&p.network).map(|n| n.internal))
        .unwrap_or(false);
    let placed = Placed {
        mac: &p.mac,
        src: p.src_name.as_deref().unwrap_or_default(),
        internal,
    };
    let Some(ifname) = mark_container_end(&key, &placed, &mark).await? else {
        return Ok(false);
    };
    let h = crate::netlink::connect_here().map_err(|e| e.to_string())?;
    let host_end = p.host_end.clone().unwrap_or_default();
    let idx = crate::netlink::index_of(&h, &host_end)
        .await
        .map_err(|e| format!("{host_end}: {e}"))?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).alias(mark).build())
        .execute()
        .await
        .map_err(|e| format!("mark {host_end}: {e}"))?;
    let sandbox = sandbox_name(&key);
    let plain = |a: &Option<String>| {
        a.as_ref()
            .map(|a| a.split('/').next().unwrap_or(a).to_string())
    };
    let endpoint = FileEndpoint {
        network: p.network.clone(),
        sandbox: sandbox.clone(),
        address: plain(&p.address),
        ipv6_address: plain(&p.address_v6),
        mac: Some(p.mac.clone()),
        ifname: Some(ifname),
        ports: p.ports.clone(),
        ..FileEndpoint::default()
    };
    let edit = |before: Option<FileTopology>| {
        let mut t = before.ok_or("no network of cnm's is applied")?;
        t.sandboxes
            .entry(sandbox.clone())
            .or_insert_with(|| FileSandbox {
                netns: Some(key.clone()),
                ..FileSandbox::default()
            });
        t.endpoints.insert(ep.to_string(), endpoint.clone());
        Ok(Some(t))
    };
    super::apply(&edit, &format!("endpoint {ep}")).await?;
    Ok(true)
}

/// RevokeExternalConnectivity: the endpoint's published ports go.
pub async fn revoke(req: &Value) -> Result<Value, String> {
    let (_, ep) = ids(req)?;
    if let Some(mut p) = pending::load(&ep)? {
        p.ports.clear();
        pending::save(&ep, &p)?;
    }
    let has_ports =
        recorded()?.is_some_and(|t| t.endpoints.get(&ep).is_some_and(|e| !e.ports.is_empty()));
    if has_ports {
        let edit = |before: Option<FileTopology>| {
            let mut t = before.ok_or("no network of cnm's is applied")?;
            if let Some(e) = t.endpoints.get_mut(&ep) {
                e.ports.clear();
            }
            Ok(Some(t))
        };
        super::apply(&edit, &format!("endpoint {ep}")).await?;
    }
    Ok(json!({}))
}

/// Leave and DeleteEndpoint: the endpoint out of the topology (the apply
/// deletes its marked pair); a pair Docker never had adopted goes by its
/// name. Idempotent.
pub async fn remove(req: &Value) -> Result<Value, String> {
    let (_, ep) = ids(req)?;
    if let Some(p) = pending::load(&ep)? {
        if let Some(host_end) = &p.host_end {
            let h = crate::netlink::connect_here().map_err(|e| e.to_string())?;
            if let Ok(i) = crate::netlink::index_of(&h, host_end).await {
                let _ = h.link().del(i).execute().await;
            }
        }
        pending::forget(&ep);
    }
    let edit = |before: Option<FileTopology>| {
        let Some(mut t) = before else { return Ok(None) };
        if let Some(e) = t.endpoints.remove(&ep) {
            if !t.endpoints.values().any(|o| o.sandbox == e.sandbox) {
                t.sandboxes.remove(&e.sandbox);
            }
        }
        Ok(Some(t))
    };
    if recorded()?.is_some_and(|t| t.endpoints.contains_key(&ep)) {
        super::apply(&edit, &format!("endpoint {ep}")).await?;
    }
    Ok(json!({}))
}

/// The host link carrying `mark`.
async fn marked(h: &rtnetlink::Handle, mark: &str) -> Result<Option<LinkMessage>, String> {
    let links = crate::netlink::dump_links(h)
        .await
        .map_err(|e| e.to_string())?;
    Ok(links.into_iter().find(|m| {
        m.attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::IfAlias(x) if x == mark))
    }))
}

/// The sandbox's name: the key's last part (Docker's sandbox ID, 12 hex
/// digits), or a digest of the key when that is not a name.
fn sandbox_name(key: &str) -> String {
    let last = key.rsplit('/').next().unwrap_or_default();
    if naming::valid_identifier(last, crate::store::MAX_OBJECT_NAME).is_ok() {
        return last.to_string();
    }
    format!("sb{}", naming::short_hash(&[key], 12))
}
