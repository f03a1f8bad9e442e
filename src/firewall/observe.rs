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
use sha2::{Digest, Sha256};

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

/// The fingerprint of cnm's tables as listed: `BASE.SUM`, BASE the SHA-256
/// of the listing with the maps' elements left out, SUM the wrapping sum
/// of one hash per element (its map's name and its JSON). Adding or
/// deleting elements moves SUM alone, so an apply that only did that
/// updates the fingerprint without listing again ([`record_elements`]).
fn fingerprint(tables: &[Value]) -> Option<String> {
    if tables.is_empty() {
        return None;
    }
    let mut base = tables.to_vec();
    let mut sum = 0u64;
    let maps = base
        .iter_mut()
        .filter_map(|t| t["objects"].as_array_mut())
        .flatten()
        .filter_map(|o| o.get_mut("map").and_then(Value::as_object_mut));
    for m in maps {
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(Value::Array(elems)) = m.remove("elem") {
            for e in &elems {
                sum = sum.wrapping_add(element_hash(&name, e));
            }
        }
    }
    Some(format!(
        "{}.{sum:016x}",
        hex(&serde_json::to_string(&base).unwrap_or_default())
    ))
}

/// The fingerprint an older cnm recorded: SHA-256 of the whole listing.
/// Still accepted, so an upgrade does not see its own tables as edited.
fn legacy_fingerprint(tables: &[Value]) -> Option<String> {
    (!tables.is_empty()).then(|| hex(&serde_json::to_string(tables).unwrap_or_default()))
}

fn hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One element's share of a fingerprint's SUM.
fn element_hash(map: &str, element: &Value) -> u64 {
    let d = Sha256::digest(format!("{map}\n{element}").as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Whether the recorded fingerprint is the listing's.
fn matches(recorded: &str, tables: &[Value]) -> bool {
    fingerprint(tables).as_deref() == Some(recorded)
        || legacy_fingerprint(tables).as_deref() == Some(recorded)
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
/// The same listing is kept for observe (verify, next plan), which then
/// need not list again while nothing changes.
pub fn record(store: &TopologyStore) -> Result<(), NftError> {
    let key = super::generation::current().zip(super::generation::netns_ino());
    let Some(all) = nft_json(&["list", "tables"])? else {
        store.set_nft_digest(None)?;
        return Ok(());
    };
    let tables = listing_of(store.name(), &all)?;
    store.set_nft_digest(fingerprint(&tables).as_deref())?;
    if let Some(key) = key {
        kept::save(store, key, &seen_of(store, &all, tables)?);
    }
    Ok(())
}

/// After a transaction that only added and deleted map elements (`before`
/// as observed, `after` as now written): the fingerprint and the kept
/// listing follow from what it did, without listing again. Only when the
/// ruleset moved by that one transaction since the kept listing (its
/// generation id is one higher) and the recorded fingerprint has a SUM;
/// otherwise false, and the caller lists ([`record`]).
pub fn record_elements(
    store: &TopologyStore,
    before: &FirewallRes,
    after: &FirewallRes,
) -> Result<bool, NftError> {
    let Some((generation, netns)) =
        super::generation::current().zip(super::generation::netns_ino())
    else {
        return Ok(false);
    };
    let Some((key, mut seen)) = kept::load_unchecked(store) else {
        tracing::debug!("no kept listing: the firewall is listed again");
        return Ok(false);
    };
    if key != (generation.wrapping_sub(1), netns) {
        tracing::debug!(kept = ?key, now = generation, "the ruleset moved more than this transaction: listed again");
        return Ok(false);
    }
    let Some((base, sum)) = store.nft_digest()?.and_then(|d| {
        let (base, sum) = d.split_once('.')?;
        Some((base.to_string(), u64::from_str_radix(sum, 16).ok()?))
    }) else {
        return Ok(false);
    };
    let mut sum = sum;
    for (old, new) in before.maps.iter().zip(&after.maps) {
        for (k, v) in &old.elements {
            if new.elements.get(k) != Some(v) {
                let listed = super::nft::listed_element(k, v, old.labels.get(k));
                sum = sum.wrapping_sub(element_hash(&old.name, &listed));
            }
        }
        for (k, v) in &new.elements {
            if old.elements.get(k) != Some(v) {
                let listed = super::nft::listed_element(k, v, new.labels.get(k));
                sum = sum.wrapping_add(element_hash(&new.name, &listed));
            }
        }
    }
    store.set_nft_digest(Some(&format!("{base}.{sum:016x}")))?;
    if let Some(fw) = seen.firewall.as_mut() {
        fw.maps = after.maps.clone();
    }
    kept::save(store, (generation, netns), &seen);
    Ok(true)
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

/// The last listing, as observe made it, with the generation id and the
/// namespace it was read at. Regenerable: written without fsync, and any
/// doubt (unreadable, another id) means listing again.
mod kept {
    use super::Seen;
    use crate::model::{FirewallRes, FwMap, FwRule};
    use crate::store::TopologyStore;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Kept {
        generation: u32,
        netns: u64,
        /// The fingerprint recorded when it was listed (it decides `intact`).
        recorded: Option<String>,
        firewall: Option<KeptFirewall>,
        foreign: Vec<String>,
        forward_chains: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    struct KeptFirewall {
        table: String,
        bridge_table: bool,
        intact: bool,
        rules: Vec<(String, String, String, Option<u64>)>,
        #[serde(default)]
        maps: Vec<FwMap>,
    }

    pub fn load(store: &TopologyStore, key: (u32, u64)) -> Option<Seen> {
        let (at, seen) = load_unchecked(store)?;
        (at == key).then_some(seen)
    }

    /// The kept listing and the (generation, namespace) it was read at,
    /// if it was kept under the fingerprint recorded now.
    pub fn load_unchecked(store: &TopologyStore) -> Option<((u32, u64), Seen)> {
        let k: Kept = serde_json::from_str(&store.nft_kept().ok()??).ok()?;
        if k.recorded != store.nft_digest().ok()? {
            return None;
        }
        let key = (k.generation, k.netns);
        Some((
            key,
            Seen {
                firewall: k.firewall.map(|f| FirewallRes {
                    table: f.table,
                    bridge_table: f.bridge_table,
                    intact: f.intact,
                    maps: f.maps,
                    rules: f
                        .rules
                        .into_iter()
                        .map(|(chain, label, digest, handle)| FwRule {
                            chain,
                            label,
                            digest,
                            body: Default::default(),
                            handle,
                        })
                        .collect(),
                }),
                foreign: k.foreign,
                forward_chains: k.forward_chains,
            },
        ))
    }

    pub fn save(store: &TopologyStore, (generation, netns): (u32, u64), seen: &Seen) {
        let Ok(recorded) = store.nft_digest() else {
            return;
        };
        let k = Kept {
            generation,
            netns,
            recorded,
            firewall: seen.firewall.as_ref().map(|f| KeptFirewall {
                table: f.table.clone(),
                bridge_table: f.bridge_table,
                intact: f.intact,
                rules: f
                    .rules
                    .iter()
                    .map(|r| (r.chain.clone(), r.label.clone(), r.digest.clone(), r.handle))
                    .collect(),
                maps: f.maps.clone(),
            }),
            foreign: seen.foreign.clone(),
            forward_chains: seen.forward_chains.clone(),
        };
        if let Ok(text) = serde_json::to_string(&k) {
            if let Err(e) = store.set_nft_kept(&text) {
                tracing::debug!("cannot keep the nftables listing: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Atom;

    fn table(elems: &[Value]) -> Vec<Value> {
        vec![json!({"family": "inet", "objects": [
            {"table": {"family": "inet", "name": "cnm-t"}},
            {"map": {"family": "inet", "name": "ports_ip_addr", "table": "cnm-t",
                     "type": ["inet_proto", "inet_service"], "map": "ipv4_addr", "elem": elems}},
        ]})]
    }

    #[test]
    fn element_changes_move_the_fingerprint_as_a_new_listing_would() {
        let key = |p: u32| vec![Atom::Text("tcp".into()), Atom::Num(p)];
        let value = vec![Atom::Text("10.0.0.2".into())];
        let label = "port 0.0.0.0:8080/tcp → web 10.0.0.2:80".to_string();
        let a = super::super::nft::listed_element(&key(8080), &value, Some(&label));
        let b = super::super::nft::listed_element(&key(9090), &value, None);
        let both = fingerprint(&table(&[a.clone(), b.clone()])).unwrap();
        let one = fingerprint(&table(std::slice::from_ref(&a))).unwrap();
        let (base, sum) = both.split_once('.').unwrap();
        let sum = u64::from_str_radix(sum, 16).unwrap();
        let less = sum.wrapping_sub(element_hash("ports_ip_addr", &b));
        assert_eq!(format!("{base}.{less:016x}"), one);
        // Order does not count; an older cnm's fingerprint still matches.
        assert_eq!(fingerprint(&table(&[b, a.clone()])).unwrap(), both);
        let t = table(&[a]);
        assert!(matches(&legacy_fingerprint(&t).unwrap(), &t));
        assert!(!matches(&both, &t));
    }
}
