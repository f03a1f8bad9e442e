//! The fingerprint recorded after an apply, which tells later observes
//! whether cnm's tables are as cnm left them.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The fingerprint of cnm's tables as listed: `BASE.SUM`, BASE the SHA-256
/// of the listing with the maps' elements left out, SUM the wrapping sum
/// of one hash per element (its map's name and its JSON). Adding or
/// deleting elements moves SUM alone, so an apply that only did that
/// updates the fingerprint without listing again ([`record_elements`]).
pub(super) fn fingerprint(tables: &[Value]) -> Option<String> {
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
pub(super) fn element_hash(map: &str, element: &Value) -> u64 {
    let d = Sha256::digest(format!("{map}\n{element}").as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Whether the recorded fingerprint is the listing's.
pub(super) fn matches(recorded: &str, tables: &[Value]) -> bool {
    fingerprint(tables).as_deref() == Some(recorded)
        || legacy_fingerprint(tables).as_deref() == Some(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Atom;
    use serde_json::json;

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
        let a = crate::firewall::nft::listed_element(&key(8080), &value, Some(&label));
        let b = crate::firewall::nft::listed_element(&key(9090), &value, None);
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
