//! rtnetlink connections: one to the host namespace, one per sandbox
//! namespace, each driven by a task on the current tokio runtime.

pub mod lean;
pub mod nft;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkExtentMask, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteMessage};
use netlink_packet_route::AddressFamily;
use netlink_sys::AsyncSocket;
use rtnetlink::Handle;
use std::fs::File;
use std::io;

/// Connect to the namespace the calling thread is in.
pub fn connect_here() -> io::Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

/// Connect inside the namespace behind `ns`. The socket is created on a
/// short-lived thread that entered the namespace (a socket stays bound to
/// the namespace it was born in); tokio worker threads never `setns`.
pub fn connect_in(ns: &File) -> io::Result<Handle> {
    let rt = tokio::runtime::Handle::current();
    let ns = ns.try_clone()?;
    let (conn, handle) = std::thread::spawn(move || -> io::Result<_> {
        crate::netns::enter(&ns)?;
        let _guard = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection()?;
        Ok((conn, handle))
    })
    .join()
    .map_err(|_| io::Error::other("netlink thread panicked"))??;
    tokio::spawn(conn);
    Ok(handle)
}

/// Connect inside each of several namespaces, all from one short-lived
/// thread that enters them in turn (one thread instead of one per
/// namespace: observing N sandboxes costs N sockets, not N threads).
pub fn connect_in_each(namespaces: Vec<File>) -> io::Result<Vec<Handle>> {
    if namespaces.is_empty() {
        return Ok(Vec::new());
    }
    let rt = tokio::runtime::Handle::current();
    let conns = std::thread::spawn(move || -> io::Result<Vec<_>> {
        let _guard = rt.enter();
        namespaces
            .iter()
            .map(|ns| {
                crate::netns::enter(ns)?;
                let (mut conn, handle, _) = rtnetlink::new_connection()?;
                // Dumps honour the filters in their requests (route table).
                conn.socket_mut()
                    .socket_mut()
                    .set_netlink_get_strict_chk(true)?;
                Ok((conn, handle))
            })
            .collect()
    })
    .join()
    .map_err(|_| io::Error::other("netlink thread panicked"))??;
    Ok(conns
        .into_iter()
        .map(|(conn, handle)| {
            tokio::spawn(conn);
            handle
        })
        .collect())
}

/// IPv6 link-local addressing on or off for a link (the kernel's
/// IFLA_INET6_ADDR_GEN_MODE: `none` makes no fe80:: address, hence no DAD,
/// router solicitations or MLD reports from it). Off for bridge ports and
/// for sandbox interfaces without IPv6 addresses: a thousand interfaces
/// doing that work for nothing load the kernel's locks. The kernel takes
/// it only for an existing link, and it counts when the link comes up, so
/// it goes in the message that brings the link up.
pub fn ipv6_link_local(mut msg: LinkMessage, on: bool) -> LinkMessage {
    use netlink_packet_route::link::{AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute};
    // A kernel booted without IPv6 refuses the attribute (EAFNOSUPPORT).
    static IPV6: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*IPV6.get_or_init(|| std::path::Path::new("/proc/sys/net/ipv6").exists()) {
        return msg;
    }
    let mode = if on {
        In6AddrGenMode::Eui64
    } else {
        In6AddrGenMode::None
    };
    msg.attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(mode)],
        )]));
    msg
}

/// Any IPv6 address among `addrs`.
pub fn has_ipv6(addrs: &std::collections::BTreeSet<ipnetwork::IpNetwork>) -> bool {
    addrs.iter().any(|a| a.is_ipv6())
}

/// Every link, without statistics (the kernel skips filling them), as a
/// stream, so callers keep only what they take from each message. (A
/// decoded link message takes about 13 KiB, and netlink-proto decodes a
/// whole dump into its queue ahead of the reader: 1,000 veth host ends
/// still peak at 13 MB there.)
pub fn links(
    h: &Handle,
) -> impl futures::Stream<Item = Result<LinkMessage, rtnetlink::Error>> + Unpin {
    Box::pin(
        h.link()
            .get()
            .set_filter_mask(AddressFamily::Unspec, vec![LinkExtentMask::SkipStats])
            .execute(),
    )
}

/// The main table's routes of one family (IPv6 when `v6`).
pub fn routes(
    h: &Handle,
    v6: bool,
) -> impl futures::Stream<Item = Result<RouteMessage, rtnetlink::Error>> + Unpin {
    let msg = if v6 {
        rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
    } else {
        rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
    };
    Box::pin(h.route().get(msg).execute())
}

/// Every link, collected (for namespaces with few links).
pub async fn dump_links(h: &Handle) -> Result<Vec<LinkMessage>, rtnetlink::Error> {
    links(h).try_collect().await
}

/// The names of every link of the namespace the calling thread is in
/// (through a [`lean`] dump).
pub async fn lean_link_names() -> io::Result<std::collections::BTreeSet<String>> {
    use netlink_packet_route::link::LinkAttribute;
    let socket = lean::socket_here()?;
    Ok(lean::links(&socket)
        .await?
        .into_iter()
        .flat_map(|m| m.attributes)
        .filter_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n),
            _ => None,
        })
        .collect())
}

/// Neighbour entries of one family: `AddressFamily::Bridge` dumps FDB
/// entries, `Unspec` the ARP and ND tables.
pub async fn dump_neighbours(
    h: &Handle,
    family: netlink_packet_route::AddressFamily,
) -> Result<Vec<netlink_packet_route::neighbour::NeighbourMessage>, rtnetlink::Error> {
    h.neighbours()
        .get()
        .set_address_family(family)
        .execute()
        .try_collect()
        .await
}

/// Routes of the main table, both families, in one dump (family
/// AF_UNSPEC). The table in the header is a filter the kernel applies on
/// sockets with strict checking (as [`lean::socket_here`] makes them),
/// skipping the local table's routes; they would be filtered here anyway.
pub async fn lean_routes(s: &netlink_sys::TokioSocket) -> io::Result<Vec<RouteMessage>> {
    Ok(main_table_only(lean::routes(s, 254).await?))
}

/// IPv4 and IPv6 routes of table 254 (the main one).
fn main_table_only(all: Vec<RouteMessage>) -> Vec<RouteMessage> {
    all.into_iter()
        .filter(|r| {
            matches!(
                r.header.address_family,
                AddressFamily::Inet | AddressFamily::Inet6
            )
        })
        .filter(|r| route_table(r) == 254)
        .collect()
}

pub fn route_table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(r.header.table as u32)
}

pub fn addr_ip(a: &AddressMessage) -> Option<std::net::IpAddr> {
    // IFA_LOCAL is the interface's own address on point-to-point links;
    // otherwise IFA_ADDRESS is.
    let local = a.attributes.iter().find_map(|x| match x {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        a.attributes.iter().find_map(|x| match x {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

pub fn is_v6(a: &AddressMessage) -> bool {
    a.header.family == AddressFamily::Inet6
}

/// True for "no such device/address/route": deleting something already gone.
pub fn is_gone(e: &rtnetlink::Error) -> bool {
    errno(e).is_some_and(|n| {
        n == libc::ENODEV || n == libc::ESRCH || n == libc::EADDRNOTAVAIL || n == libc::ENOENT
    })
}

pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// The index of link `name` in the namespace of `h`.
pub async fn index_of(h: &Handle, name: &str) -> Result<u32, rtnetlink::Error> {
    let msg = h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await?;
    msg.map(|m| m.header.index)
        .ok_or(rtnetlink::Error::RequestFailed)
}

/// Bring a link's addresses from `old` to `new`: removals first (an address
/// may move between links), then additions, IPv6 without duplicate address
/// detection (the file already guarantees uniqueness).
pub async fn sync_addrs(
    h: &Handle,
    index: u32,
    old: &std::collections::BTreeSet<ipnetwork::IpNetwork>,
    new: &std::collections::BTreeSet<ipnetwork::IpNetwork>,
) -> Result<(), rtnetlink::Error> {
    use futures::future::join_all;
    use netlink_packet_route::address::{AddressHeaderFlags, AddressScope};
    let gone: Vec<&ipnetwork::IpNetwork> = old.difference(new).collect();
    if !gone.is_empty() {
        let present: Vec<_> = h
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await?;
        let dels = present.into_iter().filter(|m| {
            addr_ip(m)
                .and_then(|ip| ipnetwork::IpNetwork::new(ip, m.header.prefix_len).ok())
                .is_some_and(|n| gone.contains(&&n))
        });
        for r in join_all(dels.map(|m| h.address().del(m).execute())).await {
            match r {
                Err(e) if !is_gone(&e) => return Err(e),
                _ => {}
            }
        }
    }
    let adds = new.difference(old).map(|n| {
        let mut req = h.address().add(index, n.ip(), n.prefix()).replace();
        if n.is_ipv6() {
            req.message_mut().header.flags = AddressHeaderFlags::Nodad;
        }
        if n.ip().is_loopback() {
            // As the kernel (and `ip addr add`) give loopback addresses.
            req.message_mut().header.scope = AddressScope::Host;
        }
        req.execute()
    });
    join_all(adds).await.into_iter().collect()
}

/// Create a host link under its temporary name, mark it (IFLA_IFALIAS:
/// the kernel ignores it in a create request), then give it its real name
/// (and bring it up). Returns its index. A link under a name someone else
/// could have chosen is thus always marked.
pub async fn add_marked(
    h: &Handle,
    msg: LinkMessage,
    tmp: &str,
    name: &str,
    mark: String,
    up: bool,
) -> Result<u32, rtnetlink::Error> {
    use rtnetlink::LinkUnspec;
    h.link().add(msg).execute().await?;
    let idx = index_of(h, tmp).await?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).alias(mark).build())
        .execute()
        .await?;
    let mut rename = LinkUnspec::new_with_index(idx).name(name.to_string());
    if up {
        rename = rename.up();
    }
    h.link().set(rename.build()).execute().await?;
    Ok(idx)
}

/// Hairpin mode of a bridge port (`ip link set PORT type bridge_slave
/// hairpin on`).
pub async fn set_hairpin(h: &Handle, index: u32, on: bool) -> Result<(), rtnetlink::Error> {
    h.link()
        .change(rtnetlink::LinkBridgePort::new(index).hairpin(on).build())
        .execute()
        .await
}
