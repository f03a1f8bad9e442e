//! The kernel objects cnm manages, as plain values. The desired state (from
//! the file) and the observed state (from the kernel) are both a [`State`];
//! the diff compares the two field by field.

use crate::store::safe::FileId;
use ipnetwork::IpNetwork;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub type Mac = [u8; 6];

/// A sandbox's network namespace, named under /run/netns.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceRes {
    pub sandbox: String,
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
    #[serde(skip)]
    pub etc_dir: Option<FileId>,
}

impl PartialEq for NamespaceRes {
    fn eq(&self, o: &Self) -> bool {
        self.sandbox == o.sandbox
            && self.netns == o.netns
            && self.lo_up == o.lo_up
            && self.lo_addrs == o.lo_addrs
    }
}
impl Eq for NamespaceRes {}

/// The Linux bridge of a `bridge` network, in the host namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BridgeRes {
    pub network: String,
    pub ifname: String,
    pub mtu: u32,
    /// Gateway addresses with the subnet's prefix length.
    pub addrs: BTreeSet<IpNetwork>,
    pub up: bool,
    /// Carries its ownership mark (false: adopted from the journal of an
    /// interrupted apply, mark still to be set).
    pub marked: bool,
}

/// An endpoint on a bridge network: a veth pair, one end a bridge port in the
/// host namespace, the other `ethN` inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VethRes {
    pub endpoint: String,
    pub network: String,
    pub sandbox: String,
    /// Namespace of the sandbox end; empty when that end was not found.
    pub netns: String,
    /// Host end; a bridge port.
    pub host_ifname: String,
    /// Bridge the host end is attached to; empty when detached.
    pub bridge: String,
    /// Sandbox end (`eth0`, `eth1`, ...); empty when not found.
    pub ifname: String,
    #[serde(serialize_with = "ser_mac")]
    pub mac: Option<Mac>,
    pub mtu: u32,
    pub addrs: BTreeSet<IpNetwork>,
    /// Both ends administratively up.
    pub up: bool,
    /// The host end carries its ownership mark.
    pub marked: bool,
    /// The host end's bridge port sends frames back out through the port
    /// they came in by, so a sandbox reaches its own published ports
    /// through a host address (as Docker does without its userland proxy).
    pub hairpin: bool,
}

/// The VXLAN device of an overlay network on this host: a port of the
/// network's bridge, sending to the other hosts' VTEPs over the underlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VxlanRes {
    pub network: String,
    pub ifname: String,
    pub vni: u32,
    /// This host's underlay address (the local VTEP).
    pub local: IpAddr,
    /// UDP destination port.
    pub port: u16,
    /// Learning of remote MACs from traffic (off: the file says where each is).
    pub learning: bool,
    /// Answer ARP/ND from the neighbour entries instead of flooding.
    pub proxy: bool,
    pub mtu: u32,
    /// Bridge it is a port of; empty when detached.
    pub bridge: String,
    pub up: bool,
    pub marked: bool,
}

/// A static forwarding entry on a VXLAN device: frames for `mac` go to the
/// VTEP `dst`. The all-zero MAC is a flood entry (broadcast and unknown
/// unicast), one per remote VTEP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdbRes {
    pub network: String,
    /// The VXLAN device.
    pub dev: String,
    #[serde(serialize_with = "ser_mac_plain")]
    pub mac: Mac,
    pub dst: IpAddr,
}

impl FdbRes {
    pub fn is_flood(&self) -> bool {
        self.mac == [0; 6]
    }
}

/// A permanent neighbour entry on a VXLAN device: a remote endpoint's
/// address and MAC, answered locally (the device proxies ARP/ND).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeighRes {
    pub network: String,
    pub dev: String,
    pub ip: IpAddr,
    #[serde(serialize_with = "ser_mac_plain")]
    pub mac: Mac,
}

/// A route in a sandbox's main table: its default routes (one per address
/// family), or, observed, a route someone else added on cnm's interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRes {
    pub sandbox: String,
    pub netns: String,
    /// `0.0.0.0/0` or `::/0` for a default route.
    pub dst: IpNetwork,
    /// The next hop; `None`: directly on `dev`.
    pub gateway: Option<IpAddr>,
    pub dev: String,
}

impl RouteRes {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    V4,
    V6,
}

impl Family {
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
    pub path: String,
    pub sandbox: String,
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

/// Something an interrupted apply left behind, found through the journal:
/// a link still under its temporary name, or the empty mount point of a
/// namespace. Only ever deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrayRes {
    pub what: StrayKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum StrayKind {
    /// A link named `ifname` (a temporary name) in the host namespace.
    Link { ifname: String, mark: String },
    /// An empty file at /run/netns/<netns> with this identity.
    Mountpoint {
        netns: String,
        #[serde(skip)]
        id: Option<FileId>,
    },
}

/// One nftables rule cnm owns. Its identity is its chain and a digest of
/// what it does (chain and body), so a rule whose body changes (say, one
/// more port in an `icc: false` set) is a different rule, even when its
/// label reads the same. The rule's comment stores digest and label.
#[derive(Debug, Clone, Serialize)]
pub struct FwRule {
    /// Chain name; `icc` lives in the bridge-family table, the rest in inet.
    pub chain: String,
    /// Human description, e.g. `port 0.0.0.0:8080/tcp → web-front 10.10.0.10:80`.
    pub label: String,
    /// 12 hex digits of SHA-256 over chain and body. Empty on rules
    /// written before cnm recorded digests (compared by label).
    pub digest: String,
    /// nftables JSON statements (absent on observed rules).
    #[serde(skip)]
    pub body: Vec<serde_json::Value>,
    /// Observed rules in chains cnm does not own: the rule's handle there.
    #[serde(skip)]
    pub handle: Option<u64>,
}

impl FwRule {
    pub fn new(chain: &str, label: String, body: Vec<serde_json::Value>) -> FwRule {
        let text = serde_json::to_string(&(chain, &body)).unwrap_or_default();
        let digest = crate::naming::short_hash(&[&text], 12);
        FwRule {
            chain: chain.to_string(),
            label,
            digest,
            body,
            handle: None,
        }
    }

    /// The comment stored on the rule: digest, then label, within nft's
    /// 128-byte comment limit.
    pub fn comment(&self) -> String {
        let mut c = format!("{} {}", self.digest, self.label);
        let mut end = c.len().min(120);
        while !c.is_char_boundary(end) {
            end -= 1;
        }
        c.truncate(end);
        c
    }

    /// A rule read back from the kernel, from its chain and comment.
    pub fn from_comment(chain: &str, comment: Option<&str>) -> FwRule {
        let comment = comment.unwrap_or("(a rule cnm did not write)");
        let (digest, label) = match comment.split_once(' ') {
            Some((d, l)) if d.len() == 12 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (d.to_string(), l.to_string())
            }
            _ => (String::new(), comment.to_string()),
        };
        FwRule {
            chain: chain.to_string(),
            label,
            digest,
            body: Vec::new(),
            handle: None,
        }
    }
}

impl PartialEq for FwRule {
    fn eq(&self, o: &Self) -> bool {
        if self.digest.is_empty() || o.digest.is_empty() {
            return self.chain == o.chain && self.label == o.label;
        }
        self.chain == o.chain && self.digest == o.digest
    }
}
impl Eq for FwRule {}

/// The topology's nftables tables (`inet cnm-<t>`, and `bridge cnm-<t>` when
/// a network has `icc: false`), always replaced whole in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallRes {
    pub table: String,
    /// Whether the bridge-family table exists / is wanted.
    pub bridge_table: bool,
    /// In chain order, then rule order.
    pub rules: Vec<FwRule>,
    /// The tables are exactly as cnm last wrote them (digest matches).
    pub intact: bool,
}

/// A sysctl cnm needs (e.g. IPv4 forwarding). cnm sets these and never
/// resets them: other software on the host may rely on them too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SysctlRes {
    /// Path under /proc/sys, e.g. `net/ipv4/ip_forward`.
    pub key: String,
    pub value: String,
}

/// Everything one topology owns on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct State {
    /// Keyed by sandbox name.
    pub namespaces: BTreeMap<String, NamespaceRes>,
    /// Keyed by network name.
    pub bridges: BTreeMap<String, BridgeRes>,
    /// Keyed by endpoint name.
    pub veths: BTreeMap<String, VethRes>,
    /// Keyed by network name.
    pub vxlans: BTreeMap<String, VxlanRes>,
    /// Keyed by network, MAC and destination VTEP.
    pub fdb: BTreeMap<(String, Mac, IpAddr), FdbRes>,
    /// Keyed by network and address.
    pub neighs: BTreeMap<(String, IpAddr), NeighRes>,
    /// Keyed by sandbox name and destination.
    pub routes: BTreeMap<(String, IpNetwork), RouteRes>,
    /// Keyed by path.
    pub files: BTreeMap<String, FileRes>,
    pub firewall: Option<FirewallRes>,
    /// Keyed by sysctl path.
    pub sysctls: BTreeMap<String, SysctlRes>,
    /// Leftovers of an interrupted apply, keyed by link or netns name.
    pub strays: BTreeMap<String, StrayRes>,
}

impl State {
    /// Nothing owned at all (sysctls are shared, not owned).
    pub fn owns_nothing(&self) -> bool {
        self.namespaces.is_empty()
            && self.bridges.is_empty()
            && self.veths.is_empty()
            && self.vxlans.is_empty()
            && self.fdb.is_empty()
            && self.neighs.is_empty()
            && self.routes.is_empty()
            && self.files.is_empty()
            && self.firewall.is_none()
            && self.strays.is_empty()
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
    /// Every name under /run/netns.
    pub netns: BTreeSet<String>,
    /// Namespaces (by netns name) this topology owns.
    pub owned_netns: BTreeSet<String>,
    /// Nameservers of the host's /etc/resolv.conf, for sandboxes without `dns:`.
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
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
}

/// The result of observing one topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub state: State,
    pub host: HostFacts,
}

pub fn fmt_mac(m: &Mac) -> String {
    crate::spec::format_mac(m)
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
