//! Names and marks cnm derives: kernel interface names, namespace names,
//! ownership marks and the paths cnm owns.

use sha2::{Digest, Sha256};

/// Where named network namespaces live (iproute2's and Docker's).
pub const NETNS_DIR: &str = "/run/netns";

mod rules;
pub use rules::{
    is_hostname, valid_container_id, valid_identifier, valid_kernel_name, MAX_CONTAINER_ID,
};
/// Where iproute2 looks for per-namespace hosts and resolv.conf files.
pub const ETC_NETNS_DIR: &str = "/etc/netns";

/// The ownership mark stored in IFLA_IFALIAS: `cnm:<topology>:<kind>:<name>`.
/// Names cannot contain ':' (see `spec::valid_identifier`), so it parses back.
pub fn mark(topology: &str, kind: MarkKind, name: &str) -> String {
    format!("cnm:{topology}:{}:{name}", kind.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkKind {
    Network,
    Endpoint,
    /// The VXLAN device of an overlay network (named by the network).
    Vtep,
    /// A sandbox's namespace (on its loopback) and files.
    Sandbox,
}

impl MarkKind {
    fn as_str(self) -> &'static str {
        match self {
            MarkKind::Network => "network",
            MarkKind::Endpoint => "endpoint",
            MarkKind::Vtep => "vtep",
            MarkKind::Sandbox => "sandbox",
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
        "sandbox" => MarkKind::Sandbox,
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
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b"/");
        }
        h.update(p.as_bytes());
    }
    // Hex by table: a `format!` per byte made this a sixth of building the
    // desired state of 1,000 sandboxes (a port and a veth name each).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in h.finalize() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out.truncate(n);
    out
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

/// Prefix of the temporary names links are created under (see
/// [`temp_link_name`]).
pub const TEMP_LINK_PREFIX: &str = "cnt";

/// A unique temporary name for a link being created: `cnt` and 12 random
/// hex digits. A link is created under it, marked, then renamed to its
/// real name, so a crash never leaves an unmarked link under a name that
/// someone else could also have chosen.
pub fn temp_link_name() -> String {
    format!("{TEMP_LINK_PREFIX}{}", &crate::safe::random_hex(6)[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn marks_round_trip() -> TestResult {
        let m = mark("shop", MarkKind::Endpoint, "web-front");
        assert_eq!(m, "cnm:shop:endpoint:web-front");
        let p = parse_mark(&m).ok_or("the mark does not parse back")?;
        assert_eq!(
            (p.topology.as_str(), p.kind, p.name.as_str()),
            ("shop", MarkKind::Endpoint, "web-front")
        );
        assert!(parse_mark("docker0").is_none());
        assert!(parse_mark("cnm:x:thing:y").is_none());
        Ok(())
    }

    #[test]
    fn kernel_names_fit() {
        assert_eq!(host_veth_name("shop", "web-front").len(), 15);
        assert_ne!(host_veth_name("shop", "a"), host_veth_name("shop", "b"));
    }
}
