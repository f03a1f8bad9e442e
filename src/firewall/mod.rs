//! cnm's firewall: one `inet cnm-<topology>` table (and `bridge
//! cnm-<topology>` for chain `icc`) holding the rules drivers emit, plus
//! cnm's marked rules in iptables' FORWARD chains. `rules` is the typed
//! vocabulary drivers use; `nft` talks to the kernel and `observe` reads
//! the tables back.

pub mod generation;
pub mod listing;
pub mod nft;
mod observe;
pub mod rules;

use crate::model::FwRule;
use nftables::types::{NfChainType, NfHook};

/// The table name for a topology (both families use it).
pub fn table_name(topology: &str) -> String {
    format!("cnm-{topology}")
}

/// Chains of the inet table, in creation order: (name, type, hook, priority).
pub const INET_CHAINS: [(&str, NfChainType, NfHook, i32); 4] = [
    ("prerouting", NfChainType::NAT, NfHook::Prerouting, -100),
    ("output", NfChainType::NAT, NfHook::Output, -100),
    ("postrouting", NfChainType::NAT, NfHook::Postrouting, 100),
    ("forward", NfChainType::Filter, NfHook::Forward, 0),
];
/// The bridge-family chain enforcing `icc: false`.
pub const ICC_CHAIN: &str = "icc";

/// The pseudo-chain naming iptables' `FORWARD` chain of a family
/// (`ip filter FORWARD`): cnm owns rules there, not the chain.
pub fn forward_chain(family: &str) -> String {
    format!("{FOREIGN_PREFIX}{family}")
}
pub const FOREIGN_PREFIX: &str = "iptables-forward-";

/// Whether `rules` need cnm's table in the bridge family (a rule in the
/// ICC chain, which filters between ports of one bridge).
pub fn needs_bridge_table(rules: &[FwRule]) -> bool {
    rules.iter().any(|r| r.chain == ICC_CHAIN)
}

/// cnm's rules in foreign chains, in one order (inserting puts each on
/// top, so the kernel lists them reversed; their order does not matter).
pub fn sorted_foreign(mut rules: Vec<FwRule>) -> Vec<FwRule> {
    rules.sort_by(|a, b| (&a.chain, &a.label).cmp(&(&b.chain, &b.label)));
    rules
}

/// The mark that starts the label of cnm's rules in a foreign chain.
pub fn foreign_mark(topology: &str) -> String {
    format!("cnm:{topology}:forward")
}

/// The two maps of published single ports of one address family, keyed
/// by protocol and port (`at_address`: by the host address too): one gives
/// the endpoint's address, the other its port. (One map of `address .
/// port` values would do, but nft 1.0.6 cannot declare a concatenated
/// value type through JSON.) Empty; the driver fills them.
pub fn port_maps(v4: bool, at_address: bool) -> [crate::model::FwMap; 2] {
    let addr = if v4 { "ipv4_addr" } else { "ipv6_addr" };
    let mut key_type = Vec::new();
    if at_address {
        key_type.push(addr.to_string());
    }
    key_type.extend(["inet_proto".to_string(), "inet_service".to_string()]);
    let base = format!(
        "ports_{}{}",
        if v4 { "ip" } else { "ip6" },
        if at_address { "_at" } else { "" }
    );
    let map = |part: &str, value: &str| crate::model::FwMap {
        name: format!("{base}_{part}"),
        key_type: key_type.clone(),
        value_type: vec![value.to_string()],
        elements: Default::default(),
        labels: Default::default(),
    };
    [map("addr", addr), map("port", "inet_service")]
}

/// The maps of a table, merged by name and sorted by name (drivers may
/// each bring elements of the same map).
pub fn merge_maps(maps: Vec<crate::model::FwMap>) -> Vec<crate::model::FwMap> {
    let mut by_name: std::collections::BTreeMap<String, crate::model::FwMap> = Default::default();
    for m in maps {
        match by_name.get_mut(&m.name) {
            Some(have) => {
                for (k, v) in m.elements {
                    if !have.elements.contains_key(&k) {
                        if let Some(l) = m.labels.get(&k) {
                            have.labels.insert(k.clone(), l.clone());
                        }
                        have.elements.insert(k, v);
                    }
                }
            }
            None => {
                by_name.insert(m.name.clone(), m);
            }
        }
    }
    by_name
        .into_values()
        .filter(|m| !m.elements.is_empty())
        .collect()
}

pub fn route_localnet(bridge: &str) -> String {
    format!("net/ipv4/conf/{bridge}/route_localnet")
}
