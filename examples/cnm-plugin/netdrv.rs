//! The NetworkDriver side: one Linux bridge per network, one veth pair per
//! joined endpoint, all in the host namespace.

use crate::links;
use crate::nullable;
use crate::state::{Endpoint, Network, State};
use anyhow::{anyhow, bail, Context, Result};
use ipnetwork::IpNetwork;
use rtnetlink::Handle;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

const PORTMAP: &str = "com.docker.network.portmap";

#[derive(Deserialize)]
struct CreateNetworkReq {
    #[serde(rename = "NetworkID")]
    network_id: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    options: Map<String, Value>,
    #[serde(rename = "IPv4Data", default, deserialize_with = "nullable")]
    ipv4_data: Vec<Value>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "nullable")]
    ipv6_data: Vec<Value>,
}

#[derive(Deserialize)]
struct NetworkReq {
    #[serde(rename = "NetworkID")]
    network_id: String,
}

#[derive(Deserialize, Default)]
struct Interface {
    #[serde(rename = "Address", default)]
    address: String,
    #[serde(rename = "AddressIPv6", default)]
    address_ipv6: String,
    #[serde(rename = "MacAddress", default)]
    mac_address: String,
}

#[derive(Deserialize)]
struct CreateEndpointReq {
    #[serde(rename = "NetworkID")]
    network_id: String,
    #[serde(rename = "EndpointID")]
    endpoint_id: String,
    #[serde(rename = "Interface", default, deserialize_with = "nullable")]
    interface: Interface,
}

/// The request of every endpoint method but CreateEndpoint; `SandboxKey`
/// is only in Join, `Options` only in Join and ProgramExternalConnectivity.
#[derive(Deserialize)]
struct EndpointReq {
    #[serde(rename = "NetworkID")]
    network_id: String,
    #[serde(rename = "EndpointID")]
    endpoint_id: String,
    #[serde(rename = "SandboxKey", default)]
    sandbox_key: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    options: Map<String, Value>,
}

fn parse<T: serde::de::DeserializeOwned>(body: Value) -> Result<T> {
    serde_json::from_value(body).context("invalid request")
}

/// Link names are a prefix plus the first 8 characters of an ID (Docker's
/// IDs are 64 hex digits), which keeps them within IFNAMSIZ.
fn link_name(prefix: &str, id: &str) -> Result<String> {
    let short: String = id.chars().take(8).collect();
    if short.is_empty() || !short.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("invalid ID {id:?}: want hex digits");
    }
    Ok(format!("{prefix}{short}"))
}

fn bridge_name(network_id: &str) -> Result<String> {
    link_name("pbr-", network_id)
}

fn host_veth(endpoint_id: &str) -> Result<String> {
    link_name("pv-", endpoint_id)
}

fn peer_veth(endpoint_id: &str) -> Result<String> {
    link_name("pc-", endpoint_id)
}

/// The `Gateway` (a CIDR) of the first entry of IPv4Data or IPv6Data.
fn gateway(data: &[Value]) -> Result<Option<IpNetwork>> {
    let gw = data
        .first()
        .and_then(|d| d.get("Gateway"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if gw.is_empty() {
        return Ok(None);
    }
    gw.parse()
        .map(Some)
        .map_err(|e| anyhow!("invalid gateway {gw:?}: {e}"))
}

fn gateways(n: &Network) -> Result<Vec<IpNetwork>> {
    Ok(gateway(&n.ipv4_data)?
        .into_iter()
        .chain(gateway(&n.ipv6_data)?)
        .collect())
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bytes = s
        .split(':')
        .map(|b| match b.len() {
            2 => u8::from_str_radix(b, 16).ok(),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>();
    bytes
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("invalid MacAddress {s:?}"))
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A locally administered unicast MAC derived from the endpoint ID, so the
/// same endpoint always gets the same one.
fn derive_mac(endpoint_id: &str) -> [u8; 6] {
    let d = Sha256::digest(endpoint_id.as_bytes());
    [0x02, d[0], d[1], d[2], d[3], d[4]]
}

fn network<'a>(st: &'a State, id: &str) -> Result<&'a Network> {
    st.networks
        .get(id)
        .ok_or_else(|| anyhow!("network {id} not found"))
}

/// The endpoint `r` names, which must belong to `r`'s network.
fn endpoint<'a>(st: &'a mut State, r: &EndpointReq) -> Result<&'a mut Endpoint> {
    let id = &r.endpoint_id;
    let ep = st
        .endpoints
        .get_mut(id)
        .ok_or_else(|| anyhow!("endpoint {id} not found"))?;
    if ep.network != r.network_id {
        bail!("endpoint {id} is not in network {}", r.network_id);
    }
    Ok(ep)
}

pub fn get_capabilities() -> Value {
    json!({"Scope": "local", "ConnectivityScope": "local"})
}

pub async fn create_network(st: &mut State, nl: &Handle, body: Value) -> Result<Value> {
    let r: CreateNetworkReq = parse(body)?;
    if let Some(n) = st.networks.get(&r.network_id) {
        // A replay (e.g. after a restart): only make sure the bridge is there.
        links::ensure_bridge(nl, &n.bridge, &gateways(n)?).await?;
        return Ok(json!({}));
    }
    let bridge = bridge_name(&r.network_id)?;
    if let Some((other, _)) = st.networks.iter().find(|(_, n)| n.bridge == bridge) {
        bail!("bridge {bridge} is already used by network {other}");
    }
    let n = Network {
        options: r.options,
        ipv4_data: r.ipv4_data,
        ipv6_data: r.ipv6_data,
        bridge,
    };
    links::ensure_bridge(nl, &n.bridge, &gateways(&n)?).await?;
    st.networks.insert(r.network_id, n);
    Ok(json!({}))
}

pub async fn delete_network(st: &mut State, nl: &Handle, body: Value) -> Result<Value> {
    let r: NetworkReq = parse(body)?;
    let n = network(st, &r.network_id)?;
    if st.endpoints.values().any(|e| e.network == r.network_id) {
        bail!("network {} has active endpoints", r.network_id);
    }
    links::delete(nl, &n.bridge).await?;
    st.networks.remove(&r.network_id);
    Ok(json!({}))
}

pub fn create_endpoint(st: &mut State, body: Value) -> Result<Value> {
    let r: CreateEndpointReq = parse(body)?;
    network(st, &r.network_id)?;
    let id = r.endpoint_id;
    if st.endpoints.contains_key(&id) {
        bail!("endpoint {id} exists");
    }
    let host = host_veth(&id)?;
    if let Some(other) = st
        .endpoints
        .keys()
        .find(|e| host_veth(e).is_ok_and(|h| h == host))
    {
        bail!("interface {host} is already used by endpoint {other}");
    }
    let given = &r.interface.mac_address;
    // Only fields that were empty in the request may be set in the reply.
    let (mac, reply) = if given.is_empty() {
        let mac = format_mac(derive_mac(&id));
        let reply = json!({"Interface": {"MacAddress": mac}});
        (mac, reply)
    } else {
        (format_mac(parse_mac(given)?), json!({}))
    };
    st.endpoints.insert(
        id,
        Endpoint {
            network: r.network_id,
            mac,
            address: r.interface.address,
            address_ipv6: r.interface.address_ipv6,
            joined: false,
            sandbox_key: String::new(),
            ports: Value::Null,
        },
    );
    Ok(reply)
}

pub fn endpoint_oper_info(st: &mut State, body: Value) -> Result<Value> {
    let r: EndpointReq = parse(body)?;
    let network_id = endpoint(st, &r)?.network.clone();
    let bridge = network(st, &network_id)?.bridge.clone();
    Ok(json!({"Value": {"bridge": bridge, "host_veth": host_veth(&r.endpoint_id)?}}))
}

pub async fn join(st: &mut State, nl: &Handle, body: Value) -> Result<Value> {
    let r: EndpointReq = parse(body)?;
    let mac = parse_mac(&endpoint(st, &r)?.mac)?;
    let n = network(st, &r.network_id)?;
    let master = links::ensure_bridge(nl, &n.bridge, &gateways(n)?).await?;
    let peer = peer_veth(&r.endpoint_id)?;
    links::create_veth(nl, &host_veth(&r.endpoint_id)?, &peer, mac, master).await?;
    let mut reply = json!({
        "InterfaceName": {"SrcName": peer, "DstPrefix": "eth"},
        "StaticRoutes": [],
        "DisableGatewayService": false,
    });
    if let Some(gw) = gateway(&n.ipv4_data)? {
        reply["Gateway"] = json!(gw.ip().to_string());
    }
    if let Some(gw) = gateway(&n.ipv6_data)? {
        reply["GatewayIPv6"] = json!(gw.ip().to_string());
    }
    let ep = endpoint(st, &r)?;
    ep.joined = true;
    ep.sandbox_key = r.sandbox_key;
    Ok(reply)
}

pub async fn leave(st: &mut State, nl: &Handle, body: Value) -> Result<Value> {
    let r: EndpointReq = parse(body)?;
    endpoint(st, &r)?;
    // Deleting the host end deletes the pair, wherever the peer now is.
    links::delete(nl, &host_veth(&r.endpoint_id)?).await?;
    endpoint(st, &r)?.joined = false;
    Ok(json!({}))
}

pub async fn delete_endpoint(st: &mut State, nl: &Handle, body: Value) -> Result<Value> {
    let r: EndpointReq = parse(body)?;
    endpoint(st, &r)?;
    links::delete(nl, &host_veth(&r.endpoint_id)?).await?;
    st.endpoints.remove(&r.endpoint_id);
    Ok(json!({}))
}

/// Records the port map only: this example programs no DNAT, so published
/// ports do not actually reach the container.
pub fn program_external_connectivity(st: &mut State, body: Value) -> Result<Value> {
    let mut r: EndpointReq = parse(body)?;
    let ports = r.options.remove(PORTMAP).unwrap_or(Value::Null);
    endpoint(st, &r)?.ports = ports;
    Ok(json!({}))
}

pub fn revoke_external_connectivity(st: &mut State, body: Value) -> Result<Value> {
    let r: EndpointReq = parse(body)?;
    endpoint(st, &r)?.ports = Value::Null;
    Ok(json!({}))
}
