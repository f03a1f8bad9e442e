//! A sandbox's default routes: through the endpoint that says `gateway:
//! true`, else the first (by name) on a non-internal network that has a
//! gateway, to that network's gateway.

use crate::drivers::{Addressing, Gateway};
use crate::model::{EndpointRes, Family, RouteRes};
use crate::naming;
use crate::topology::{Endpoint, Topology};
use ipnetwork::IpNetwork;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The endpoint that carries a sandbox's default route: the one marked
/// `gateway: true`, else the first endpoint by name on a non-internal
/// network that has a gateway.
pub fn gateway_endpoint<'a>(t: &'a Topology, sandbox: &'a str) -> Option<&'a Endpoint> {
    let eligible = |e: &&Endpoint| {
        let n = &t.networks[&e.network];
        n.caps.gateway != Gateway::None && !n.internal
    };
    t.endpoints_of_sandbox(sandbox)
        .find(|e| e.gateway)
        .or_else(|| t.endpoints_of_sandbox(sandbox).find(eligible))
}

/// Learned keys by which a driver says which gateway its endpoint has
/// (empty: none), overriding its network's (a plugin's Join answer).
pub const LEARNED_GATEWAY: [&str; 2] = ["gateway", "gateway6"];

/// The sandbox's default routes. `theirs`: families whose default route in
/// a borrowed namespace goes through a link that is not cnm's: cnm never
/// replaces it.
pub(super) fn add_routes(
    t: &Topology,
    addressing: &BTreeMap<String, Addressing>,
    endpoints: &BTreeMap<String, EndpointRes>,
    learned: &BTreeMap<String, crate::drivers::Learned>,
    sandbox: &str,
    theirs: &std::collections::BTreeSet<u8>,
    out: &mut BTreeMap<(String, IpNetwork), RouteRes>,
) {
    let Some(ep) = gateway_endpoint(t, sandbox) else {
        return;
    };
    let (Some(a), Some(veth)) = (addressing.get(&ep.network), endpoints.get(&ep.name)) else {
        return;
    };
    let netns = naming::netns_name(&t.name, sandbox);
    let told = learned.get(&ep.name);
    let gateway = |key: &str, network: Option<IpAddr>| match told.and_then(|l| l.get(key)) {
        Some(g) => g.parse::<IpAddr>().ok(),
        None => network,
    };
    let gateways = [
        (
            Family::V4,
            gateway(LEARNED_GATEWAY[0], a.gateway_v4.map(|g| IpAddr::V4(g.ip()))),
        ),
        (
            Family::V6,
            gateway(LEARNED_GATEWAY[1], a.gateway_v6.map(|g| IpAddr::V6(g.ip()))),
        ),
    ];
    // No next hop: each family the endpoint has an address of goes out of
    // its interface.
    let on_device = t.networks[&ep.network].caps.gateway == Gateway::Device;
    let has = |f: Family| veth.addrs.iter().any(|a| a.is_ipv4() == (f == Family::V4));
    for (family, gw) in gateways {
        let taken = theirs.contains(&if family == Family::V4 { 4 } else { 6 });
        let next_hop = match (on_device, gw) {
            (true, _) => has(family).then_some(None),
            (false, gw) => gw.map(Some),
        };
        if let (Some(gateway), false) = (next_hop, taken) {
            let dst = crate::model::default_dst(family);
            out.insert(
                (sandbox.to_string(), dst),
                RouteRes {
                    sandbox: sandbox.to_string(),
                    netns: netns.clone(),
                    dst,
                    gateway,
                    dev: veth.ifname.clone(),
                },
            );
        }
    }
}
