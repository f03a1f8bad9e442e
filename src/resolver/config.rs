//! What the resolver answers, per topology: the names on each network and,
//! for each sandbox it serves, the networks it shares, whether it forwards
//! and to which upstreams. `apply` computes it from the file (pure, here)
//! and writes it where the resolver reads it; the resolver never reads a
//! topology file.

use crate::topology::Topology;
use ipnetwork::{Ipv4Network, Ipv6Network};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The version of the configuration's JSON form.
pub const CONFIG_VERSION: u32 = 1;

/// Docker keeps at most three upstreams (resolv.conf's MAXNS).
pub const MAX_UPSTREAMS: usize = 3;

/// One topology's part of the resolver's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub version: u32,
    pub topology: String,
    /// The names on each network the served sandboxes join.
    pub networks: BTreeMap<String, NetworkNames>,
    /// The sandboxes served, by namespace name.
    pub sandboxes: BTreeMap<String, SandboxDns>,
}

/// The names of one network: every endpoint's sandbox name, hostname and
/// aliases, bare and as `name.network`, lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkNames {
    /// Name → its addresses on this network, sorted (a shared alias has
    /// several).
    pub names: BTreeMap<String, Vec<IpAddr>>,
    /// Address → the name a reverse lookup gives: `<sandbox>.<network>`,
    /// as Docker answers (never a hostname or alias).
    pub ptr: BTreeMap<IpAddr, String>,
}

/// One served sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxDns {
    pub sandbox: String,
    /// The networks whose names it sees (the ones it joins).
    pub networks: Vec<String>,
    /// Names not found here go upstream; false when all its networks are
    /// internal (as Docker's).
    pub forward: bool,
    pub upstreams: Vec<IpAddr>,
    /// Where the resolver listens on 127.0.0.11 in this sandbox (UDP and
    /// TCP); the sandbox's `cnm-dns` table sends port 53 there.
    #[serde(default = "dns_port")]
    pub port: u16,
}

/// Port of configurations written before redirects (the resolver listened
/// on 53 itself).
fn dns_port() -> u16 {
    53
}

impl Config {
    /// How many names the configuration holds (plan's summary).
    pub fn name_count(&self) -> usize {
        self.networks.values().map(|n| n.names.len()).sum()
    }

    /// The serialized form `apply` writes and the resolver reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Each endpoint's addresses, as IPAM chose them.
pub type Addresses = BTreeMap<String, (Option<Ipv4Network>, Option<Ipv6Network>)>;

/// The resolver configuration of `local` (this machine's share of `full`),
/// or `None` when the resolver is off or no sandbox here needs it: one
/// with its own namespace and at least one endpoint. Names come from
/// every sandbox here and, on networks that span hosts, from the other
/// hosts' sandboxes too. `upstreams`: the host's, for sandboxes without
/// `dns: { servers }`. `port`: where the resolver listens in a sandbox;
/// `None` for one whose 127.0.0.11 something else serves (a container's
/// own runtime): it is left out.
pub fn build(
    full: &Topology,
    local: &Topology,
    addrs: &Addresses,
    upstreams: &[IpAddr],
    port: &dyn Fn(&str) -> Option<u16>,
) -> Option<Config> {
    if !full.embedded_dns {
        return None;
    }
    let mut cfg = Config {
        version: CONFIG_VERSION,
        topology: full.name.clone(),
        ..Default::default()
    };
    for sb in local.sandboxes.values() {
        if local.sandbox_uses_host_stack(&sb.name) {
            continue;
        }
        let mut networks: Vec<String> = local
            .endpoints_of_sandbox(&sb.name)
            .map(|e| e.network.clone())
            .collect();
        networks.sort();
        networks.dedup();
        if networks.is_empty() {
            continue;
        }
        let Some(port) = port(&sb.name) else {
            continue;
        };
        let forward = networks.iter().any(|n| !local.networks[n].internal);
        let mut ups: Vec<IpAddr> = match &sb.dns {
            Some(d) if !d.servers.is_empty() => d.servers.clone(),
            _ => upstreams.to_vec(),
        };
        dedup_keep_order(&mut ups);
        ups.truncate(MAX_UPSTREAMS);
        cfg.sandboxes.insert(
            crate::naming::netns_name(&local.name, &sb.name),
            SandboxDns {
                sandbox: sb.name.clone(),
                networks,
                forward,
                upstreams: ups,
                port,
            },
        );
    }
    if cfg.sandboxes.is_empty() {
        return None;
    }
    let joined: std::collections::BTreeSet<&String> = cfg
        .sandboxes
        .values()
        .flat_map(|s| s.networks.iter())
        .collect();
    for net in joined {
        let spans = full.networks.get(net).is_some_and(|n| n.caps.spans_hosts);
        let peers = full
            .endpoints_on_network(net)
            .filter(|e| spans || local.sandboxes.contains_key(&e.sandbox));
        cfg.networks
            .insert(net.clone(), network_names(full, net, peers, addrs));
    }
    Some(cfg)
}

fn network_names<'a>(
    t: &Topology,
    net: &str,
    peers: impl Iterator<Item = &'a crate::topology::Endpoint>,
    addrs: &Addresses,
) -> NetworkNames {
    let mut out = NetworkNames::default();
    for e in peers {
        let sb = &t.sandboxes[&e.sandbox];
        let ips = addrs
            .get(&e.name)
            .map(|(v4, v6)| crate::model::ips(*v4, *v6))
            .unwrap_or_default();
        let mut labels = vec![sb.name.clone()];
        labels.extend(sb.hostname.clone());
        labels.extend(e.aliases.iter().cloned());
        for label in &labels {
            for name in [label.clone(), format!("{label}.{net}")] {
                let slot = out.names.entry(name.to_ascii_lowercase()).or_default();
                slot.extend(ips.iter().copied());
                slot.sort();
                slot.dedup();
            }
        }
        for ip in ips {
            out.ptr
                .entry(ip)
                .or_insert_with(|| format!("{}.{net}", sb.name).to_ascii_lowercase());
        }
    }
    out
}

fn dedup_keep_order(v: &mut Vec<IpAddr>) {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|ip| seen.insert(*ip));
}
