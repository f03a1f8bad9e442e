//! How one sandbox's resolver answers a question, pure: local names on the
//! networks it shares, NXDOMAIN for the topology's names it must not see,
//! everything else upstream (or refused, for a sandbox that does not
//! forward). The server (`serve`) turns the answer into DNS messages.

use super::config::{Config, NetworkNames, SandboxDns};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// One topology's names, shared by the views of all its sandboxes (so the
/// memory grows with the names, not with sandboxes × names).
#[derive(Debug, Default)]
pub struct TopologyNames {
    networks: HashMap<String, NetworkNames>,
    /// Every name and address of the topology: one a sandbox does not see
    /// is NXDOMAIN there, never forwarded (upstream must not learn it, and
    /// the answer must not depend on upstream).
    all_names: HashSet<String>,
    all_addrs: HashSet<IpAddr>,
}

/// What one sandbox sees.
#[derive(Debug)]
pub struct SandboxView {
    topology: Arc<TopologyNames>,
    networks: Vec<String>,
    pub forward: bool,
    pub upstreams: Vec<IpAddr>,
}

/// The question's type, as far as local answers care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    A,
    Aaaa,
    Ptr,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A local name: its addresses of the asked family, possibly none
    /// (an empty NOERROR).
    Addrs(Vec<IpAddr>),
    /// A local address's name.
    Ptr(String),
    NxDomain,
    Forward,
    /// Not local, and this sandbox does not forward.
    Refused,
}

impl TopologyNames {
    pub fn new(cfg: &Config) -> Arc<TopologyNames> {
        let mut t = TopologyNames::default();
        for (net, names) in &cfg.networks {
            t.all_names.extend(names.names.keys().cloned());
            t.all_addrs.extend(names.ptr.keys().copied());
            t.networks.insert(net.clone(), names.clone());
        }
        Arc::new(t)
    }
}

impl SandboxView {
    pub fn new(topology: Arc<TopologyNames>, s: &SandboxDns) -> SandboxView {
        SandboxView {
            topology,
            networks: s.networks.clone(),
            forward: s.forward,
            upstreams: s.upstreams.clone(),
        }
    }

    /// The answer to `name` (any case, trailing dot or not) of `kind`.
    pub fn answer(&self, name: &str, kind: Kind) -> Answer {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let t = &self.topology;
        if kind == Kind::Ptr {
            if let Some(ip) = reverse_ip(&key) {
                let found = self
                    .networks
                    .iter()
                    .filter_map(|n| t.networks.get(n)?.ptr.get(&ip))
                    .next();
                return match found {
                    Some(name) => Answer::Ptr(name.clone()),
                    None if t.all_addrs.contains(&ip) => Answer::NxDomain,
                    None => self.elsewhere(),
                };
            }
        }
        let mut found = false;
        let mut ips: Vec<IpAddr> = Vec::new();
        for n in &self.networks {
            if let Some(a) = t.networks.get(n).and_then(|n| n.names.get(&key)) {
                found = true;
                ips.extend(a.iter().copied());
            }
        }
        if found {
            ips.retain(|ip| match kind {
                Kind::A => ip.is_ipv4(),
                Kind::Aaaa => ip.is_ipv6(),
                Kind::Ptr | Kind::Other => false,
            });
            ips.sort();
            ips.dedup();
            return Answer::Addrs(ips);
        }
        // Only the topology's own names: a network called `dev` must not
        // hide go.dev from its sandboxes.
        if t.all_names.contains(&key) {
            return Answer::NxDomain;
        }
        self.elsewhere()
    }

    fn elsewhere(&self) -> Answer {
        if self.forward && !self.upstreams.is_empty() {
            Answer::Forward
        } else {
            Answer::Refused
        }
    }
}

/// The address of a reverse name (`4.3.2.1.in-addr.arpa`,
/// `<32 nibbles>.ip6.arpa`), lower-case without the trailing dot.
pub fn reverse_ip(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut o: Vec<u8> = Vec::with_capacity(4);
        for part in rest.split('.') {
            if part.is_empty() || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
                return None;
            }
            o.push(part.parse().ok()?);
        }
        if o.len() != 4 {
            return None;
        }
        return Some(IpAddr::V4(Ipv4Addr::new(o[3], o[2], o[1], o[0])));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for n in nibbles.iter().rev() {
        if n.len() != 1 {
            return None;
        }
        v = (v << 4) | u128::from(u8::from_str_radix(n, 16).ok()?);
    }
    Some(IpAddr::V6(Ipv6Addr::from(v)))
}

#[cfg(test)]
mod tests;
