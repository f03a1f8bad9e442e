//! The last listing, as observe made it, with the generation id and the
//! namespace it was read at. Regenerable: written without fsync, and any
//! doubt (unreadable, another id) means listing again.

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
