//! What drivers whose endpoints hang off a host interface share (macvlan,
//! ipvlan): the `parent` option, one network per parent, the parent's
//! presence and MTU on this host, and the last steps of making a child
//! born inside its sandbox.

use super::{Kernel, Learned};
use crate::errors::ApplyError;
use crate::model::{EndpointRes, HostFacts};
use crate::naming::{self, valid_kernel_name, MarkKind};
use crate::netlink::{index_of, sync_addrs};
use crate::topology::{Diagnostics, Loc, Network};
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};

/// `options.parent`: an interface name, not the loopback (Docker refuses
/// it too). `None` (and an error) when it is not one.
pub fn parse(
    network: &str,
    v: &Spanned<serde_json::Value>,
    c: &mut Diagnostics,
) -> Option<(String, Loc)> {
    match v.value.as_str() {
        Some("lo") => c.err(
            v,
            format!("network {network}: options.parent cannot be the loopback interface"),
        ),
        Some(s) => match valid_kernel_name(s) {
            Ok(()) => return Some((s.to_string(), Loc::from(v))),
            Err(e) => c.err(v, format!("network {network}: options.parent '{s}' {e}")),
        },
        None => c.err(
            v,
            format!("network {network}: options.parent must be an interface name"),
        ),
    }
    None
}

/// A network without `options.parent`. Docker would make a dummy parent
/// and force the network internal; cnm makes no link the user did not
/// ask for.
pub fn missing(driver: &str, network: &str, at: Loc, c: &mut Diagnostics) {
    c.err(
        at,
        format!(
            "network {network}: {} {driver} network needs options.parent, the host interface its endpoints share",
            if driver.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
        ),
    );
}

/// Docker's rule: one network of a driver per parent (two would share a
/// segment while looking isolated). `parent_of`: a network's parent and
/// where the file names it.
pub fn one_network_each(
    driver: &str,
    nets: &[&Network],
    parent_of: impl Fn(&Network) -> Option<(&str, Loc)>,
    c: &mut Diagnostics,
) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for n in nets {
        let Some((parent, at)) = parent_of(n).filter(|(p, _)| !p.is_empty()) else {
            continue;
        };
        if let Some(first) = seen.insert(parent, &n.name) {
            c.err(
                at,
                format!(
                    "network {}: parent {parent} is already the parent of {driver} network {first}",
                    n.name
                ),
            );
        }
    }
}

/// The parent exists here, and the network's MTU fits in it.
pub fn check_host(
    net: &Network,
    parent: &str,
    at: Loc,
    facts: &HostFacts,
) -> Result<(), (Loc, String)> {
    let Some(&parent_mtu) = facts.link_mtu.get(parent) else {
        return Err((
            at,
            format!(
                "parent {parent} does not exist on this host (cnm does not create it: make the interface, a VLAN sub-interface included, first)"
            ),
        ));
    };
    match net.mtu {
        Some(m) if m > parent_mtu => Err((
            net.loc,
            format!("mtu {m} is larger than the MTU of parent {parent} ({parent_mtu})"),
        )),
        _ => Ok(()),
    }
}

/// A parent that is down (or has no carrier) passes nothing; cnm never
/// sets up a link it does not own, so it says so instead.
pub fn warnings(net: &Network, parent: &str, facts: &HostFacts) -> Vec<String> {
    if !facts.links_down.contains(parent) {
        return Vec::new();
    }
    vec![format!(
        "parent {parent} of network {n} is down; {n} passes no traffic until it is up",
        n = net.name
    )]
}

/// Children follow their parent's MTU unless the file sets one.
pub fn mtu(net: &Network, parent: &str, facts: &HostFacts) -> u32 {
    net.mtu
        .or_else(|| facts.link_mtu.get(parent).copied())
        .unwrap_or(super::DEFAULT_MTU)
}

/// A child just made inside its sandbox under the temporary name `tmp`:
/// marked, renamed, brought up and addressed there.
pub async fn finish(e: &EndpointRes, k: &dyn Kernel, tmp: &str) -> Result<Learned, ApplyError> {
    let what = format!("create endpoint {}", e.endpoint);
    let err = ApplyError::kernel(&what);
    let h = k.sandbox(&e.netns)?;
    let idx = index_of(&h, tmp).await.map_err(&err)?;
    let mark = naming::mark(k.topology(), MarkKind::Endpoint, &e.endpoint);
    h.link()
        .set(
            rtnetlink::LinkUnspec::new_with_index(idx)
                .alias(mark)
                .build(),
        )
        .execute()
        .await
        .map_err(&err)?;
    let mut rename = rtnetlink::LinkUnspec::new_with_index(idx).name(e.ifname.clone());
    if e.up {
        rename = rename.up();
    }
    h.link().set(rename.build()).execute().await.map_err(&err)?;
    sync_addrs(&h, idx, &BTreeSet::new(), &e.addrs)
        .await
        .map_err(&err)?;
    Ok(Learned::new())
}

/// The value of setting `key` of an endpoint.
pub fn setting<'a>(e: &'a EndpointRes, key: &str) -> Option<&'a str> {
    e.settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
