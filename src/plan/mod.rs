//! A plan is a value: ordered actions with what changes and why. It renders
//! as Terraform-like text or stable JSON, and `apply` executes exactly it.

use crate::model::{
    DnsRes, EndpointRes, FdbRes, FileRes, FirewallRes, LinkRes, NamespaceRes, NeighRes, PluginRes,
    ResolverRes, RouteRes, StrayKind, StrayRes, SysctlRes,
};
use crate::naming::MarkKind;
use serde::Serialize;

mod label;
mod render;

pub use crate::model::KNOWN_AFTER_APPLY;

/// What an action does to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Create the object.
    Create,
    /// Change it in place.
    Update,
    /// Delete it.
    Delete,
    /// Delete and create again (an immutable property differs).
    Replace,
}

/// One kernel object, with all its desired (or, for deletes, observed) values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Resource {
    /// A sandbox's network namespace.
    Namespace(NamespaceRes),
    /// A link of a network in the host (a bridge, a VXLAN device, ...).
    Link(LinkRes),
    /// An endpoint's interfaces.
    Endpoint(EndpointRes),
    /// A forwarding entry on a VXLAN device.
    Fdb(FdbRes),
    /// A neighbour entry on a VXLAN device.
    #[serde(rename = "neighbour")]
    Neigh(NeighRes),
    /// A route in a sandbox.
    Route(RouteRes),
    /// A file cnm writes (hosts, resolv.conf).
    File(FileRes),
    /// The topology's nftables tables.
    Firewall(FirewallRes),
    /// A host sysctl cnm needs.
    Sysctl(SysctlRes),
    /// A leftover of an interrupted apply; only ever deleted.
    Stray(StrayRes),
    /// An object held by a plugin (an IPAM pool or address, a network).
    Plugin(PluginRes),
    /// The embedded resolver serving the topology's sandboxes.
    Resolver(ResolverRes),
    /// A sandbox's redirect of 127.0.0.11:53 to the resolver's port.
    Dns(DnsRes),
}

impl Resource {
    /// Execution order of kinds when creating (reverse when deleting).
    pub fn rank(&self) -> u8 {
        match self {
            // An endpoint left at a plugin goes with the other endpoints,
            // before the plugin's network.
            Resource::Stray(StrayRes {
                what: StrayKind::Endpoint { .. },
            }) => 9,
            Resource::Stray(_) | Resource::Namespace(_) => 0,
            // Plugin objects before the kernel objects that use them (and
            // released after those are gone), in their own order.
            Resource::Plugin(p) => 1 + p.call as u8,
            Resource::Link(l) if l.role == MarkKind::Network => 6,
            Resource::Link(_) => 7,
            Resource::Sysctl(_) => 8,
            Resource::Endpoint(_) => 9,
            Resource::Fdb(_) => 10,
            Resource::Neigh(_) => 11,
            Resource::Route(_) => 12,
            Resource::Firewall(_) | Resource::Dns(_) => 13,
            Resource::File(_) => 14,
            // After the namespaces it listens in and the files naming it.
            Resource::Resolver(_) => 15,
        }
    }
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The field's name (`mtu`).
    pub field: String,
    /// The observed value, as text.
    pub old: String,
    /// The desired value, as text.
    pub new: String,
}

/// One step of a plan: what happens to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// What is done.
    pub op: Op,
    /// Desired values (observed ones for a delete).
    pub resource: Resource,
    /// Observed values, for updates and replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Resource>,
    /// The fields that differ, for updates and replaces.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Why a replace or delete happens, when it is not obvious.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How many objects a plan adds, changes and destroys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects created (a replace counts here and in `destroy`).
    pub add: usize,
    /// Objects changed in place.
    pub change: usize,
    /// Objects deleted.
    pub destroy: usize,
}

/// What apply does for one topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The version of the plan's JSON format (2).
    pub format_version: u32,
    /// The topology's name.
    pub topology: String,
    /// In execution order.
    pub actions: Vec<Action>,
    /// What the plan wants its reader to know besides the actions, each a
    /// sentence (`parent lan0 of network lan is down; …`): printed on
    /// standard error by plan and apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    /// No actions: the kernel matches the file.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Terraform's counting: a replace adds one and destroys one.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            add: 0,
            change: 0,
            destroy: 0,
        };
        for a in &self.actions {
            match a.op {
                Op::Create => s.add += 1,
                Op::Update => s.change += 1,
                Op::Delete => s.destroy += 1,
                Op::Replace => {
                    s.add += 1;
                    s.destroy += 1
                }
            }
        }
        s
    }

    /// Stable JSON (schema/plan.schema.json, described in the README).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            plan: &'a Plan,
            summary: Summary,
        }
        serde_json::to_string_pretty(&Out {
            plan: self,
            summary: self.summary(),
        })
        .unwrap_or_default()
    }
}

/// "1 map element", "13 map elements".
pub fn elements(n: usize) -> String {
    format!("{n} map element{}", if n == 1 { "" } else { "s" })
}

/// "1 rule", "13 rules".
pub fn rules(n: usize) -> String {
    format!("{n} rule{}", if n == 1 { "" } else { "s" })
}
