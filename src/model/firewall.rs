//! cnm's firewall objects: rules in tables it owns, and its rules in
//! chains others own.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One rule's statements (typed nftables).
pub type Body = Vec<nftables::stmt::Statement<'static>>;

/// One nftables rule cnm owns. Its identity is its chain and a digest of
/// what it does (chain and body), so a rule whose body changes (say, one
/// more port in an `icc: false` set) is a different rule, even when its
/// label reads the same. The rule's comment stores digest and label.
#[derive(Debug, Clone, Serialize)]
pub struct FwRule {
    /// Chain name; `icc` lives in the bridge-family table, the rest in inet.
    pub chain: String,
    /// Human description, e.g. `port 0.0.0.0:8080/tcp → web-front 10.10.0.10:80`.
    pub label: String,
    /// 12 hex digits of SHA-256 over chain and body. Empty on rules
    /// written before cnm recorded digests (compared by label).
    pub digest: String,
    /// What the rule does, as typed nftables statements (absent on
    /// observed rules).
    #[serde(skip)]
    pub body: Body,
    /// Observed rules in chains cnm does not own: the rule's handle there.
    #[serde(skip)]
    pub handle: Option<u64>,
}

impl FwRule {
    /// A rule in `chain` doing `body`, its digest computed from both.
    pub fn new(chain: &str, label: String, body: Body) -> FwRule {
        let text = serde_json::to_string(&(chain, &body)).unwrap_or_default();
        let digest = crate::naming::short_hash(&[&text], 12);
        FwRule {
            chain: chain.to_string(),
            label,
            digest,
            body,
            handle: None,
        }
    }

    /// The comment stored on the rule: digest, then label, within nft's
    /// 128-byte comment limit.
    pub fn comment(&self) -> String {
        cut(&format!("{} {}", self.digest, self.label), 120).to_string()
    }

    /// A rule read back from the kernel, from its chain and comment.
    pub fn from_comment(chain: &str, comment: Option<&str>) -> FwRule {
        let comment = comment.unwrap_or("(a rule cnm did not write)");
        let (digest, label) = match comment.split_once(' ') {
            Some((d, l)) if d.len() == 12 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (d.to_string(), l.to_string())
            }
            _ => (String::new(), comment.to_string()),
        };
        FwRule {
            chain: chain.to_string(),
            label,
            digest,
            body: Vec::new(),
            handle: None,
        }
    }
}

impl PartialEq for FwRule {
    fn eq(&self, o: &Self) -> bool {
        if self.digest.is_empty() || o.digest.is_empty() {
            return self.chain == o.chain && self.label == o.label;
        }
        self.chain == o.chain && self.digest == o.digest
    }
}
impl Eq for FwRule {}

/// At most `max` bytes of `s`, cut at a character boundary (nft keeps
/// comments of at most 128 bytes).
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One part of a map element's key or value, as `nft -j` lists it: a port
/// is a number; a protocol or an address is a string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Atom {
    /// A number (a port).
    Num(u32),
    /// A string (a protocol, an address).
    Text(String),
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Atom::Num(n) => write!(f, "{n}"),
            Atom::Text(t) => f.write_str(t),
        }
    }
}

/// A named map in cnm's inet table (published ports: one element each,
/// so one more port is one element added, not a table rewritten). Its
/// identity is its name and types; elements are compared as values, their
/// labels (stored as element comments) only shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FwMap {
    /// The map's name in the inet table.
    pub name: String,
    /// nft type names of the key's parts (`inet_proto`, `inet_service`).
    pub key_type: Vec<String>,
    /// nft type names of the value's parts.
    pub value_type: Vec<String>,
    /// Key → value (in JSON: a list of `[key, value]` pairs, since JSON
    /// keys are strings).
    #[serde(with = "pairs")]
    pub elements: BTreeMap<Vec<Atom>, Vec<Atom>>,
    /// Key → what the element is for (`port 0.0.0.0:8080/tcp → web
    /// 10.0.0.2:80`), kept in the element's comment.
    #[serde(with = "pairs", default)]
    pub labels: BTreeMap<Vec<Atom>, String>,
}

impl PartialEq for FwMap {
    fn eq(&self, o: &Self) -> bool {
        self.same_shape(o) && self.elements == o.elements
    }
}
impl Eq for FwMap {}

/// A map keyed by lists, as a JSON list of `[key, value]` pairs.
mod pairs {
    use super::Atom;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer, V: Serialize>(
        m: &BTreeMap<Vec<Atom>, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<BTreeMap<Vec<Atom>, V>, D::Error> {
        Ok(Vec::<(Vec<Atom>, V)>::deserialize(d)?.into_iter().collect())
    }
}

impl FwMap {
    /// The element's label, else `MAP: tcp . 8080 → 10.0.0.2`, as nft
    /// writes an element.
    pub fn describe(&self, key: &[Atom], value: &[Atom]) -> String {
        if let Some(l) = self.labels.get(key) {
            return l.clone();
        }
        let join = |a: &[Atom]| {
            a.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" . ")
        };
        format!("{}: {} → {}", self.name, join(key), join(value))
    }

    /// Same name and types: elements can change in place.
    pub fn same_shape(&self, o: &FwMap) -> bool {
        self.name == o.name && self.key_type == o.key_type && self.value_type == o.value_type
    }
}

/// The topology's nftables tables (`inet cnm-<t>`, and `bridge cnm-<t>` when
/// a network has `icc: false`), replaced whole in one transaction, unless
/// only map elements changed: then those are added and deleted in one
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallRes {
    /// The tables' name (`cnm-<topology>`), the same in both families.
    pub table: String,
    /// Whether the bridge-family table exists / is wanted.
    pub bridge_table: bool,
    /// In chain order, then rule order.
    pub rules: Vec<FwRule>,
    /// Maps of the inet table, by name; only non-empty ones exist.
    pub maps: Vec<FwMap>,
    /// The tables are exactly as cnm last wrote them (digest matches).
    pub intact: bool,
}

impl FirewallRes {
    /// How many elements all maps hold.
    pub fn elements(&self) -> usize {
        self.maps.iter().map(|m| m.elements.len()).sum()
    }

    /// Whether `self` becomes `new` by changing map elements alone (same
    /// rules, tables and map shapes, and the tables as cnm wrote them).
    pub fn elements_only_to(&self, new: &FirewallRes) -> bool {
        self.intact
            && self.rules == new.rules
            && self.bridge_table == new.bridge_table
            && self.maps.len() == new.maps.len()
            && self
                .maps
                .iter()
                .zip(&new.maps)
                .all(|(a, b)| a.same_shape(b))
    }
}
