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

/// The JSON listing of one table, or None when it does not exist (or nft
/// is not installed: then there is nothing of ours either).
fn list(family: &str, table: &str) -> Result<Option<Value>, NftError> {
    match nftables::helper::get_current_ruleset_raw(None::<&str>, ["list", "table", family, table])
    {
        Ok(out) => serde_json::from_str(&out)
            .map(Some)
            .map_err(|e| NftError::Nft(e.to_string())),
        Err(nftables::helper::NftablesError::NftFailed { stderr, .. })
            if stderr.contains("No such file") =>
        {
            Ok(None)
        }
        Err(nftables::helper::NftablesError::NftExecution { inner, .. })
            if inner.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(NftError::Nft(describe(e))),
    }
}

/// Both tables' listings without handles and version info: equal exactly
/// when the rulesets are.
fn fingerprint(topology: &str) -> Result<Option<String>, NftError> {
    let table = super::table_name(topology);
    let mut parts = Vec::new();
    for family in ["inet", "bridge"] {
        if let Some(mut v) = list(family, &table)? {
            strip(&mut v);
            parts.push(v);
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let digest = Sha256::digest(serde_json::to_string(&parts).unwrap_or_default().as_bytes());
    Ok(Some(digest.iter().map(|b| format!("{b:02x}")).collect()))
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
    match fingerprint(topology)? {
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
    let table = super::table_name(topology);
    let inet = list("inet", &table)?;
    let bridge = list("bridge", &table)?;
    if inet.is_none() && bridge.is_none() {
        return Ok(None);
    }
    let mut rules = Vec::new();
    let order: Vec<&str> = INET_CHAINS.iter().map(|c| c.0).chain([ICC_CHAIN]).collect();
    let mut listed: Vec<FwRule> = Vec::new();
    for v in [&inet, &bridge].into_iter().flatten() {
        for item in v["nftables"].as_array().into_iter().flatten() {
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
    let intact = recorded.is_some() && recorded == fingerprint(topology)?;
    Ok(Some(FirewallRes {
        table,
        bridge_table: bridge.is_some(),
        rules,
        intact,
    }))
}
