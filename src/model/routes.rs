//! Forwarding state: VXLAN FDB and neighbour entries, routes, address families.

use super::*;

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
