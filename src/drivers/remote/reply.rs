//! Reading a plugin's replies: the MAC it set, the static routes Join
//! gives, whether a refusal says the network is unknown.

use super::join::Ids;
use crate::errors::ApplyError;
use crate::model::{EndpointRes, Mac};
use crate::plugins::{Plugin, PluginError};
use ipnetwork::IpNetwork;
use serde_json::Value;

/// What the driver set of the interface: only fields cnm left empty.
pub(super) fn returned_mac(
    plugin: &Plugin,
    e: &EndpointRes,
    id: &Ids,
    reply: &Value,
) -> Result<Option<Mac>, ApplyError> {
    let iface = reply.get("Interface").filter(|v| v.is_object());
    let field = |f: &str| {
        iface
            .and_then(|i| i.get(f))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let refuse = |message: String| PluginError::Failed {
        plugin: plugin.name.clone(),
        call: "NetworkDriver.CreateEndpoint".into(),
        what: id.what.clone(),
        message,
    };
    for (f, given) in [
        ("Address", e.addrs.iter().any(|a| a.is_ipv4())),
        ("AddressIPv6", e.addrs.iter().any(|a| a.is_ipv6())),
    ] {
        if field(f).is_some() && given {
            return Err(refuse(format!("the reply sets {f}, which cnm had set")).into());
        }
    }
    match (field("MacAddress"), e.mac) {
        (Some(_), Some(_)) => {
            Err(refuse("the reply sets MacAddress, which cnm had set".into()).into())
        }
        (Some(m), None) => crate::topology::parse_mac(m)
            .map(Some)
            .map_err(|why| refuse(format!("MacAddress {m}: {why}")).into()),
        (None, mac) => Ok(mac),
    }
}

/// The most static routes taken from one Join reply.
const MAX_STATIC_ROUTES: usize = 64;

/// `StaticRoutes` of a Join reply: (destination, next hop or none). A
/// destination is taken as its network (host bits cleared, as the kernel
/// keeps it); a next hop of another family, or a default route (the
/// gateway's job), is left out.
pub(super) fn static_routes(reply: &Value) -> Vec<(IpNetwork, Option<std::net::IpAddr>)> {
    let Some(list) = reply.get("StaticRoutes").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|r| {
            let dst: IpNetwork = r.get("Destination")?.as_str()?.parse().ok()?;
            let dst = IpNetwork::new(dst.network(), dst.prefix()).ok()?;
            if dst.prefix() == 0 {
                return None;
            }
            let connected = r.get("RouteType").and_then(Value::as_u64) == Some(1);
            let hop = r
                .get("NextHop")
                .and_then(Value::as_str)
                .and_then(|h| h.parse::<std::net::IpAddr>().ok());
            match (connected, hop) {
                (true, _) => Some((dst, None)),
                (false, Some(h)) if h.is_ipv6() == dst.is_ipv6() => Some((dst, Some(h))),
                _ => None,
            }
        })
        .take(MAX_STATIC_ROUTES)
        .collect()
}

/// Whether a plugin's refusal says the network is unknown to it (libnetwork
/// has no error codes: the words of Docker's own messages and of common
/// plugins). Anything else is not retried.
pub(super) fn network_lost(err: &PluginError) -> bool {
    let PluginError::Failed { message, .. } = err else {
        return false;
    };
    let m = message.to_ascii_lowercase();
    m.contains("network") && (m.contains("not found") || m.contains("no such"))
}
