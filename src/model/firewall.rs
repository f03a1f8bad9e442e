//! cnm's firewall objects: rules in tables it owns, and its rules in
//! chains others own.

use serde::Serialize;

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
    pub body: crate::firewall::rules::Body,
    /// Observed rules in chains cnm does not own: the rule's handle there.
    #[serde(skip)]
    pub handle: Option<u64>,
}

impl FwRule {
    pub fn new(chain: &str, label: String, body: crate::firewall::rules::Body) -> FwRule {
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
        let mut c = format!("{} {}", self.digest, self.label);
        let mut end = c.len().min(120);
        while !c.is_char_boundary(end) {
            end -= 1;
        }
        c.truncate(end);
        c
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

/// The topology's nftables tables (`inet cnm-<t>`, and `bridge cnm-<t>` when
/// a network has `icc: false`), always replaced whole in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallRes {
    pub table: String,
    /// Whether the bridge-family table exists / is wanted.
    pub bridge_table: bool,
    /// In chain order, then rule order.
    pub rules: Vec<FwRule>,
    /// The tables are exactly as cnm last wrote them (digest matches).
    pub intact: bool,
}
