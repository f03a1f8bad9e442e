//! ADD's result, read from the kernel once the attachment is applied: the
//! host end (when the driver has one), the container's interface as
//! `CNI_NETNS` named it, its addresses and the default routes. Read, not
//! computed from the plan, so that a repeated ADD (an empty plan) answers
//! the same.

use crate::cni::{CniResult, Interface, IpConfig, Route};
use crate::model::fmt_mac;
use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::Handle;
use std::net::IpAddr;
use std::path::Path;

/// The result of attachment `ifname` in namespace `netns` (as passed), its
/// host end trusted only when cnm marked it for `topology`.
pub async fn read(topology: &str, netns: &str, ifname: &str) -> Result<CniResult, String> {
    let (file, _) = crate::netns::open_checked(Path::new(netns))?;
    let h = crate::netlink::connect_in(&file).map_err(|e| format!("cannot enter {netns}: {e}"))?;
    let links = crate::netlink::dump_links(&h)
        .await
        .map_err(|e| e.to_string())?;
    let link = links
        .iter()
        .find(|m| name_of(m) == Some(ifname))
        .ok_or_else(|| format!("interface {ifname} is not in {netns}"))?;
    let index = link.header.index;
    let mut result = CniResult::default();
    if let Some(host) = host_end(topology, link).await {
        result.interfaces.push(host);
    }
    result.interfaces.push(Interface {
        sandbox: Some(netns.to_string()),
        ..interface(link)
    });
    let at = result.interfaces.len() - 1;
    let routes = default_routes(&h).await?;
    for addr in addresses(&h, index).await? {
        let gateway = routes
            .iter()
            .filter_map(|r| r.gw)
            .find(|gw| addr.contains(*gw));
        result.ips.push(IpConfig {
            version: None,
            address: addr.to_string(),
            gateway,
            interface: Some(at),
        });
    }
    result.routes = routes;
    Ok(result)
}

fn name_of(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn interface(m: &LinkMessage) -> Interface {
    let mut i = Interface::default();
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => i.name = n.clone(),
            LinkAttribute::Address(mac) if mac.len() == 6 => {
                let mut b = [0u8; 6];
                b.copy_from_slice(mac);
                i.mac = fmt_mac(&b);
            }
            LinkAttribute::Mtu(m) => i.mtu = Some(*m),
            _ => {}
        }
    }
    i
}

/// The other end of a veth, in the host, when cnm marked it as this
/// topology's (never a foreign link's name).
async fn host_end(topology: &str, link: &LinkMessage) -> Option<Interface> {
    let peer = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Link(i) => Some(*i),
        _ => None,
    })?;
    let host = crate::netlink::connect_here().ok()?;
    let mut found = host.link().get().match_index(peer).execute();
    let m = found.try_next().await.ok()??;
    let alias = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(a) => Some(a.as_str()),
        _ => None,
    })?;
    let mark = crate::naming::parse_mark(alias)?;
    (mark.topology == topology).then(|| interface(&m))
}

/// The interface's global addresses (no IPv6 link-local).
async fn addresses(h: &Handle, index: u32) -> Result<Vec<IpNetwork>, String> {
    let msgs: Vec<AddressMessage> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(msgs
        .iter()
        .filter_map(|m| {
            let ip = crate::netlink::addr_ip(m)?;
            let net = IpNetwork::new(ip, m.header.prefix_len).ok()?;
            let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
            (!link_local).then_some(net)
        })
        .collect())
}

/// The main table's default routes, both families.
async fn default_routes(h: &Handle) -> Result<Vec<Route>, String> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let msgs: Vec<_> = crate::netlink::routes(h, v6)
            .try_collect()
            .await
            .map_err(|e| e.to_string())?;
        for r in msgs.iter().filter_map(crate::observe::kernel::route_of) {
            if r.dst.prefix() == 0 {
                out.push(Route {
                    dst: r.dst.to_string(),
                    gw: r.gateway,
                });
            }
        }
    }
    Ok(out)
}
