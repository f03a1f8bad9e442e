//! Reading the topology's firewall back from the kernel: the listing of
//! cnm's tables (handles stripped), cnm's rules in iptables' `filter
//! FORWARD` chains, the fingerprint recorded after an apply, and what
//! [`observe`] makes of them (cnm's tables or someone else's). Reached as
//! `firewall::nft::{observe, listing, record, Seen}`.

use super::nft::{describe, owner_mark, NftError, OWNER_CHAIN};
use super::{ICC_CHAIN, INET_CHAINS};
use crate::model::{Atom, FirewallRes, FwMap, FwRule};
use crate::store::TopologyStore;
use serde_json::{json, Value};

mod fingerprint;
mod kept;
mod record;
use fingerprint::matches;
pub use record::{record, record_elements};

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

fn is_marked(table: &Value, mark: &str) -> bool {
    table["objects"].as_array().into_iter().flatten().any(|o| {
        o.get("rule")
            .is_some_and(|r| r["chain"] == OWNER_CHAIN && r["comment"] == mark)
    })
}

/// The topology's firewall as the kernel has it, and same-named tables
/// that are someone else's. Listed only when the ruleset's generation id
/// moved since the last listing (kept in the topology's run directory with
/// the id and the namespace it counts in): an unchanged id means no
/// transaction touched any table since, so that listing still holds.
pub fn observe(store: &TopologyStore) -> Result<Seen, NftError> {
    let key = super::generation::current().zip(super::generation::netns_ino());
    if let Some(key) = key {
        if let Some(seen) = kept::load(store, key) {
            return Ok(seen);
        }
    }
    let seen = observe_listing(store)?;
    if let Some(key) = key {
        kept::save(store, key, &seen);
    }
    Ok(seen)
}

fn observe_listing(store: &TopologyStore) -> Result<Seen, NftError> {
    let Some(all) = nft_json(&["list", "tables"])? else {
        return Ok(Seen::default());
    };
    let tables = listing_of(store.name(), &all)?;
    seen_of(store, &all, tables)
}

/// What observe makes of the table names (`all`) and cnm's tables listed.
fn seen_of(store: &TopologyStore, all: &Value, tables: Vec<Value>) -> Result<Seen, NftError> {
    let topology = store.name();
    let (forward_chains, forward) = forward_rules(topology, all)?;
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
    let maps = ours
        .iter()
        .filter(|t| t["family"] == "inet")
        .flat_map(|t| t["objects"].as_array().into_iter().flatten())
        .filter_map(|item| item.get("map"))
        .map(map_of)
        .collect();
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
    let intact = foreign.is_empty() && recorded.as_deref().is_none_or(|r| matches(r, &ours));
    seen.firewall = Some(FirewallRes {
        table,
        bridge_table: ours.iter().any(|t| t["family"] == "bridge"),
        rules,
        maps: super::merge_maps(maps),
        intact,
    });
    Ok(seen)
}

/// A listed map: its types (an array or `a . b`) and elements (`[key,
/// value]` pairs of concatenations or single values). What cnm would not
/// write (an element with a comment, say) reads as a part that matches
/// nothing cnm wants, so it shows as drift.
fn map_of(m: &Value) -> FwMap {
    let types = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_string())
                .collect(),
            Value::String(s) => s.split(" . ").map(str::to_string).collect(),
            other => vec![other.to_string()],
        }
    };
    let parts = |v: &Value| -> Vec<Atom> {
        let atom = |a: &Value| match a {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map_or_else(|| Atom::Text(n.to_string()), Atom::Num),
            Value::String(s) => Atom::Text(s.clone()),
            other => Atom::Text(other.to_string()),
        };
        match v.get("concat").and_then(Value::as_array) {
            Some(items) => items.iter().map(atom).collect(),
            None => vec![atom(v)],
        }
    };
    let mut elements = std::collections::BTreeMap::new();
    let mut labels = std::collections::BTreeMap::new();
    for e in m["elem"].as_array().into_iter().flatten() {
        let (k, v) = match e.as_array().map(Vec::as_slice) {
            Some([k, v]) => (k, Some(v)),
            _ => (e, None),
        };
        // `{"elem": {"val": KEY, "comment": LABEL}}` when it has a comment.
        let (key, label) = match k.get("elem") {
            Some(el) => (parts(&el["val"]), el["comment"].as_str()),
            None => (parts(k), None),
        };
        if let Some(l) = label {
            labels.insert(key.clone(), l.to_string());
        }
        elements.insert(key, v.map(parts).unwrap_or_default());
    }
    FwMap {
        name: m["name"].as_str().unwrap_or_default().to_string(),
        key_type: types(&m["type"]),
        value_type: types(&m["map"]),
        elements,
        labels,
    }
}
