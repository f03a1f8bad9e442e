//! The resolver's configuration for the topology, and the redirect of
//! 127.0.0.11:53 inside each sandbox that uses it.

use super::*;

/// What the embedded resolver answers for this machine's sandboxes, when
/// it is on and some sandbox needs it.
pub(super) fn resolver_config(p: &Plan<'_>) -> Option<crate::resolver::config::Config> {
    let addrs: crate::resolver::config::Addresses = p
        .addrs
        .iter()
        .map(|(k, a)| (k.clone(), (a.v4, a.v6)))
        .collect();
    let served_elsewhere = &p.obs.host.foreign_dns;
    let allocated = &p.obs.host.allocated.dns_ports;
    let port_of = |sandbox: &str| {
        allocated
            .get(sandbox)
            .copied()
            .unwrap_or_else(|| crate::resolver::redirect::port_for(&p.t.name, sandbox))
    };
    crate::resolver::config::build(
        p.full,
        p.t,
        &addrs,
        &p.obs.host.nameservers,
        &|sandbox: &str| (!served_elsewhere.contains(sandbox)).then(|| port_of(sandbox)),
    )
}

/// Each served sandbox's redirect of 127.0.0.11:53 to its resolver port.
pub(super) fn dns_redirects(
    c: &crate::resolver::config::Config,
) -> BTreeMap<String, crate::model::DnsRes> {
    c.sandboxes
        .iter()
        .map(|(netns, s)| {
            let d = crate::model::DnsRes {
                sandbox: s.sandbox.clone(),
                netns: netns.clone(),
                port: s.port,
                intact: true,
            };
            (s.sandbox.clone(), d)
        })
        .collect()
}
