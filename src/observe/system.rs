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

/// Read sysctls inside sandbox namespaces: `keys` by sandbox (paths under
/// /proc/sys), for the namespaces `state` has. Keys that are not valid
/// sysctl paths (records are data) or not readable are left out.
pub fn observe_sandbox_sysctls(
    state: &mut State,
    keys: &std::collections::BTreeMap<String, Vec<String>>,
) {
    for (sandbox, keys) in keys {
        let Some(ns) = state.namespaces.get_mut(sandbox) else {
            continue;
        };
        let keys: Vec<String> = keys
            .iter()
            .filter(|k| sysctl_path_ok(k) && !ns.sysctls.contains_key(*k))
            .cloned()
            .collect();
        if keys.is_empty() {
            continue;
        }
        let Ok(Some(file)) = crate::netns::open(&ns.netns) else {
            continue;
        };
        let read = crate::netns::inside(&file, move || {
            keys.into_iter()
                .filter_map(|k| {
                    let v = std::fs::read_to_string(format!("/proc/sys/{k}")).ok()?;
                    Some((k, v.trim().to_string()))
                })
                .collect::<Vec<_>>()
        });
        if let Ok(values) = read {
            ns.sysctls.extend(values);
        }
    }
}

/// A sandbox sysctl's path: `net/` and words of `[A-Za-z0-9_-]`.
fn sysctl_path_ok(p: &str) -> bool {
    p.starts_with("net/")
        && p.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        })
}
