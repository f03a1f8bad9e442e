//! The kernel side of the firewall, through the `nft` JSON interface (the
//! `nftables` crate runs it). Every apply replaces the topology's tables in
//! one transaction: a bad batch is rejected whole and the old tables stay.

use super::{ICC_CHAIN, INET_CHAINS};
use crate::model::{FirewallRes, FwRule};
use crate::naming;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nftables: {0}")]
    Nft(String),
    #[error("cannot record the firewall digest at {path}: {source}")]
    Digest {
        path: String,
        source: std::io::Error,
    },
}

fn families(fw_bridge: bool) -> [(&'static str, bool); 2] {
    [("inet", true), ("bridge", fw_bridge)]
}

/// The transaction that makes the kernel's tables equal `fw` (or removes
/// them when `fw` is None). `add` before `delete` makes the delete valid
/// whether or not the table exists.
pub fn document(table: &str, fw: Option<&FirewallRes>) -> Value {
    let mut cmds = Vec::new();
    for (family, wanted) in families(fw.is_some_and(|f| f.bridge_table)) {
        let t = json!({"family": family, "name": table});
        cmds.push(json!({"add": {"table": t}}));
        cmds.push(json!({"delete": {"table": t}}));
        let Some(fw) = fw.filter(|_| wanted) else {
            continue;
        };
        cmds.push(json!({"add": {"table": t}}));
        let chains: Vec<(&str, &str, &str, i32)> = if family == "inet" {
            INET_CHAINS.to_vec()
        } else {
            vec![(ICC_CHAIN, "filter", "forward", 0)]
        };
        for (name, kind, hook, prio) in &chains {
            cmds.push(json!({"add": {"chain": {"family": family, "table": table, "name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept"}}}));
        }
        for (name, ..) in &chains {
            for r in fw.rules.iter().filter(|r| r.chain == *name) {
                cmds.push(json!({"add": {"rule": {"family": family, "table": table, "chain": name, "comment": r.label, "expr": r.body}}}));
            }
        }
    }
    json!({"nftables": cmds})
}

/// Run one transaction.
pub fn apply(doc: &Value) -> Result<(), NftError> {
    // Validate the shape against the crate's schema before handing it to nft.
    let typed: nftables::schema::Nftables = serde_json::from_value(doc.clone())
        .map_err(|e| NftError::Nft(format!("internal: invalid ruleset: {e}")))?;
    nftables::helper::apply_ruleset(&typed).map_err(|e| NftError::Nft(describe(e)))
}

fn describe(e: nftables::helper::NftablesError) -> String {
    match e {
        nftables::helper::NftablesError::NftExecution { inner, .. }
            if inner.kind() == std::io::ErrorKind::NotFound =>
        {
            "the nft command is missing; install the nftables package".into()
        }
        nftables::helper::NftablesError::NftFailed { stderr, .. } => stderr.trim().to_string(),
        other => other.to_string(),
    }
}

/// The listing of the topology's tables (inet, then bridge), each as its
/// objects without handles, from one `nft list ruleset`. Empty when neither
/// exists or nft is not installed (then there is nothing of ours either).
fn listing(topology: &str) -> Result<Vec<Value>, NftError> {
    let out = match nftables::helper::get_current_ruleset_raw(None::<&str>, ["list", "ruleset"]) {
        Ok(out) => out,
        Err(nftables::helper::NftablesError::NftExecution { inner, .. })
            if inner.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(NftError::Nft(describe(e))),
    };
    let mut all: Value = serde_json::from_str(&out).map_err(|e| NftError::Nft(e.to_string()))?;
    strip(&mut all);
    let table = super::table_name(topology);
    let mut tables = Vec::new();
    for family in ["inet", "bridge"] {
        let ours: Vec<Value> = all["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| {
                item.as_object()
                    .and_then(|o| o.values().next())
                    .is_some_and(|body| {
                        body["family"] == family
                            && (body["table"] == table.as_str()
                                || (body["name"] == table.as_str() && item.get("table").is_some()))
                    })
            })
            .cloned()
            .collect();
        if !ours.is_empty() {
            tables.push(json!({"family": family, "objects": ours}));
        }
    }
    Ok(tables)
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
            map.remove("metainfo");
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => {
            items.retain(|i| i.get("metainfo").is_none());
            items.iter_mut().for_each(strip);
        }
        _ => {}
    }
}

fn digest_path(topology: &str) -> String {
    format!("{}/nft.digest", naming::topology_dir(topology))
}

/// After an apply: remember what the tables look like, so drift in rule
/// bodies (not only in labels) shows up later.
pub fn record(topology: &str) -> Result<(), NftError> {
    let path = digest_path(topology);
    let err = |source| NftError::Digest {
        path: path.clone(),
        source,
    };
    match fingerprint(&listing(topology)?) {
        Some(d) => {
            std::fs::create_dir_all(naming::topology_dir(topology)).map_err(err)?;
            std::fs::write(&path, d).map_err(err)
        }
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(e)),
            _ => Ok(()),
        },
    }
}

/// The topology's firewall as the kernel has it.
pub fn observe(topology: &str) -> Result<Option<FirewallRes>, NftError> {
    let tables = listing(topology)?;
    if tables.is_empty() {
        return Ok(None);
    }
    let order: Vec<&str> = INET_CHAINS.iter().map(|c| c.0).chain([ICC_CHAIN]).collect();
    let mut listed: Vec<FwRule> = Vec::new();
    for t in &tables {
        for item in t["objects"].as_array().into_iter().flatten() {
            if let Some(r) = item.get("rule") {
                listed.push(FwRule {
                    chain: r["chain"].as_str().unwrap_or_default().to_string(),
                    label: r["comment"]
                        .as_str()
                        .unwrap_or("(a rule cnm did not write)")
                        .to_string(),
                    body: Vec::new(),
                });
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
    let recorded = std::fs::read_to_string(digest_path(topology)).ok();
    let intact = recorded.is_some() && recorded == fingerprint(&tables);
    let bridge_table = tables.iter().any(|t| t["family"] == "bridge");
    Ok(Some(FirewallRes {
        table: super::table_name(topology),
        bridge_table,
        rules,
        intact,
    }))
}
