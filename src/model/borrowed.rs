//! A namespace cnm borrows (a sandbox's `netns:`), as found on the host.

use std::collections::BTreeMap;

/// A borrowed namespace, found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The namespace file it was found at.
    pub path: String,
    /// Its identity (nsfs inode).
    pub ino: u64,
    /// The links in it now, with their aliases: cnm's (marked) and the
    /// others', whose names cnm must not take.
    pub links: BTreeMap<String, Option<String>>,
    /// Ports of the sockets bound to 127.0.0.11 in it (a container
    /// runtime's DNS, or cnm's resolver).
    pub dns_sockets: std::collections::BTreeSet<u16>,
    /// An nftables rule for 127.0.0.11 in a table that is not cnm's
    /// (dockerd's DOCKER_OUTPUT through iptables-nft).
    pub dns_nat: bool,
    /// Families (4, 6) with a default route through a link that is not
    /// cnm's: cnm adds no default route of its own there.
    pub foreign_default: std::collections::BTreeSet<u8>,
}

impl Target {
    /// Whether 127.0.0.11 is served there by something other than cnm's
    /// resolver at `ours` (its port in this sandbox).
    pub fn dns_served_by_others(&self, ours: u16) -> bool {
        self.dns_nat || self.dns_sockets.iter().any(|p| *p != ours)
    }
}
