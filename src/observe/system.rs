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

/// The host's nameservers, for sandboxes without `dns:`. The host's
/// resolv.conf is an input, not cnm's file: read through links as usual.
pub fn observe_resolv(facts: &mut HostFacts) {
    let resolv =
        files::parse_resolv(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    facts.nameservers = resolv.nameservers;
    facts.search = resolv.search;
    facts.resolv_options = resolv.options;
}
