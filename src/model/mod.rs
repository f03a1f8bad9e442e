//! The kernel objects cnm manages, as plain values. The desired state (from
//! the file) and the observed state (from the kernel) are both a [`State`];
//! the diff compares the two field by field.

use crate::naming::MarkKind;
use crate::safe::FileId;

mod allocations;
mod borrowed;
mod endpoint;
mod files;
mod firewall;
mod link;
mod namespace;
mod plugin;
mod routes;
mod stray;
pub use allocations::{Allocations, EndpointAlloc};
pub use borrowed::Target;
pub use endpoint::{EndpointRes, HostEnd, LinkRes};
pub use files::{DnsRes, FileRes, ResolverRes};
pub use firewall::{cut, Atom, Body, FirewallRes, FwMap, FwRule};
use ipnetwork::IpNetwork;
pub use link::Link;
pub use namespace::{Borrowed, NamespaceRes};
pub use plugin::{PluginCall, PluginRes};
pub use routes::{default_dst, loopback_addrs, Family, FdbRes, NeighRes, RouteRes};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
pub use stray::{StrayKind, StrayRes, SysctlRes};

/// How plan shows a value a driver learns only during apply (Terraform's
/// wording).
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// The observed `made_with` of an endpoint its driver's plugins find
/// broken (a CNI CHECK failing), before the verdict: the plan replaces it.
pub const BROKEN: &str = "broken";

/// Where every sandbox finds its resolver (Docker's address).
pub const RESOLVER_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);

/// A MAC address, as its six bytes.
pub type Mac = [u8; 6];

/// Everything one topology owns on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct State {
    /// Keyed by sandbox name.
    pub namespaces: BTreeMap<String, NamespaceRes>,
    /// Links of networks in the host namespace, keyed by network and role.
    pub links: BTreeMap<(String, MarkKind), LinkRes>,
    /// Keyed by endpoint name.
    pub endpoints: BTreeMap<String, EndpointRes>,
    /// Keyed by network, MAC and destination VTEP.
    pub fdb: BTreeMap<(String, Mac, IpAddr), FdbRes>,
    /// Keyed by network and address.
    pub neighs: BTreeMap<(String, IpAddr), NeighRes>,
    /// Keyed by sandbox name and destination.
    pub routes: BTreeMap<(String, IpNetwork), RouteRes>,
    /// Keyed by path.
    pub files: BTreeMap<String, FileRes>,
    /// The topology's nftables tables; `None` when there are none.
    pub firewall: Option<FirewallRes>,
    /// Keyed by sysctl path.
    pub sysctls: BTreeMap<String, SysctlRes>,
    /// Leftovers of an interrupted apply, keyed by link or netns name.
    pub strays: BTreeMap<String, StrayRes>,
    /// Objects held by plugins (pools, addresses, networks), by key.
    pub plugins: BTreeMap<String, PluginRes>,
    /// The embedded resolver's part for this topology.
    pub resolver: Option<ResolverRes>,
    /// Port 53 redirects to the resolver, by sandbox.
    pub dns: BTreeMap<String, DnsRes>,
}

impl State {
    /// Nothing owned at all (sysctls are shared, not owned).
    pub fn owns_nothing(&self) -> bool {
        self.namespaces.is_empty()
            && self.links.is_empty()
            && self.endpoints.is_empty()
            && self.fdb.is_empty()
            && self.neighs.is_empty()
            && self.routes.is_empty()
            && self.files.is_empty()
            && self.firewall.is_none()
            && self.strays.is_empty()
            && self.plugins.is_empty()
            && self.resolver.is_none()
            && self.dns.is_empty()
    }
}

/// What observe learns about the host besides the owned objects: enough to
/// allocate subnets and to refuse name clashes with foreign objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Destinations of IPv4/IPv6 routes in the host's main table that are not
    /// on links this topology owns (default routes excluded).
    pub routed: Vec<IpNetwork>,
    /// Every link in the host namespace, with its ownership mark if any.
    pub links: BTreeMap<String, Option<String>>,
    /// The MTU of every link in the host namespace (a parent's MTU).
    pub link_mtu: BTreeMap<String, u32>,
    /// Links of the host namespace that are down or have no carrier.
    pub links_down: BTreeSet<String>,
    /// Every name under /run/netns.
    pub netns: BTreeSet<String>,
    /// Namespaces (by netns name) this topology owns.
    pub owned_netns: BTreeSet<String>,
    /// Nameservers of the host's /etc/resolv.conf, for sandboxes without `dns:`.
    pub nameservers: Vec<IpAddr>,
    /// Search domains of the host's /etc/resolv.conf.
    pub search: Vec<String>,
    /// `options` of the host's /etc/resolv.conf (`ndots:2`, ...).
    pub resolv_options: Vec<String>,
    /// Addresses on the host's links: address → (link name, MTU). Finds the
    /// underlay link of a VTEP address.
    pub local_addrs: BTreeMap<IpAddr, (String, u32)>,
    /// Paths cnm would write but must not: path → why (a link, something
    /// that is not a regular file, a file cnm did not write).
    pub blocked_paths: BTreeMap<String, String>,
    /// Firewall tables named like this topology's but not created by cnm
    /// (e.g. `inet cnm-shop`).
    pub foreign_tables: Vec<String>,
    /// The `nft` command, when found: its version. `None`: not installed.
    pub nft: Option<String>,
    /// cnm recorded writing firewall tables for this topology.
    pub firewall_recorded: bool,
    /// Families (`ip`, `ip6`) whose `filter` table has a `FORWARD` base
    /// chain (iptables-nft's, as Docker, ufw and others use): cnm's
    /// forwarded traffic needs accept rules there too.
    pub forward_chains: Vec<String>,
    /// What earlier applies allocated (records): kept where the kernel has
    /// lost the objects.
    pub allocated: Allocations,
    /// The namespaces the file's `netns:` keys name, found now (by
    /// sandbox), or why not. Absent: not looked up (`cnm graph`).
    pub borrowed: BTreeMap<String, Result<crate::model::Target, String>>,
    /// Borrowed sandboxes whose 127.0.0.11 something other than cnm
    /// serves (a container runtime's own DNS): cnm adds no resolver there.
    pub foreign_dns: BTreeSet<String>,
    /// Sandboxes whose namespace holds a `cnm-dns` table without cnm's
    /// mark: a name clash, refused before any change.
    pub foreign_dns_tables: BTreeSet<String>,
}

/// The result of observing one topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// What the topology owns, as observed.
    pub state: State,
    /// The rest of what observe learned about the host.
    pub host: HostFacts,
}

/// A MAC as colon-separated lowercase hex (`02:42:0a:58:00:02`).
pub fn fmt_mac(m: &Mac) -> String {
    crate::topology::format_mac(m)
}

fn ser_mac_plain<S: serde::Serializer>(m: &Mac, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_mac(m))
}

fn ser_mac<S: serde::Serializer>(m: &Option<Mac>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_str(&fmt_mac(m)),
        None => s.serialize_none(),
    }
}

/// The IPs of an endpoint's addresses.
pub fn ips(v4: Option<ipnetwork::Ipv4Network>, v6: Option<ipnetwork::Ipv6Network>) -> Vec<IpAddr> {
    v4.map(|v| IpAddr::V4(v.ip()))
        .into_iter()
        .chain(v6.map(|v| IpAddr::V6(v.ip())))
        .collect()
}
