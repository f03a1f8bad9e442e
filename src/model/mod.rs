//! The kernel objects cnm manages, as plain values. The desired state (from
//! the file) and the observed state (from the kernel) are both a [`State`];
//! the diff compares the two field by field.

use crate::naming::MarkKind;
use crate::safe::FileId;

mod allocations;
mod borrowed;
mod firewall;
mod link;
mod plugin;
pub use allocations::{Allocations, EndpointAlloc};
pub use borrowed::Target;
pub use firewall::{cut, Atom, Body, FirewallRes, FwMap, FwRule};
use ipnetwork::IpNetwork;
pub use link::Link;
pub use plugin::{PluginCall, PluginRes};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// How plan shows a value a driver learns only during apply (Terraform's
/// wording).
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// Where every sandbox finds its resolver (Docker's address).
pub const RESOLVER_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);

/// A MAC address, as its six bytes.
pub type Mac = [u8; 6];

/// A sandbox's network namespace, named under /run/netns.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceRes {
    /// The sandbox's name in the file.
    pub sandbox: String,
    /// The namespace's name under /run/netns (`quick-alpha`).
    pub netns: String,
    /// Loopback is up inside.
    pub lo_up: bool,
    /// Loopback's addresses (127.0.0.1/8 and ::1/128).
    pub lo_addrs: BTreeSet<IpNetwork>,
    /// Observed only: the namespace's inode, checked again before it is
    /// deleted, and the identity of `/etc/netns/<netns>` when cnm created
    /// that directory (removed with the namespace when empty).
    #[serde(skip)]
    pub ino: Option<u64>,
    /// Observed only: the identity of `/etc/netns/<netns>` when cnm created
    /// that directory (see `ino`).
    #[serde(skip)]
    pub etc_dir: Option<FileId>,
    /// `netns:`: a namespace cnm borrows and binds at `netns` (never
    /// made, written or deleted by cnm). `None`: cnm's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub borrowed: Option<Borrowed>,
    /// `sysctls:` set inside, by path under /proc/sys. Observed: the
    /// values of the keys cnm set or is asked to set.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
}

/// A borrowed namespace: what the file names and which namespace that is.
#[derive(Debug, Clone, Serialize)]
pub struct Borrowed {
    /// As written in `netns:` (`pid:42`, `docker:web`, a path).
    pub from: String,
    /// The namespace's identity. Desired: the one `from` names now;
    /// observed: the one bound at the sandbox's name. A container started
    /// again has a new one: the sandbox is attached again.
    pub ino: u64,
    /// Desired: where it was found (opened again, and checked, to bind it).
    #[serde(skip)]
    pub path: String,
}

impl PartialEq for Borrowed {
    fn eq(&self, o: &Self) -> bool {
        self.from == o.from && self.ino == o.ino
    }
}
impl Eq for Borrowed {}

impl PartialEq for NamespaceRes {
    fn eq(&self, o: &Self) -> bool {
        self.sandbox == o.sandbox
            && self.netns == o.netns
            && self.borrowed == o.borrowed
            && self.sysctls == o.sysctls
            && self.lo_up == o.lo_up
            // A borrowed namespace's loopback addresses are its owner's (a
            // container with IPv6 off has no ::1).
            && (self.lo_addrs == o.lo_addrs || self.borrowed.is_some())
    }
}
impl Eq for NamespaceRes {}

/// A link of a network in the host namespace (a bridge, a VXLAN device,
/// ...), made by the network's driver. The engine creates it through the
/// driver and changes, checks and deletes it like any link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkRes {
    /// The network it belongs to, by its name in the file.
    pub network: String,
    /// What the link is to its network (the kind in its ownership mark).
    pub role: MarkKind,
    /// The link's name in the host namespace (`br-quick-lan`).
    pub ifname: String,
    /// The kernel's link kind (`bridge`, `vxlan`, ...). In plan JSON
    /// `link_kind`: `kind` says which resource it is.
    #[serde(rename = "link_kind")]
    pub kind: String,
    /// MTU in bytes.
    pub mtu: u32,
    /// Addresses with their prefix length (a bridge's gateway addresses).
    pub addrs: BTreeSet<IpNetwork>,
    /// The link is up.
    pub up: bool,
    /// The link it is a port of; empty when none.
    pub master: String,
    /// Settings fixed when the link is made (a VXLAN device's VNI, local
    /// address, ...), in the driver's order; the first one names the link
    /// in plans. A change means a replace.
    pub settings: Vec<(String, String)>,
    /// The driver that makes it (desired links; observed ones: empty).
    #[serde(skip)]
    pub driver: String,
}

impl LinkRes {
    /// The key of links in [`State::links`].
    pub fn key(&self) -> (String, MarkKind) {
        (self.network.clone(), self.role)
    }
}

/// The host end of an endpoint (a veth's other end): a port of a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostEnd {
    /// Name in the host namespace (`ve-3e98ee02130c`).
    pub ifname: String,
    /// The link it is a port of; empty when detached.
    pub master: String,
    /// As a bridge port, frames may leave by the port they came in through,
    /// so a sandbox reaches its own published ports through a host address
    /// (as Docker does without its userland proxy).
    pub hairpin: bool,
}

/// An endpoint: the interface that joins a sandbox to a network (`ethN`
/// inside the sandbox), and, for a veth, its other end in the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointRes {
    /// The endpoint's name in the file.
    pub endpoint: String,
    /// The network it joins.
    pub network: String,
    /// The sandbox it joins to the network.
    pub sandbox: String,
    /// Namespace of the sandbox interface; empty when it was not found.
    pub netns: String,
    /// The kernel's kind of the sandbox interface (`veth`, `macvlan`, ...),
    /// `link_kind` in plan JSON.
    #[serde(rename = "link_kind")]
    pub kind: String,
    /// Interface name in the sandbox (`eth0`, ...); empty when not found.
    pub ifname: String,
    /// `None` in a desired endpoint: whatever the kernel or driver gives.
    #[serde(serialize_with = "ser_mac")]
    pub mac: Option<Mac>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Addresses with their prefix length (`10.88.0.2/24`).
    pub addrs: BTreeSet<IpNetwork>,
    /// Up (both ends, for a veth).
    pub up: bool,
    /// The veth's host end; `None` for kinds without one.
    pub host: Option<HostEnd>,
    /// Settings fixed when it is made (a macvlan's parent and mode): a
    /// change means a replace.
    pub settings: Vec<(String, String)>,
    /// Fields only the driver learns, during apply (`ifname`, `mac`): plan
    /// shows them as "(known after apply)" until they are recorded.
    pub unknown: Vec<String>,
    /// A digest of what its driver was told when making it (a plugin's
    /// endpoint: addresses, MAC, ports), recorded as learned: a change
    /// means a replace, since the driver must be told. Empty: not tracked.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub made_with: String,
    /// The driver that makes it (desired endpoints; observed ones: empty).
    #[serde(skip)]
    pub driver: String,
}

impl EndpointRes {
    /// The host end's name, or "" without one.
    pub fn host_ifname(&self) -> &str {
        self.host.as_ref().map_or("", |h| h.ifname.as_str())
    }

    /// The link the host end is a port of, or "".
    pub fn master(&self) -> &str {
        self.host.as_ref().map_or("", |h| h.master.as_str())
    }
}

/// A static forwarding entry on a VXLAN device: frames for `mac` go to the
/// VTEP `dst`. The all-zero MAC is a flood entry (broadcast and unknown
/// unicast), one per remote VTEP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdbRes {
    /// The overlay network of the device.
    pub network: String,
    /// The VXLAN device.
    pub dev: String,
    /// The destination MAC; all zeros for a flood entry.
    #[serde(serialize_with = "ser_mac_plain")]
    pub mac: Mac,
    /// The remote VTEP's address.
    pub dst: IpAddr,
}

impl FdbRes {
    /// Whether this is a flood entry (the all-zero MAC).
    pub fn is_flood(&self) -> bool {
        self.mac == [0; 6]
    }
}

/// A permanent neighbour entry on a VXLAN device: a remote endpoint's
/// address and MAC, answered locally (the device proxies ARP/ND).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeighRes {
    /// The overlay network of the device.
    pub network: String,
    /// The VXLAN device.
    pub dev: String,
    /// The remote endpoint's address.
    pub ip: IpAddr,
    /// The remote endpoint's MAC.
    #[serde(serialize_with = "ser_mac_plain")]
    pub mac: Mac,
}

/// A route in a sandbox's main table: its default routes (one per address
/// family), or, observed, a route someone else added on cnm's interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRes {
    /// The sandbox's name.
    pub sandbox: String,
    /// The sandbox's namespace.
    pub netns: String,
    /// `0.0.0.0/0` or `::/0` for a default route.
    pub dst: IpNetwork,
    /// The next hop; `None`: directly on `dev`.
    pub gateway: Option<IpAddr>,
    /// The interface inside the sandbox (`eth0`).
    pub dev: String,
}

impl RouteRes {
    /// Whether it is a default route (prefix length 0).
    pub fn is_default(&self) -> bool {
        self.dst.prefix() == 0
    }
}

/// What loopback holds in every namespace: 127.0.0.1/8 and ::1/128.
pub fn loopback_addrs() -> BTreeSet<IpNetwork> {
    [
        IpNetwork::V4(
            ipnetwork::Ipv4Network::new(std::net::Ipv4Addr::LOCALHOST, 8).expect("/8 is valid"),
        ),
        IpNetwork::V6(
            ipnetwork::Ipv6Network::new(std::net::Ipv6Addr::LOCALHOST, 128).expect("/128 is valid"),
        ),
    ]
    .into()
}

/// The destination of a family's default route.
pub fn default_dst(family: Family) -> IpNetwork {
    match family {
        Family::V4 => IpNetwork::V4(
            ipnetwork::Ipv4Network::new(std::net::Ipv4Addr::UNSPECIFIED, 0).expect("/0 is valid"),
        ),
        Family::V6 => IpNetwork::V6(
            ipnetwork::Ipv6Network::new(std::net::Ipv6Addr::UNSPECIFIED, 0).expect("/0 is valid"),
        ),
    }
}

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// A file cnm writes (a sandbox's hosts or resolv.conf).
#[derive(Debug, Clone, Serialize)]
pub struct FileRes {
    /// Absolute path (`/etc/netns/quick-alpha/hosts`).
    pub path: String,
    /// The sandbox it is written for.
    pub sandbox: String,
    /// The whole text of the file.
    pub content: String,
    /// Observed only: the identity of cnm's file, checked again before it
    /// is deleted.
    #[serde(skip)]
    pub id: Option<FileId>,
}

impl PartialEq for FileRes {
    fn eq(&self, o: &Self) -> bool {
        self.path == o.path && self.sandbox == o.sandbox && self.content == o.content
    }
}
impl Eq for FileRes {}

/// The embedded resolver as one topology needs it: its configuration
/// given to the host's resolver process, which runs and serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolverRes {
    /// The topology's name.
    pub topology: String,
    /// How many sandboxes it serves, and names it knows (plan's summary).
    pub sandboxes: usize,
    /// How many names it knows.
    pub names: usize,
    /// The configuration (JSON), as written for the resolver.
    #[serde(skip)]
    pub config: Vec<u8>,
    /// The resolver process runs (its recorded pid and start time match).
    pub running: bool,
    /// It serves this configuration, in the namespaces that exist now.
    pub current: bool,
}

/// 127.0.0.11:53 sent to the resolver's port inside a sandbox: the
/// `cnm-dns` table of its namespace (see `resolver::redirect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRes {
    /// The sandbox's name in the file.
    pub sandbox: String,
    /// Its namespace under /run/netns.
    pub netns: String,
    /// Where the resolver listens on 127.0.0.11 there (UDP and TCP).
    pub port: u16,
    /// Observed only: the table holds exactly cnm's rules for `port`
    /// (desired: always true).
    #[serde(skip)]
    pub intact: bool,
}

/// Something an interrupted apply left behind, found through the journal:
/// a link still under its temporary name, or the empty mount point of a
/// namespace. Only ever deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrayRes {
    /// What was left behind, and where.
    pub what: StrayKind,
}

/// What kind of leftover a [`StrayRes`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum StrayKind {
    /// A link named `ifname` (a temporary name) in the host namespace, or
    /// in sandbox namespace `netns`.
    Link {
        /// The temporary name.
        ifname: String,
        /// The ownership mark the journal recorded for it
        /// (`cnm:<topology>:<kind>:<name>`).
        mark: String,
        /// The sandbox namespace it is in; `None`: the host namespace.
        #[serde(skip_serializing_if = "Option::is_none")]
        netns: Option<String>,
    },
    /// An empty file at `/run/netns/<netns>` with this identity.
    Mountpoint {
        /// The namespace's name.
        netns: String,
        /// The empty file's identity, checked again before it is deleted.
        #[serde(skip)]
        id: Option<FileId>,
    },
    /// An endpoint a driver noted making (a plugin's) whose interface is
    /// gone: the driver is told to let it go.
    Endpoint {
        /// The endpoint's name.
        endpoint: String,
        /// The network it joined.
        network: String,
        /// The driver that made it.
        driver: String,
    },
}

/// A sysctl cnm needs (e.g. IPv4 forwarding). cnm sets these and never
/// resets them: other software on the host may rely on them too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SysctlRes {
    /// Path under /proc/sys, e.g. `net/ipv4/ip_forward`.
    pub key: String,
    /// The value cnm sets (`1`); observed: the kernel's value.
    pub value: String,
}

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
