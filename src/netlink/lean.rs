//! Dumps over a bare socket: links decoded only as far as cnm reads them,
//! addresses and routes decoded whole (they are small).
//!
//! Hand-rolled on a bare socket on purpose: an rtnetlink connection decodes
//! every attribute of every message of a dump (a veth has about sixty, each
//! a `LinkAttribute` of some 200 bytes: 13 KB per link), ahead of its
//! reader, so a plan of 1,000 sandboxes held 13 MB of decoded host links at
//! its peak. Here each datagram is parsed as it arrives and only the
//! attributes `KEPT` names are decoded, by netlink-packet-route's own
//! parsers; the messages handed back carry just those.

use netlink_packet_core::Parseable;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkHeader, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, TokioSocket};
use std::io;

/// IFLA_* attributes cnm reads (linux/if_link.h): ADDRESS 1, IFNAME 3,
/// MTU 4, LINK 5, MASTER 10, LINKINFO 18, IFALIAS 20, LINK_NETNSID 37.
const KEPT: [u16; 8] = [1, 3, 4, 5, 10, 18, 20, 37];

/// Message types (linux/netlink.h, linux/rtnetlink.h).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

/// The largest datagram a dump sends (the kernel caps them at 32 KiB).
const DATAGRAM: usize = 64 << 10;

/// A socket in the namespace the calling thread is in, with strict
/// checking (the kernel applies a dump request's filters).
pub fn socket_here() -> io::Result<TokioSocket> {
    let mut s = TokioSocket::new(NETLINK_ROUTE)?;
    s.socket_mut().bind_auto()?;
    s.socket_mut().set_netlink_get_strict_chk(true)?;
    Ok(s)
}

/// Every link of the socket's namespace, without statistics, each with
/// only the attributes cnm reads.
pub async fn links(socket: &TokioSocket) -> io::Result<Vec<LinkMessage>> {
    let mut request = LinkMessage::default();
    request
        .attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    let mut out = Vec::new();
    dump(socket, RouteNetlinkMessage::GetLink(request), |kind, p| {
        if kind == RTM_NEWLINK {
            out.push(lean_link(p)?);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Every address of the socket's namespace (small messages: decoded whole).
pub async fn addresses(socket: &TokioSocket) -> io::Result<Vec<AddressMessage>> {
    let mut out = Vec::new();
    let request = RouteNetlinkMessage::GetAddress(AddressMessage::default());
    dump(socket, request, |kind, p| {
        if kind == RTM_NEWADDR {
            out.push(AddressMessage::parse(p).map_err(invalid)?);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Routes of both families in one dump, asking the kernel for table
/// `table` only (it filters on a strict socket, see [`socket_here`]).
pub async fn routes(socket: &TokioSocket, table: u8) -> io::Result<Vec<RouteMessage>> {
    let mut request = RouteMessage::default();
    request.header.table = table;
    let mut out = Vec::new();
    dump(socket, RouteNetlinkMessage::GetRoute(request), |kind, p| {
        if kind == RTM_NEWROUTE {
            out.push(RouteMessage::parse(p).map_err(invalid)?);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Send one dump request and hand each answer's type and payload to
/// `each`, until the kernel says done (or answers an error).
async fn dump(
    socket: &TokioSocket,
    request: RouteNetlinkMessage,
    mut each: impl FnMut(u16, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, request.into());
    packet.finalize();
    let mut out = vec![0; packet.buffer_len()];
    packet.serialize(&mut out);
    socket.send(&out).await?;

    let mut buf: Vec<u8> = Vec::with_capacity(DATAGRAM);
    loop {
        buf.clear();
        socket.recv(&mut buf).await?;
        let mut offset = 0;
        while offset < buf.len() {
            let msg = NetlinkBuffer::new_checked(&buf[offset..]).map_err(invalid)?;
            let len = msg.length() as usize;
            match msg.message_type() {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = msg
                        .payload()
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    return Ok(());
                }
                kind => each(kind, msg.payload())?,
            }
            if len == 0 {
                return Err(invalid("a netlink message of length 0"));
            }
            // Messages are 4-byte aligned.
            offset += (len + 3) & !3;
        }
    }
}

/// One RTM_NEWLINK payload: its header and the [`KEPT`] attributes.
fn lean_link(payload: &[u8]) -> io::Result<LinkMessage> {
    use netlink_packet_core::{NlasIterator, ParseableParametrized};
    let header = LinkHeader::parse(payload).map_err(invalid)?;
    let rest = payload.get(LINK_HEADER_LEN..).unwrap_or_default();
    let mut attributes = Vec::new();
    for nla in NlasIterator::new(rest) {
        let nla = nla.map_err(invalid)?;
        if KEPT.contains(&nla.kind()) {
            attributes.push(
                LinkAttribute::parse_with_param(&nla, header.interface_family).map_err(invalid)?,
            );
        }
    }
    let mut m = LinkMessage::default();
    m.header = header;
    m.attributes = attributes;
    Ok(m)
}

/// struct ifinfomsg.
const LINK_HEADER_LEN: usize = 16;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}
