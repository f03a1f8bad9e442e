//! One namespace's links and addresses, decoded from netlink messages.

use super::ObserveError;
pub use crate::model::Link;
use crate::netlink;
use ipnetwork::IpNetwork;
use netlink_packet_route::address::AddressScope;
use std::collections::{BTreeMap, BTreeSet};

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
