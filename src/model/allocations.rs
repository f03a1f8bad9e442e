//! What cnm allocated on earlier applies (from its records in /var/lib/cnm):
//! the kernel is the first word on what a network or endpoint has, these
//! are the second, when the kernel has lost the objects (a reboot), so that
//! re-creating them gives back the same subnets, addresses and `ethN`.

use super::State;
use crate::naming::MarkKind;
use ipnetwork::{IpNetwork, Ipv4Network};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What earlier applies allocated, as recorded: subnets, endpoints'
/// addresses and interface names, host ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocations {
    /// IPv4 subnet of each network (its link's, else its endpoints').
    #[serde(default)]
    pub subnets: BTreeMap<String, Ipv4Network>,
    /// What each endpoint was given, by endpoint name.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointAlloc>,
    /// Host ports cnm chose (`ports: ["80"]`), by
    /// [`crate::desired::host_ports::key`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u16>,
    /// The resolver's port in each sandbox (`resolver::redirect`), by
    /// sandbox: kept, so that a restart rewrites no rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dns_ports: BTreeMap<String, u16>,
}

/// What one endpoint was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAlloc {
    /// The network it joins.
    pub network: String,
    /// The namespace it lives in.
    pub netns: String,
    /// Its addresses with their prefix length (`10.88.0.2/24`).
    #[serde(default)]
    pub addrs: BTreeSet<IpNetwork>,
    /// Its interface name in the sandbox (`eth0`); empty when not known.
    #[serde(default)]
    pub ifname: String,
}

impl Allocations {
    /// What a desired state allocated.
    pub fn of(state: &State) -> Allocations {
        let mut a = Allocations::default();
        for l in state.links.values().filter(|l| l.role == MarkKind::Network) {
            let v4 = l.addrs.iter().find_map(|n| match n {
                IpNetwork::V4(v) => Ipv4Network::new(v.network(), v.prefix()).ok(),
                _ => None,
            });
            if let Some(s) = v4 {
                a.subnets.insert(l.network.clone(), s);
            }
        }
        for e in state.endpoints.values() {
            // A network without a link of its own (macvlan): its endpoints'.
            let v4 = e.addrs.iter().find_map(|n| match n {
                IpNetwork::V4(v) => Ipv4Network::new(v.network(), v.prefix()).ok(),
                _ => None,
            });
            if let Some(s) = v4 {
                a.subnets.entry(e.network.clone()).or_insert(s);
            }
            a.endpoints.insert(
                e.endpoint.clone(),
                EndpointAlloc {
                    network: e.network.clone(),
                    netns: e.netns.clone(),
                    addrs: e.addrs.clone(),
                    ifname: e.ifname.clone(),
                },
            );
        }
        a.dns_ports = state
            .dns
            .values()
            .map(|d| (d.sandbox.clone(), d.port))
            .collect();
        a
    }
}
