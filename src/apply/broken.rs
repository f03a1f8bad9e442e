//! Endpoints the kernel shows but their driver's plugins call broken (a
//! CNI chain's CHECK): their observed `made_with` says so, and the plan
//! replaces them (the old attachment let go, a new one made).

use crate::drivers::{Learned, Registry};
use crate::model::Observed;
use crate::spec::Topology;
use std::collections::BTreeMap;

/// Ask each driver about its observed endpoints.
pub(super) async fn mark(
    reg: &Registry,
    t: &Topology,
    observed: &mut Observed,
    learned: &BTreeMap<String, Learned>,
) {
    let mut by_driver: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in observed.state.endpoints.values() {
        if let Some(net) = t.networks.get(&e.network) {
            by_driver
                .entry(net.driver.as_str())
                .or_default()
                .push(e.endpoint.clone());
        }
    }
    let mut found = Vec::new();
    for (driver, names) in by_driver {
        let Some(d) = reg.get(driver) else { continue };
        let endpoints = names
            .iter()
            .filter_map(|n| observed.state.endpoints.get(n))
            .map(|e| (e, learned.get(&e.endpoint).cloned().unwrap_or_default()))
            .collect();
        found.extend(d.broken(endpoints).await);
    }
    for (name, why) in found {
        if let Some(e) = observed.state.endpoints.get_mut(&name) {
            e.made_with = format!("{}: {why}", crate::model::BROKEN);
        }
    }
}
