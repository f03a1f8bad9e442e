//! One link as netlink shows it, decoded into a plain value (what observe
//! classifies and what a driver reads back after making one).

use super::Mac;
use netlink_packet_route::link::{
    InfoBridgePort, InfoKind, InfoPortData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

/// One link: its name, mark, kind and the attributes cnm compares.
#[derive(Debug, Clone)]
pub struct Link {
    /// The kernel's index.
    pub index: u32,
    /// Its name (IFLA_IFNAME).
    pub name: String,
    /// Its alias: cnm's mark when cnm made it.
    pub alias: Option<String>,
    /// The kernel's kind (`bridge`, `veth`, ...).
    pub kind: Option<String>,
    /// Its MTU.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// The link has a carrier (IFF_LOWER_UP): traffic can pass.
    pub carrier: bool,
    /// The index of its master (a bridge port's bridge).
    pub master: Option<u32>,
    /// Its hardware address.
    pub mac: Option<Mac>,
    /// As a bridge port: hairpin mode (frames may leave by the port they
    /// came in through).
    pub hairpin: bool,
    /// The link's kind-specific data, for the driver that made it.
    pub info: Vec<LinkInfo>,
    /// IFLA_LINK: the lower link's index (a macvlan's parent), and whether
    /// it lives in another namespace (IFLA_LINK_NETNSID).
    pub lower: Option<u32>,
    /// The lower link lives in another namespace.
    pub lower_elsewhere: bool,
}

impl Link {
    /// Decode a netlink link message.
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
