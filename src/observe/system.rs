//! What observe reads outside netlink: the sysctls cnm may set and the
//! host's resolv.conf.

use crate::files;
use crate::model::{HostFacts, State, SysctlRes};
use crate::naming::MarkKind;

/// The sysctls cnm may set, as they are now.
pub fn observe_sysctls(state: &mut State) {
    let mut keys = vec![
        "net/ipv4/ip_forward".to_string(),
        "net/ipv6/conf/all/forwarding".to_string(),
    ];
    keys.extend(
        state
            .links
            .values()
            .filter(|l| l.role == MarkKind::Network)
            .map(|b| crate::firewall::route_localnet(&b.ifname)),
    );
    for key in keys {
        if let Ok(v) = std::fs::read_to_string(format!("/proc/sys/{key}")) {
            state.sysctls.insert(
                key.clone(),
                SysctlRes {
                    key,
                    value: v.trim().to_string(),
                },
            );
        }
    }
}

/// systemd-resolved's list of the host's real upstreams.
const SYSTEMD_RESOLV: &str = "/run/systemd/resolve/resolv.conf";

/// A resolv.conf, at most 64 KiB of it (absent: empty).
fn read_small(path: &str) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(64 * 1024).read_to_string(&mut text);
    }
    text
}

/// The host's nameservers, for sandboxes without `dns:`. The host's
/// resolv.conf is an input, not cnm's file: read through links as usual.
pub fn observe_resolv(facts: &mut HostFacts) {
    let mut resolv = files::parse_resolv(&read_small("/etc/resolv.conf"));
    // Only a loopback stub (systemd-resolved's 127.0.0.53), which a
    // sandbox cannot reach: its real upstreams, as Docker does.
    let stub_only =
        !resolv.nameservers.is_empty() && resolv.nameservers.iter().all(|n| n.is_loopback());
    if stub_only {
        let real = files::parse_resolv(&read_small(SYSTEMD_RESOLV));
        if real.nameservers.iter().any(|n| !n.is_loopback()) {
            resolv = real;
        }
    }
    facts.nameservers = resolv.nameservers;
    facts.search = resolv.search;
    facts.resolv_options = resolv.options;
}
