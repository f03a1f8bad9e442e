//! One namespace's links and addresses, decoded from netlink messages.

use super::ObserveError;
use crate::model::Mac;
use crate::netlink;
use ipnetwork::IpNetwork;
use netlink_packet_route::address::AddressScope;
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVxlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub kind: Option<String>,
    pub mtu: u32,
    pub up: bool,
    pub master: Option<u32>,
    pub mac: Option<Mac>,
    pub vxlan: Option<VxlanAttrs>,
    /// As a bridge port: hairpin mode (frames may leave by the port they
    /// came in through).
    pub hairpin: bool,
}

/// The VXLAN settings cnm manages, as the kernel reports them.
#[derive(Debug, Clone, Default)]
pub struct VxlanAttrs {
    pub vni: u32,
    pub local: Option<IpAddr>,
    pub port: u16,
    pub learning: bool,
    pub proxy: bool,
}

impl Link {
    fn from_msg(m: &LinkMessage) -> Link {
        let mut l = Link {
            index: m.header.index,
            name: String::new(),
            alias: None,
            kind: None,
            mtu: 0,
            up: m.header.flags.contains(LinkFlags::Up),
            master: None,
            mac: None,
            vxlan: None,
            hairpin: false,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n.clone(),
                LinkAttribute::IfAlias(s) if !s.is_empty() => l.alias = Some(s.clone()),
                LinkAttribute::Mtu(v) => l.mtu = *v,
                LinkAttribute::Controller(i) => l.master = Some(*i),
                LinkAttribute::Address(b) if b.len() == 6 => l.mac = b.as_slice().try_into().ok(),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => l.kind = Some(kind_name(k)),
                            LinkInfo::Data(InfoData::Vxlan(attrs)) => {
                                l.vxlan = Some(vxlan_attrs(attrs))
                            }
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

fn vxlan_attrs(attrs: &[InfoVxlan]) -> VxlanAttrs {
    let mut v = VxlanAttrs::default();
    for a in attrs {
        match a {
            InfoVxlan::Id(id) => v.vni = *id,
            InfoVxlan::Local(ip) => v.local = Some(IpAddr::V4(*ip)),
            InfoVxlan::Local6(ip) => v.local = Some(IpAddr::V6(*ip)),
            InfoVxlan::Port(p) => v.port = *p,
            InfoVxlan::Learning(b) => v.learning = *b,
            InfoVxlan::Proxy(b) => v.proxy = *b,
            _ => {}
        }
    }
    v
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Veth => "veth".into(),
        InfoKind::Vxlan => "vxlan".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Links by index, and their addresses (link-scope ones left out: the
/// kernel adds those by itself; host-scope ones, such as loopback's, kept).
#[derive(Debug, Default)]
pub struct LinkTable {
    pub links: BTreeMap<u32, Link>,
    pub addrs: BTreeMap<u32, BTreeSet<IpNetwork>>,
}

impl LinkTable {
    pub async fn dump(
        h: &rtnetlink::Handle,
        netns: Option<&str>,
    ) -> Result<LinkTable, ObserveError> {
        let err = |what: &'static str| {
            let netns = netns.map(str::to_string);
            move |source| ObserveError::Netlink {
                what,
                netns,
                source,
            }
        };
        // One dump at a time per socket: the kernel answers EBUSY otherwise.
        let links = netlink::dump_links(h).await.map_err(err("links"))?;
        let addrs = netlink::dump_addrs(h).await.map_err(err("addresses"))?;
        let mut t = LinkTable::default();
        for m in &links {
            let l = Link::from_msg(m);
            t.links.insert(l.index, l);
        }
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
