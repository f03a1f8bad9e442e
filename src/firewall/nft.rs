//! The kernel side of the firewall, through the `nft` JSON interface (the
//! `nftables` crate runs it). Every apply replaces the topology's tables in
//! one transaction: a bad batch is rejected whole and the old tables stay.
//! When only published ports change (elements of the port maps), the
//! transaction adds and deletes those elements instead.
//!
//! Ownership: each table cnm creates holds a chain `owner` whose one rule
//! carries the comment `cnm:<topology>:table` (nft 1.0.6 neither sets nor
//! lists table comments through JSON, rule comments it does). A table of
//! the same name without that mark is someone else's and is never touched.

use super::{ICC_CHAIN, INET_CHAINS};
use crate::model::{Atom, FirewallRes, FwMap};
use nftables::batch::Batch;
use nftables::expr::{Elem, Expression, NamedExpression};
use nftables::schema::{
    Chain, Element, Map, NfCmd, NfListObject, Nftables, Rule, SetType, SetTypeValue, Table,
};
use nftables::stmt::Statement;
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use std::borrow::Cow;

pub use super::observe::{listing, observe, record, record_elements, Seen};
pub use crate::errors::NftError;

/// The oldest nft this cnm is tested with (Debian 12's).
pub const MIN_NFT_VERSION: (u32, u32, u32) = (1, 0, 6);

/// The chain holding the ownership mark.
pub(super) const OWNER_CHAIN: &str = "owner";

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
    if let (Some(b), Some(f)) = (before, fw) {
        if b.elements_only_to(f) {
            return elements_document(topology, b, f);
        }
    }
    let table = super::table_name(topology);
    let mut batch = Batch::new();
    swap_foreign_rules(&mut batch, before, fw);
    for (family, wanted) in families(fw.is_some_and(|f| f.bridge_table)) {
        let t = Table {
            family,
            name: Cow::Owned(table.clone()),
            handle: None,
        };
        batch.add(NfListObject::Table(t.clone()));
        batch.delete(NfListObject::Table(t.clone()));
        if let Some(fw) = fw.filter(|_| wanted) {
            batch.add(NfListObject::Table(t));
            fill_table(&mut batch, topology, &table, family, fw);
        }
    }
    batch.to_nftables()
}

/// cnm's rules in iptables' `filter FORWARD` chains: `before`'s deleted
/// (by handle), `fw`'s inserted.
fn swap_foreign_rules(
    batch: &mut Batch<'static>,
    before: Option<&FirewallRes>,
    fw: Option<&FirewallRes>,
) {
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
}

/// A table of `family` made anew: its owner chain and mark, its maps (inet),
/// its chains and rules.
fn fill_table(
    batch: &mut Batch<'static>,
    topology: &str,
    table: &str,
    family: NfFamily,
    fw: &FirewallRes,
) {
    let chain = |name: &str| Chain {
        family,
        table: Cow::Owned(table.to_string()),
        name: Cow::Owned(name.to_string()),
        ..Chain::default()
    };
    batch.add(NfListObject::Chain(chain(OWNER_CHAIN)));
    batch.add(NfListObject::Rule(rule(
        family,
        table,
        OWNER_CHAIN,
        vec![Statement::Return(None)],
        Some(owner_mark(topology)),
    )));
    if family == NfFamily::INet {
        for m in &fw.maps {
            batch.add(NfListObject::Map(Box::new(map_object(table, m))));
        }
    }
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
                table,
                name,
                r.body.clone(),
                Some(r.comment()),
            )));
        }
    }
}

/// The transaction when only map elements change: the elements `before`
/// has and `fw` does not are deleted, the new ones added (a changed value
/// is a delete and an add). Rules and chains stay as they are.
fn elements_document(topology: &str, before: &FirewallRes, fw: &FirewallRes) -> Nftables<'static> {
    let table = super::table_name(topology);
    let mut batch = Batch::new();
    for (old, new) in before.maps.iter().zip(&fw.maps) {
        let gone: Vec<Expression<'static>> = old
            .elements
            .iter()
            .filter(|(k, v)| new.elements.get(*k) != Some(*v))
            .map(|(k, _)| concat(k))
            .collect();
        let added: Vec<Expression<'static>> = new
            .elements
            .iter()
            .filter(|(k, v)| old.elements.get(*k) != Some(*v))
            .map(|(k, v)| element(k, v, new.labels.get(k)))
            .collect();
        let of = |elem: Vec<Expression<'static>>| Element {
            family: NfFamily::INet,
            table: Cow::Owned(table.clone()),
            name: Cow::Owned(new.name.clone()),
            elem: Cow::Owned(elem),
        };
        if !gone.is_empty() {
            batch.delete(NfListObject::Element(of(gone)));
        }
        if !added.is_empty() {
            batch.add(NfListObject::Element(of(added)));
        }
    }
    batch.to_nftables()
}

/// A map of the inet table with its elements.
fn map_object(table: &str, m: &FwMap) -> Map<'static> {
    // One type is written as a string: nft 1.0.6 reads a map's value type
    // only that way.
    let types = |names: &[String]| {
        let parsed: Vec<SetType> = names.iter().filter_map(|n| n.parse().ok()).collect();
        match parsed.as_slice() {
            [one] => SetTypeValue::Single(*one),
            _ => SetTypeValue::Concatenated(Cow::Owned(parsed)),
        }
    };
    Map {
        family: NfFamily::INet,
        table: Cow::Owned(table.to_string()),
        name: Cow::Owned(m.name.clone()),
        handle: None,
        set_type: types(&m.key_type),
        map: types(&m.value_type),
        policy: None,
        flags: None,
        elem: Some(Cow::Owned(
            m.elements
                .iter()
                .map(|(k, v)| element(k, v, m.labels.get(k)))
                .collect(),
        )),
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    }
}

/// `KEY . PARTS [comment LABEL] : VALUE`, as nft's JSON writes a map
/// element (the comment within nft's 128-byte limit).
fn element(key: &[Atom], value: &[Atom], label: Option<&String>) -> Expression<'static> {
    let key = match label {
        Some(l) => Expression::Named(NamedExpression::Elem(Elem {
            val: Box::new(concat(key)),
            comment: Some(Cow::Owned(crate::model::cut(l, 120).to_string())),
            ..Elem::default()
        })),
        None => concat(key),
    };
    Expression::List(vec![key, concat(value)])
}

/// Parts joined with `.`; one part stands alone, as nft lists it.
/// An element as `nft -j list` shows it (the crate writes unset options
/// as null; nft lists none).
pub(super) fn listed_element(
    key: &[Atom],
    value: &[Atom],
    label: Option<&String>,
) -> serde_json::Value {
    let mut v = serde_json::to_value(element(key, value, label)).unwrap_or_default();
    if let Some(serde_json::Value::Object(elem)) = v.get_mut(0).and_then(|k| k.get_mut("elem")) {
        elem.retain(|_, x| !x.is_null());
    }
    v
}

fn concat(parts: &[Atom]) -> Expression<'static> {
    let one = |a: &Atom| match a {
        Atom::Num(n) => Expression::Number(*n),
        Atom::Text(t) => Expression::String(Cow::Owned(t.clone())),
    };
    match parts {
        [single] => one(single),
        _ => Expression::Named(NamedExpression::Concat(parts.iter().map(one).collect())),
    }
}

/// `ip` for the pseudo-chain naming `ip filter FORWARD`.
fn foreign_family(chain: &str) -> Option<&str> {
    chain.strip_prefix(super::FOREIGN_PREFIX)
}

/// Run one transaction.
pub fn apply(doc: &Nftables<'_>) -> Result<(), NftError> {
    nftables::helper::apply_ruleset(doc).map_err(|e| NftError::Nft(describe(e)))
}

pub(super) fn describe(e: nftables::helper::NftablesError) -> String {
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
