//! What observe reads from the kernel, as plain values: per namespace its
//! links, addresses and routes; on the host the FDB and neighbour entries
//! of tunnel devices; the names under /run/netns. `read` fills it from
//! netlink; `classify` turns it into the model without touching the
//! kernel, so tests (and the simulated kernel of the property test) can
//! build one by hand.

pub use super::links::{Link, LinkTable};
use crate::model::Mac;
use crate::safe::FileId;
use ipnetwork::IpNetwork;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use netlink_packet_route::AddressFamily;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One route of a namespace's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNetwork,
    pub gateway: Option<IpAddr>,
    /// The output interface's index.
    pub oif: Option<u32>,
    /// Made by the kernel itself (connected routes, router advertisements).
    pub by_kernel: bool,
}

/// One namespace: its links with their addresses, and its routes.
#[derive(Debug, Clone, Default)]
pub struct NsView {
    pub table: LinkTable,
    pub routes: Vec<Route>,
    /// A sandbox's `cnm-dns` table, when it has one (not read for the host).
    pub dns: Option<crate::resolver::redirect::Found>,
}

/// An FDB or neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ifindex: u32,
    pub mac: Mac,
    pub ip: IpAddr,
    /// FDB: in the device's own table (NTF_SELF), not its bridge's.
    pub own: bool,
    pub permanent: bool,
}

/// A namespace under /run/netns that may be the topology's.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub netns: String,
    /// Inode of the namespace (its identity).
    pub ino: u64,
    pub view: NsView,
}

/// Everything observe reads over netlink and from /run/netns.
#[derive(Debug, Clone, Default)]
pub struct KernelView {
    pub host: NsView,
    /// FDB entries (family bridge) and neighbour entries of the host; read
    /// only when the topology has tunnel devices.
    pub fdb: Vec<Entry>,
    pub neighs: Vec<Entry>,
    /// Every name under /run/netns.
    pub names: BTreeSet<String>,
    /// The namespaces whose names could be the topology's, read.
    pub candidates: Vec<Candidate>,
    /// Candidate names that are an empty mount point, no namespace (an
    /// interrupted create): name → identity.
    pub placeholders: BTreeMap<String, FileId>,
}

/// A route message as a [`Route`] (no destination: a default route).
pub fn route_of(r: &RouteMessage) -> Option<Route> {
    let ip = |a: &RouteAddress| match a {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    };
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(d) => dst = ip(d),
            RouteAttribute::Gateway(g) => gateway = ip(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    let len = r.header.destination_prefix_length;
    let dst = match (dst, r.header.address_family) {
        (Some(d), _) => IpNetwork::new(d, len).ok()?,
        (None, AddressFamily::Inet6) => crate::model::default_dst(crate::model::Family::V6),
        (None, _) => crate::model::default_dst(crate::model::Family::V4),
    };
    Some(Route {
        dst,
        gateway,
        oif,
        by_kernel: matches!(r.header.protocol, RouteProtocol::Kernel | RouteProtocol::Ra),
    })
}

/// A neighbour (or FDB) message as an [`Entry`], when it has a MAC and an IP.
pub fn entry_of(m: &NeighbourMessage) -> Option<Entry> {
    let mac = m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
        _ => None,
    })?;
    let ip = m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        // FDB messages (family bridge) carry the VTEP as raw bytes.
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => match b.len() {
            4 => <[u8; 4]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
            _ => None,
        },
        _ => None,
    })?;
    Some(Entry {
        ifindex: m.header.ifindex,
        mac,
        ip,
        own: m.header.flags.contains(NeighbourFlags::Own),
        permanent: m.header.state == NeighbourState::Permanent,
    })
}
