//! The kernel side of the firewall, through the `nft` JSON interface (the
//! `nftables` crate runs it). Every apply replaces the topology's tables in
//! one transaction: a bad batch is rejected whole and the old tables stay.
//!
//! Ownership: each table cnm creates holds a chain `owner` whose one rule
//! carries the comment `cnm:<topology>:table` (nft 1.0.6 neither sets nor
//! lists table comments through JSON, rule comments it does). A table of
//! the same name without that mark is someone else's and is never touched.

use super::{ICC_CHAIN, INET_CHAINS};
use crate::model::{FirewallRes, FwRule};
use crate::store::TopologyStore;
use nftables::batch::Batch;
use nftables::schema::{Chain, NfCmd, NfListObject, Nftables, Rule, Table};
use nftables::stmt::Statement;
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nftables: {0}")]
    Nft(String),
    #[error("cannot record the firewall digest: {0}")]
    Record(#[from] crate::store::StoreError),
}

/// The oldest nft this cnm is tested with (Debian 12's).
pub const MIN_NFT_VERSION: (u32, u32, u32) = (1, 0, 6);

/// The chain holding the ownership mark.
const OWNER_CHAIN: &str = "owner";

/// The mark on the owner chain's rule.
pub fn owner_mark(topology: &str) -> String {
    format!("cnm:{topology}:table")
}

fn families(fw_bridge: bool) -> [(NfFamily, bool); 2] {
    [(NfFamily::INet, true), (NfFamily::Bridge, fw_bridge)]
}

/// The nft family of a family name cnm uses (`ip`, `ip6`).
fn nf_family(name: &str) -> NfFamily {
    match name {
        "ip6" => NfFamily::IP6,
        "bridge" => NfFamily::Bridge,
        "inet" => NfFamily::INet,
        _ => NfFamily::IP,
    }
}

fn rule(
    family: NfFamily,
    table: &str,
    chain: &str,
    expr: Vec<Statement<'static>>,
    comment: Option<String>,
) -> Rule<'static> {
    Rule {
        family,
        table: Cow::Owned(table.to_string()),
        chain: Cow::Owned(chain.to_string()),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: comment.map(Cow::Owned),
    }
}

/// The transaction that makes the kernel's tables equal `fw` (or removes
/// them when `fw` is None), and swaps cnm's rules in foreign chains
/// (`before`'s, by handle) for `fw`'s. `add` before `delete` makes the
/// delete valid whether or not the table exists; plan has checked that an
/// existing one is cnm's.
pub fn document(
    topology: &str,
    before: Option<&FirewallRes>,
    fw: Option<&FirewallRes>,
) -> Nftables<'static> {
    let table = super::table_name(topology);
    let mut batch = Batch::new();
    for r in before.into_iter().flat_map(|b| &b.rules) {
        if let (Some(family), Some(handle)) = (foreign_family(&r.chain), r.handle) {
            let mut old = rule(nf_family(family), "filter", "FORWARD", Vec::new(), None);
            old.handle = u32::try_from(handle).ok();
            batch.delete(NfListObject::Rule(old));
        }
    }
    for r in fw.into_iter().flat_map(|f| &f.rules) {
        if let Some(family) = foreign_family(&r.chain) {
            let new = rule(
                nf_family(family),
                "filter",
                "FORWARD",
                r.body.clone(),
                Some(r.comment()),
            );
            batch.add_cmd(NfCmd::Insert(NfListObject::Rule(new)));
        }
    }
    for (family, wanted) in families(fw.is_some_and(|f| f.bridge_table)) {
        let t = Table {
            family,
            name: Cow::Owned(table.clone()),
            handle: None,
        };
        batch.add(NfListObject::Table(t.clone()));
        batch.delete(NfListObject::Table(t.clone()));
        let Some(fw) = fw.filter(|_| wanted) else {
            continue;
        };
        batch.add(NfListObject::Table(t));
        let chain = |name: &str| Chain {
            family,
            table: Cow::Owned(table.clone()),
            name: Cow::Owned(name.to_string()),
            ..Chain::default()
        };
        batch.add(NfListObject::Chain(chain(OWNER_CHAIN)));
        batch.add(NfListObject::Rule(rule(
            family,
            &table,
            OWNER_CHAIN,
            vec![Statement::Return(None)],
            Some(owner_mark(topology)),
        )));
        let chains: Vec<(&str, NfChainType, NfHook, i32)> = if family == NfFamily::INet {
            INET_CHAINS.to_vec()
        } else {
            vec![(ICC_CHAIN, NfChainType::Filter, NfHook::Forward, 0)]
        };
        for (name, kind, hook, prio) in &chains {
            batch.add(NfListObject::Chain(Chain {
                _type: Some(*kind),
                hook: Some(*hook),
                prio: Some(*prio),
                policy: Some(NfChainPolicy::Accept),
                ..chain(name)
            }));
        }
        for (name, ..) in &chains {
            for r in fw.rules.iter().filter(|r| r.chain == *name) {
                batch.add(NfListObject::Rule(rule(
                    family,
                    &table,
                    name,
                    r.body.clone(),
                    Some(r.comment()),
                )));
            }
        }
    }
    batch.to_nftables()
}

/// `ip` for the pseudo-chain naming `ip filter FORWARD`.
fn foreign_family(chain: &str) -> Option<&str> {
    chain.strip_prefix(super::FOREIGN_PREFIX)
}

/// Run one transaction.
pub fn apply(doc: &Nftables<'_>) -> Result<(), NftError> {
    nftables::helper::apply_ruleset(doc).map_err(|e| NftError::Nft(describe(e)))
}

fn describe(e: nftables::helper::NftablesError) -> String {
    match e {
        nftables::helper::NftablesError::NftExecution { inner, .. }
            if inner.kind() == std::io::ErrorKind::NotFound =>
        {
            missing_hint()
        }
        nftables::helper::NftablesError::NftFailed { stderr, .. } => stderr.trim().to_string(),
        other => other.to_string(),
    }
}

/// What to say when `nft` is not on PATH.
pub fn missing_hint() -> String {
    "the nft command is not on PATH; install the nftables package (apt install nftables; nft 1.0.6 or newer)".into()
}

/// The installed nft's version (`nft --version`), `None` when missing.
pub fn version() -> Option<String> {
    let out = std::process::Command::new("nft")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('v'))
        .map(str::to_string)
        .or_else(|| Some("unknown".into()))
}

/// Whether `version` ("1.0.6") is at least [`MIN_NFT_VERSION`].
pub fn version_ok(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= MIN_NFT_VERSION
}

/// What the kernel has under the topology's table name.
#[derive(Debug, Default)]
pub struct Seen {
    /// The tables, when cnm's (marked, or recorded before marks existed),
    /// and cnm's rules in foreign FORWARD chains.
    pub firewall: Option<FirewallRes>,
    /// `family name` of same-named tables that are not cnm's.
    pub foreign: Vec<String>,
    /// Families whose `filter` table has a `FORWARD` chain.
    pub forward_chains: Vec<String>,
}

/// Run `nft -j ARGS`; `None` when nft is not installed.
fn nft_json(args: &[&str]) -> Result<Option<Value>, NftError> {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    match nftables::helper::get_current_ruleset_raw(None::<&str>, all) {
        Ok(out) => serde_json::from_str(&out)
            .map(Some)
            .map_err(|e| NftError::Nft(e.to_string())),
        Err(nftables::helper::NftablesError::NftExecution { inner, .. })
            if inner.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(NftError::Nft(describe(e))),
    }
}

/// The topology's tables (inet, then bridge), each as its objects without
/// handles. Lists table names first and then only cnm's own tables, never
/// the whole ruleset.
pub fn listing(topology: &str) -> Result<Vec<Value>, NftError> {
    match nft_json(&["list", "tables"])? {
        Some(tables) => listing_of(topology, &tables),
        None => Ok(Vec::new()),
    }
}

fn listing_of(topology: &str, tables: &Value) -> Result<Vec<Value>, NftError> {
    let table = super::table_name(topology);
    let present = |family: &str| {
        tables["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| {
                i.get("table")
                    .is_some_and(|t| t["family"] == family && t["name"] == table.as_str())
            })
    };
    let mut out = Vec::new();
    for family in ["inet", "bridge"] {
        if !present(family) {
            continue;
        }
        let Some(mut listed) = nft_json(&["list", "table", family, &table])? else {
            continue;
        };
        strip(&mut listed);
        let objects: Vec<Value> = listed["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i.get("metainfo").is_none())
            .cloned()
            .collect();
        out.push(json!({"family": family, "objects": objects}));
    }
    Ok(out)
}

/// Families with an iptables `filter FORWARD` chain, and cnm's rules there.
fn forward_rules(topology: &str, tables: &Value) -> Result<(Vec<String>, Vec<FwRule>), NftError> {
    let mark = super::foreign_mark(topology);
    let mut families = Vec::new();
    let mut rules = Vec::new();
    for family in ["ip", "ip6"] {
        let has_filter = tables["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| {
                i.get("table")
                    .is_some_and(|t| t["family"] == family && t["name"] == "filter")
            });
        if !has_filter {
            continue;
        }
        let Ok(Some(chain)) = nft_json(&["list", "chain", family, "filter", "FORWARD"]) else {
            continue; // no FORWARD chain there
        };
        families.push(family.to_string());
        for item in chain["nftables"].as_array().into_iter().flatten() {
            let Some(r) = item.get("rule") else { continue };
            let mut rule =
                FwRule::from_comment(&super::forward_chain(family), r["comment"].as_str());
            if rule.label.starts_with(&mark) {
                rule.handle = r["handle"].as_u64();
                rules.push(rule);
            }
        }
    }
    Ok((families, rules))
}

fn fingerprint(tables: &[Value]) -> Option<String> {
    if tables.is_empty() {
        return None;
    }
    let digest = Sha256::digest(serde_json::to_string(tables).unwrap_or_default().as_bytes());
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("handle");
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// After an apply: remember what the tables look like, so drift in rule
/// bodies (not only in labels) shows up later.
pub fn record(store: &TopologyStore) -> Result<(), NftError> {
    let digest = fingerprint(&listing(store.name())?);
    store.set_nft_digest(digest.as_deref())?;
    Ok(())
}

fn is_marked(table: &Value, mark: &str) -> bool {
    table["objects"].as_array().into_iter().flatten().any(|o| {
        o.get("rule")
            .is_some_and(|r| r["chain"] == OWNER_CHAIN && r["comment"] == mark)
    })
}

/// The topology's firewall as the kernel has it, and same-named tables
/// that are someone else's.
pub fn observe(store: &TopologyStore) -> Result<Seen, NftError> {
    let topology = store.name();
    let Some(all) = nft_json(&["list", "tables"])? else {
        return Ok(Seen::default());
    };
    let tables = listing_of(topology, &all)?;
    let (forward_chains, forward) = forward_rules(topology, &all)?;
    if tables.is_empty() && forward.is_empty() {
        return Ok(Seen {
            forward_chains,
            ..Seen::default()
        });
    }
    let recorded = store.nft_digest()?;
    let mark = owner_mark(topology);
    let table = super::table_name(topology);
    let mut seen = Seen {
        forward_chains,
        ..Seen::default()
    };
    let (ours, foreign): (Vec<Value>, Vec<Value>) = tables
        .into_iter()
        // A table whose mark was flushed away, or one written before marks
        // existed, is cnm's when cnm recorded writing it.
        .partition(|t| is_marked(t, &mark) || recorded.is_some());
    for t in &foreign {
        seen.foreign
            .push(format!("{} {table}", t["family"].as_str().unwrap_or("?")));
    }
    if ours.is_empty() && forward.is_empty() {
        return Ok(seen);
    }
    let order: Vec<&str> = INET_CHAINS.iter().map(|c| c.0).chain([ICC_CHAIN]).collect();
    let mut listed: Vec<FwRule> = Vec::new();
    for t in &ours {
        for item in t["objects"].as_array().into_iter().flatten() {
            if let Some(r) = item.get("rule").filter(|r| r["chain"] != OWNER_CHAIN) {
                listed.push(FwRule::from_comment(
                    r["chain"].as_str().unwrap_or_default(),
                    r["comment"].as_str(),
                ));
            }
        }
    }
    let mut rules = Vec::new();
    for chain in &order {
        rules.extend(listed.iter().filter(|r| r.chain == *chain).cloned());
    }
    rules.extend(
        listed
            .iter()
            .filter(|r| !order.contains(&r.chain.as_str()))
            .cloned(),
    );
    rules.extend(super::sorted_foreign(forward));
    // Without a recorded fingerprint (records lost) rules still compare by
    // the digests in their comments; the fingerprint is recorded again.
    let intact = foreign.is_empty() && (recorded.is_none() || recorded == fingerprint(&ours));
    seen.firewall = Some(FirewallRes {
        table,
        bridge_table: ours.iter().any(|t| t["family"] == "bridge"),
        rules,
        intact,
    });
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_ok("1.0.6"));
        assert!(version_ok("1.1.0"));
        assert!(!version_ok("1.0.2"));
        assert!(!version_ok("0.9.8"));
    }
}
