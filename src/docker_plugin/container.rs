//! A container's end of an endpoint as Docker leaves it: found, once
//! Docker is done with it, and marked; Docker's port map read.

use futures::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::LinkUnspec;
use serde_json::Value;

/// What Docker's placing of an interface is known by.
pub(super) struct Placed<'a> {
    pub mac: &'a str,
    /// The temporary name Join gave it: Docker renames it once moved.
    pub src: &'a str,
    /// No gateway: Docker adds no default route.
    pub internal: bool,
}

/// Find the interface with the MAC in the namespace at `key`, once Docker
/// is done with it (renamed from `src`, up, the default route set: Docker
/// configures in that order, and an address or route cnm added first would
/// fail Docker's own), mark it, and return its name (`None`: not yet).
pub(super) async fn mark_container_end(
    key: &str,
    placed: &Placed<'_>,
    mark: &str,
) -> Result<Option<String>, String> {
    let (file, _) = crate::netns::open_checked(std::path::Path::new(key))?;
    let h = crate::netlink::connect_in(&file).map_err(|e| e.to_string())?;
    let want = crate::topology::parse_mac(placed.mac).map_err(|e| e.to_string())?;
    let links = crate::netlink::dump_links(&h)
        .await
        .map_err(|e| e.to_string())?;
    let Some(m) = links.iter().find(|m| {
        m.attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Address(x) if x.as_slice() == want.as_slice()))
    }) else {
        return Ok(None);
    };
    let name = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    });
    let up = m
        .header
        .flags
        .contains(netlink_packet_route::link::LinkFlags::Up);
    let Some(name) = name.filter(|n| n != placed.src && up) else {
        return Ok(None);
    };
    if !placed.internal {
        let routes: Vec<_> = crate::netlink::routes(&h, false)
            .try_collect()
            .await
            .map_err(|e| e.to_string())?;
        let default = routes
            .iter()
            .filter_map(crate::observe::kernel::route_of)
            .any(|r| r.dst.prefix() == 0);
        if !default {
            return Ok(None);
        }
    }
    h.link()
        .set(
            LinkUnspec::new_with_index(m.header.index)
                .alias(mark.to_string())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| format!("cnm: mark {name} in {key}: {e}"))?;
    Ok(Some(name))
}

/// Docker's port map (`[{Proto, IP, Port, HostIP, HostPort, HostPortEnd}]`)
/// as published ports in the file's short syntax.
pub(super) fn ports(map: &Value) -> Vec<String> {
    let Some(list) = map.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|m| {
            let proto = match m["Proto"].as_u64()? {
                6 => "tcp",
                17 => "udp",
                132 => "sctp",
                _ => return None,
            };
            let port = m["Port"].as_u64()?;
            let host = m["HostPort"].as_u64().filter(|p| *p != 0)?;
            let ip = m["HostIP"]
                .as_str()
                .filter(|s| !s.is_empty() && *s != "0.0.0.0");
            Some(match ip {
                Some(ip) => format!("{ip}:{host}:{port}/{proto}"),
                None => format!("{host}:{port}/{proto}"),
            })
        })
        .collect()
}
