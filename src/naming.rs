//! Names and marks cnm derives: kernel interface names, namespace names,
//! ownership marks and the paths cnm owns.

use sha2::{Digest, Sha256};

/// Where iproute2 keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";
/// Where iproute2 looks for per-namespace hosts and resolv.conf files.
pub const ETC_NETNS_DIR: &str = "/etc/netns";
/// cnm's own state: ownership records, the journal, the lock.
pub const STATE_DIR: &str = "/run/cnm";

/// The ownership mark stored in IFLA_IFALIAS: `cnm:<topology>:<kind>:<name>`.
/// Names cannot contain ':' (see `spec::valid_identifier`), so it parses back.
pub fn mark(topology: &str, kind: MarkKind, name: &str) -> String {
    format!("cnm:{topology}:{}:{name}", kind.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Network,
    Endpoint,
    /// The VXLAN device of an overlay network (named by the network).
    Vtep,
}

impl MarkKind {
    fn as_str(self) -> &'static str {
        match self {
            MarkKind::Network => "network",
            MarkKind::Endpoint => "endpoint",
            MarkKind::Vtep => "vtep",
        }
    }
}

/// A parsed mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub topology: String,
    pub kind: MarkKind,
    pub name: String,
}

pub fn parse_mark(alias: &str) -> Option<Mark> {
    let mut it = alias.splitn(4, ':');
    if it.next()? != "cnm" {
        return None;
    }
    let topology = it.next()?.to_string();
    let kind = match it.next()? {
        "network" => MarkKind::Network,
        "endpoint" => MarkKind::Endpoint,
        "vtep" => MarkKind::Vtep,
        _ => return None,
    };
    Some(Mark {
        topology,
        kind,
        name: it.next()?.to_string(),
    })
}

/// First `n` hex digits of SHA-256 over `parts` joined by '/'. Used for
/// kernel names that must be short, stable and unique per topology.
pub fn short_hash(parts: &[&str], n: usize) -> String {
    let digest = Sha256::digest(parts.join("/").as_bytes());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..n]
        .to_string()
}

/// Default bridge name: `br-<topology>-<network>` when that fits in 15 bytes,
/// else `br-` and 12 hex digits of a hash (Docker's `br-<id>` shape).
pub fn bridge_name(topology: &str, network: &str) -> String {
    let readable = format!("br-{topology}-{network}");
    if readable.len() <= 15 {
        readable
    } else {
        format!("br-{}", short_hash(&[topology, network], 12))
    }
}

/// VXLAN device of an overlay network: `vx-<topology>-<network>` when that
/// fits in 15 bytes, else `vx-` and 12 hex digits of a hash.
pub fn vxlan_name(topology: &str, network: &str) -> String {
    let readable = format!("vx-{topology}-{network}");
    if readable.len() <= 15 {
        readable
    } else {
        format!("vx-{}", short_hash(&[topology, network, "vxlan"], 12))
    }
}

/// Host end of an endpoint's veth: `ve-` and 12 hex digits, derived from the
/// topology and endpoint names so a crashed apply finds it again.
pub fn host_veth_name(topology: &str, endpoint: &str) -> String {
    format!("ve-{}", short_hash(&[topology, endpoint], 12))
}

/// The named network namespace of a sandbox.
pub fn netns_name(topology: &str, sandbox: &str) -> String {
    format!("{topology}-{sandbox}")
}

/// Directory of cnm's records for one topology.
pub fn topology_dir(topology: &str) -> String {
    format!("{STATE_DIR}/topologies/{topology}")
}

/// Ownership record of a sandbox namespace; written before the namespace is
/// created, removed after it is deleted.
pub fn sandbox_record(topology: &str, sandbox: &str) -> String {
    format!("{}/sandboxes/{sandbox}", topology_dir(topology))
}

pub fn hosts_path(netns: &str) -> String {
    format!("{ETC_NETNS_DIR}/{netns}/hosts")
}

pub fn resolv_path(netns: &str) -> String {
    format!("{ETC_NETNS_DIR}/{netns}/resolv.conf")
}

/// Docker's MAC for an IPv4 address: 02:42 followed by the address bytes.
pub fn mac_from_ipv4(ip: std::net::Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Links about to be created, written before the create request and cleared
/// once their marks are set: the kernel cannot set IFLA_IFALIAS in the create
/// request itself, so this closes the window in which a crash would leave an
/// unmarked link cnm could no longer claim.
pub fn journal_path(topology: &str) -> String {
    format!("{}/pending-links", topology_dir(topology))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip() {
        let m = mark("shop", MarkKind::Endpoint, "web-front");
        assert_eq!(m, "cnm:shop:endpoint:web-front");
        let p = parse_mark(&m).unwrap();
        assert_eq!(
            (p.topology.as_str(), p.kind, p.name.as_str()),
            ("shop", MarkKind::Endpoint, "web-front")
        );
        assert!(parse_mark("docker0").is_none());
        assert!(parse_mark("cnm:x:thing:y").is_none());
    }

    #[test]
    fn kernel_names_fit() {
        assert_eq!(bridge_name("shop", "front"), "br-shop-front");
        let long = bridge_name("a-long-topology", "network");
        assert!(long.starts_with("br-") && long.len() == 15);
        assert_eq!(host_veth_name("shop", "web-front").len(), 15);
        assert_ne!(host_veth_name("shop", "a"), host_veth_name("shop", "b"));
    }
}
