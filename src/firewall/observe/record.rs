//! After an apply: the fingerprint and the kept listing, recorded.

use super::fingerprint::{element_hash, fingerprint};
use super::{kept, listing_of, nft_json, seen_of};
use crate::firewall::nft::NftError;
use crate::model::FirewallRes;
use crate::store::TopologyStore;

/// After an apply: remember what the tables look like, so drift in rule
/// bodies (not only in labels) shows up later.
/// The same listing is kept for observe (verify, next plan), which then
/// need not list again while nothing changes.
pub fn record(store: &TopologyStore) -> Result<(), NftError> {
    let key = crate::firewall::generation::current().zip(crate::firewall::generation::netns_ino());
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
        crate::firewall::generation::current().zip(crate::firewall::generation::netns_ino())
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
                let listed = crate::firewall::nft::listed_element(k, v, old.labels.get(k));
                sum = sum.wrapping_sub(element_hash(&old.name, &listed));
            }
        }
        for (k, v) in &new.elements {
            if old.elements.get(k) != Some(v) {
                let listed = crate::firewall::nft::listed_element(k, v, new.labels.get(k));
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
