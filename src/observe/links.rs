//! One namespace's links and addresses, decoded from netlink messages.

use super::ObserveError;
use crate::model::Mac;
use crate::netlink;
use ipnetwork::IpNetwork;
use netlink_packet_route::address::AddressScope;
use netlink_packet_route::link::{
    InfoBridgePort, InfoKind, InfoPortData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub kind: Option<String>,
    pub mtu: u32,
    pub up: bool,
    /// The link has a carrier (IFF_LOWER_UP): traffic can pass.
    pub carrier: bool,
    pub master: Option<u32>,
    pub mac: Option<Mac>,
    /// As a bridge port: hairpin mode (frames may leave by the port they
    /// came in through).
    pub hairpin: bool,
    /// The link's kind-specific data, for the driver that made it.
    pub info: Vec<LinkInfo>,
    /// IFLA_LINK: the lower link's index (a macvlan's parent), and whether
    /// it lives in another namespace (IFLA_LINK_NETNSID).
    pub lower: Option<u32>,
    pub lower_elsewhere: bool,
}

impl Link {
    pub fn from_msg(m: &LinkMessage) -> Link {
        let mut l = Link {
            index: m.header.index,
            name: String::new(),
            alias: None,
            kind: None,
            mtu: 0,
            up: m.header.flags.contains(LinkFlags::Up),
            carrier: m.header.flags.contains(LinkFlags::LowerUp),
            master: None,
            mac: None,
            hairpin: false,
            info: Vec::new(),
            lower: None,
            lower_elsewhere: false,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n.clone(),
                LinkAttribute::IfAlias(s) if !s.is_empty() => l.alias = Some(s.clone()),
                LinkAttribute::Mtu(v) => l.mtu = *v,
                LinkAttribute::Controller(i) => l.master = Some(*i),
                LinkAttribute::Link(i) => l.lower = Some(*i),
                LinkAttribute::LinkNetNsId(_) => l.lower_elsewhere = true,
                LinkAttribute::Address(b) if b.len() == 6 => l.mac = b.as_slice().try_into().ok(),
                LinkAttribute::LinkInfo(infos) => {
                    l.info = infos.clone();
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => l.kind = Some(kind_name(k)),
                            LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                                l.hairpin = attrs
                                    .iter()
                                    .any(|a| matches!(a, InfoBridgePort::HairpinMode(true)));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }
}

/// The kernel's name of a link kind (`bridge`, `macvlan`, ...).
fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Other(name) => name.clone(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Links by index, and their addresses (link-scope ones left out: the
/// kernel adds those by itself; host-scope ones, such as loopback's, kept).
#[derive(Debug, Clone, Default)]
pub struct LinkTable {
    pub links: BTreeMap<u32, Link>,
    pub addrs: BTreeMap<u32, BTreeSet<IpNetwork>>,
}

impl LinkTable {
    /// Links and addresses through `lean` (see [`netlink::lean`]), a socket
    /// in the namespace read.
    pub async fn dump(
        lean: &netlink_sys::TokioSocket,
        netns: Option<&str>,
    ) -> Result<LinkTable, ObserveError> {
        let err = |what: &str| {
            let context = match netns {
                Some(n) => format!("cannot read the {what} of namespace {n}"),
                None => format!("cannot read the host's {what}"),
            };
            move |source| ObserveError::Io { context, source }
        };
        // One dump at a time per socket: the kernel answers EBUSY otherwise.
        let mut t = LinkTable::default();
        let links = netlink::lean::links(lean).await.map_err(err("links"))?;
        for m in &links {
            let l = Link::from_msg(m);
            t.links.insert(l.index, l);
        }
        drop(links);
        let addrs = netlink::lean::addresses(lean)
            .await
            .map_err(err("addresses"))?;
        for a in &addrs {
            // Link-scope addresses (fe80::/64) are the kernel's own.
            if a.header.scope == AddressScope::Link {
                continue;
            }
            if let Some(ip) = netlink::addr_ip(a) {
                if let Ok(net) = IpNetwork::new(ip, a.header.prefix_len) {
                    t.addrs.entry(a.header.index).or_default().insert(net);
                }
            }
        }
        Ok(t)
    }

    pub fn addrs_of(&self, index: u32) -> BTreeSet<IpNetwork> {
        self.addrs.get(&index).cloned().unwrap_or_default()
    }
}
