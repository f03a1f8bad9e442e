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

pub fn route_localnet(bridge: &str) -> String {
    format!("net/ipv4/conf/{bridge}/route_localnet")
}
