//! A sandbox's `/etc/netns/<netns>/hosts` and `resolv.conf`, rendered.

use super::EndpointAddr;
use crate::files::{self, HostsContent, HostsEntry, Resolv};
use crate::model::{FileRes, Observed};
use crate::naming;
use crate::topology::{Endpoint, Sandbox, Topology};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// Lookups built once per plan, so per-sandbox work does not rescan every
/// endpoint: a sandbox's endpoints, and each network's hosts-file lines
/// (sandbox, rendered line) that its members' files share.
pub(super) struct Index<'a> {
    by_sandbox: BTreeMap<&'a str, Vec<&'a Endpoint>>,
    peer_lines: BTreeMap<&'a str, Vec<(&'a str, String)>>,
}

impl<'a> Index<'a> {
    pub(super) fn new(
        t: &'a Topology,
        addrs: &BTreeMap<String, EndpointAddr>,
        visible: impl Fn(&Endpoint) -> bool,
    ) -> Self {
        let mut by_sandbox: BTreeMap<&str, Vec<&Endpoint>> = BTreeMap::new();
        let mut peer_lines: BTreeMap<&str, Vec<(&str, String)>> = BTreeMap::new();
        for e in t.endpoints.values().filter(|e| visible(e)) {
            by_sandbox.entry(e.sandbox.as_str()).or_default().push(e);
            let psb = &t.sandboxes[&e.sandbox];
            let mut names = vec![psb.name.clone()];
            if let Some(h) = &psb.hostname {
                names.push(h.clone());
            }
            names.extend(e.aliases.iter().cloned());
            let a = addrs.get(&e.name).cloned().unwrap_or_default();
            let ips =
                a.v4.map(|v| IpAddr::V4(v.ip()))
                    .into_iter()
                    .chain(a.v6.map(|v| IpAddr::V6(v.ip())));
            for addr in ips {
                let line = files::render_entry(&HostsEntry {
                    addr,
                    names: names.clone(),
                });
                peer_lines
                    .entry(e.network.as_str())
                    .or_default()
                    .push((e.sandbox.as_str(), line));
            }
        }
        Index {
            by_sandbox,
            peer_lines,
        }
    }
}

/// One sandbox whose files are rendered.
pub(super) struct SandboxFiles<'a> {
    pub t: &'a Topology,
    pub obs: &'a Observed,
    pub addrs: &'a BTreeMap<String, EndpointAddr>,
    pub sandbox: &'a str,
    pub netns: &'a str,
    /// The embedded resolver serves it: its hosts file holds only its own
    /// names, and resolv.conf names 127.0.0.11 (as Docker's do).
    pub embedded: bool,
    /// The IPv4 gateway of its default route (`host-gateway` in
    /// `extra_hosts`); without one such lines are left out.
    pub host_gateway: Option<Ipv4Addr>,
}

/// The sandbox's hosts and resolv.conf files, into `out` by path.
pub(super) fn add_files(
    s: &SandboxFiles<'_>,
    index: &Index<'_>,
    out: &mut BTreeMap<String, FileRes>,
) {
    let SandboxFiles {
        t,
        obs,
        addrs,
        sandbox,
        netns,
        embedded,
        host_gateway,
    } = *s;
    // Served names stay out of hosts files: no peers (O(N²) bytes otherwise).
    let mut hosts = hosts_content(t, addrs, sandbox, index, !embedded);
    hosts.extra = t.sandboxes[sandbox]
        .extra_hosts
        .iter()
        .filter_map(|x| {
            Some(HostsEntry {
                addr: x.ip.or(host_gateway.map(IpAddr::V4))?,
                names: vec![x.name.clone()],
            })
        })
        .collect();
    let mut resolv = resolv_for(&t.sandboxes[sandbox], obs);
    if embedded {
        resolv = embedded_resolv(resolv);
    }
    for (path, content) in [
        (naming::hosts_path(netns), files::render_hosts(&hosts)),
        (
            naming::resolv_path(netns),
            files::render_resolv(&t.name, sandbox, &resolv),
        ),
    ] {
        out.insert(
            path.clone(),
            FileRes {
                path,
                sandbox: sandbox.to_string(),
                content,
                id: None,
            },
        );
    }
}

/// The sandbox's hosts file: its own names on its addresses, then the
/// peers on its networks.
fn hosts_content(
    t: &Topology,
    addrs: &BTreeMap<String, EndpointAddr>,
    sandbox: &str,
    index: &Index<'_>,
    with_peers: bool,
) -> HostsContent {
    let sb = &t.sandboxes[sandbox];
    let mine: &[&Endpoint] = index
        .by_sandbox
        .get(sandbox)
        .map(Vec::as_slice)
        .unwrap_or_default();
    HostsContent {
        topology: t.name.clone(),
        sandbox: sandbox.to_string(),
        hostname: sb.hostname.clone(),
        domainname: sb.domainname.clone(),
        aliases: mine
            .iter()
            .filter(|e| !e.aliases.is_empty())
            .map(|e| (e.name.clone(), e.aliases.clone()))
            .collect(),
        own: own_entries(sb, mine, addrs),
        extra: Vec::new(),
        peers: if with_peers {
            peer_lines(index, mine, sandbox)
        } else {
            Vec::new()
        },
    }
}

/// The sandbox's names (FQDN, hostname, sandbox name) on each of its
/// addresses, or on 127.0.1.1 when it has none.
fn own_entries(
    sb: &Sandbox,
    mine: &[&Endpoint],
    addrs: &BTreeMap<String, EndpointAddr>,
) -> Vec<HostsEntry> {
    let mut own_names = Vec::new();
    if let (Some(h), Some(d)) = (&sb.hostname, &sb.domainname) {
        own_names.push(format!("{h}.{d}"));
    }
    if let Some(h) = &sb.hostname {
        own_names.push(h.clone());
    }
    own_names.push(sb.name.clone());

    let mut own: Vec<HostsEntry> = mine
        .iter()
        .flat_map(|e| ips_of(addrs, e))
        .map(|addr| HostsEntry {
            addr,
            names: own_names.clone(),
        })
        .collect();
    if own.is_empty() {
        // No address of its own: resolve its names to loopback (Debian's convention).
        own.push(HostsEntry {
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)),
            names: own_names.clone(),
        });
    }
    own
}

/// The hosts-file lines of the other sandboxes on the networks of `mine`.
fn peer_lines(index: &Index<'_>, mine: &[&Endpoint], sandbox: &str) -> Vec<String> {
    let mut peers = Vec::new();
    for mine in mine {
        let lines = index
            .peer_lines
            .get(mine.network.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        peers.extend(
            lines
                .iter()
                .filter(|(sb, _)| *sb != sandbox)
                .map(|(_, line)| line.clone()),
        );
    }
    peers
}

/// The endpoint's addresses, IPv4 first.
fn ips_of(addrs: &BTreeMap<String, EndpointAddr>, e: &Endpoint) -> Vec<IpAddr> {
    let a = addrs.get(&e.name).cloned().unwrap_or_default();
    a.v4.map(|v| IpAddr::V4(v.ip()))
        .into_iter()
        .chain(a.v6.map(|v| IpAddr::V6(v.ip())))
        .collect()
}

/// resolv.conf for the embedded resolver, as dockerd 20.10 writes it:
/// 127.0.0.11 only (the servers become its upstreams), the search list and
/// options kept in order, and `ndots:0` last unless an ndots option is
/// given.
fn embedded_resolv(r: Resolv) -> Resolv {
    let mut options = r.options;
    if !options.iter().any(|o| o.starts_with("ndots:")) {
        options.push("ndots:0".to_string());
    }
    Resolv {
        nameservers: vec![IpAddr::V4(crate::model::RESOLVER_ADDRESS)],
        search: r.search,
        options,
    }
}

/// The sandbox's resolv.conf: its own `dns:`, else the host's settings
/// without loopback nameservers.
fn resolv_for(sb: &Sandbox, obs: &Observed) -> Resolv {
    match &sb.dns {
        Some(d) => Resolv {
            nameservers: d.servers.clone(),
            search: d.search.clone(),
            options: d.options.clone(),
        },
        None => Resolv {
            nameservers: obs
                .host
                .nameservers
                .iter()
                .filter(|ip| !ip.is_loopback())
                .cloned()
                .collect(),
            search: obs.host.search.clone(),
            options: obs.host.resolv_options.clone(),
        },
    }
}
