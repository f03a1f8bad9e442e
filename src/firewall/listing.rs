//! The topology's tables in the shape `nft -j list table` shows them,
//! handles left out: generated from the rules (pure, for golden files) and
//! read from the kernel, so the two compare as values.

use super::nft::{self, NftError};
use crate::model::FirewallRes;
use nftables::schema::{NfCmd, NfListObject, NfObject};
use serde_json::{json, Value};

/// What the kernel should list for `fw` once applied: per family (inet,
/// then bridge), the table, its chains by name, each chain's rules in
/// order. Built from the very transaction apply sends.
pub fn generated(topology: &str, fw: &FirewallRes) -> Value {
    let doc = nft::document(topology, None, Some(fw));
    let table = super::table_name(topology);
    let mut objects: Vec<Value> = Vec::new();
    for o in doc.objects.iter() {
        let NfObject::CmdObject(cmd) = o else {
            continue;
        };
        match cmd {
            // Each family's table is deleted once, then made again.
            NfCmd::Delete(NfListObject::Table(t)) => {
                let family = json!(t.family);
                objects.retain(|v| first(v)["family"] != family);
            }
            NfCmd::Add(obj) => {
                let v = json!(obj);
                if first(&v)["table"] == table.as_str() || first(&v)["name"] == table.as_str() {
                    objects.push(v);
                }
            }
            _ => {}
        }
    }
    normalize(objects)
}

/// What the kernel lists now for the topology's tables.
pub fn live(topology: &str) -> Result<Value, NftError> {
    let objects = nft::listing(topology)?
        .into_iter()
        .flat_map(|t| t["objects"].as_array().cloned().unwrap_or_default())
        .collect();
    Ok(normalize(objects))
}

/// The one object inside `{"table": {...}}` / `{"chain": ...}` / `{"rule": ...}`.
fn first(v: &Value) -> &Value {
    v.as_object()
        .and_then(|m| m.values().next())
        .unwrap_or(&Value::Null)
}

/// One shape for both sides: per family, table, chains sorted by name,
/// rules per chain in order; nothing else (no handles, no metainfo).
fn normalize(objects: Vec<Value>) -> Value {
    let mut families: Vec<(String, Value)> = Vec::new();
    for o in objects {
        let Some((kind, body)) = o.as_object().and_then(|m| m.iter().next()) else {
            continue;
        };
        let mut body = body.clone();
        canonical(&mut body);
        let family = body["family"].as_str().unwrap_or_default().to_string();
        let i = match families.iter().position(|(f, _)| *f == family) {
            Some(i) => i,
            None => {
                families.push((
                    family.clone(),
                    json!({"table": null, "chains": [], "rules": {}, "maps": []}),
                ));
                families.len() - 1
            }
        };
        let entry = &mut families[i].1;
        match kind.as_str() {
            "table" => entry["table"] = body,
            "chain" => {
                if let Some(chains) = entry["chains"].as_array_mut() {
                    chains.push(body);
                    chains.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                }
            }
            "map" => {
                if let Some(maps) = entry["maps"].as_array_mut() {
                    maps.push(body);
                    maps.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                }
            }
            "rule" => {
                let chain = body["chain"].as_str().unwrap_or_default().to_string();
                if let Some(rules) = entry["rules"].as_object_mut() {
                    let list = rules.entry(chain).or_insert_with(|| json!([]));
                    if let Some(l) = list.as_array_mut() {
                        l.push(body);
                    }
                }
            }
            _ => {}
        }
    }
    families.sort_by_key(|(f, _)| (f != "inet", f.clone()));
    Value::Array(
        families
            .into_iter()
            .map(|(family, v)| {
                let mut out = json!({"family": family, "table": v["table"], "chains": v["chains"], "rules": v["rules"]});
                // Only tables with published ports have maps.
                if v["maps"].as_array().is_some_and(|m| !m.is_empty()) {
                    out["maps"] = v["maps"].clone();
                }
                out
            })
            .collect(),
    )
}

/// Handles go (the kernel's numbering); an anonymous set's elements and a
/// map's are sorted (nft lists them in its own hash order); a map's value
/// type is written `a . b`, as nft lists it.
fn canonical(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("handle");
            for key in ["set", "elem"] {
                if let Some(Value::Array(items)) = map.get_mut(key) {
                    items.sort_by_key(|i| i.to_string());
                }
            }
            // The crate writes an element's unset options as null; nft
            // lists none.
            if let Some(Value::Object(elem)) = map.get_mut("elem") {
                elem.retain(|_, v| !v.is_null());
            }
            if let Some(Value::Array(parts)) = map.get("map") {
                let text: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
                if text.len() == parts.len() {
                    map.insert("map".into(), Value::String(text.join(" . ")));
                }
            }
            map.values_mut().for_each(canonical);
        }
        Value::Array(items) => items.iter_mut().for_each(canonical),
        _ => {}
    }
}
