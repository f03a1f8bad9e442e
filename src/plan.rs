//! A plan is a value: ordered actions with what changes and why. It renders
//! as Terraform-like text or stable JSON, and `apply` executes exactly it.

use crate::model::{
    fmt_mac, DnsRes, EndpointRes, FdbRes, FileRes, FirewallRes, LinkRes, NamespaceRes, NeighRes,
    PluginCall, PluginRes, ResolverRes, RouteRes, StrayKind, StrayRes, SysctlRes,
};
use crate::naming::MarkKind;
use serde::Serialize;
use std::fmt::Write as _;

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
    /// Human label, e.g. `bridge br-shop-front (network front)`.
    pub fn label(&self) -> String {
        match self {
            Resource::Namespace(n) => {
                let mut l = match &n.borrowed {
                    None => format!("sandbox {} (netns {})", n.sandbox, n.netns),
                    Some(b) => format!(
                        "sandbox {} (netns {}, borrowed from {})",
                        n.sandbox, n.netns, b.from
                    ),
                };
                if !n.sysctls.is_empty() {
                    let set: Vec<String> = n
                        .sysctls
                        .iter()
                        .map(|(k, v)| format!("{}={v}", k.replace('/', ".")))
                        .collect();
                    l.push_str(&format!(": sysctls {}", set.join(" ")));
                }
                l
            }
            Resource::Link(l) => {
                // The first setting names the link (a VXLAN device's VNI).
                let named = l
                    .settings
                    .first()
                    .map(|(k, v)| format!(", {k} {v}"))
                    .unwrap_or_default();
                format!("network {} ({} {}{named})", l.network, l.kind, l.ifname)
            }
            Resource::Endpoint(e) => {
                let ifname = if e.unknown.iter().any(|u| u == "ifname") {
                    KNOWN_AFTER_APPLY
                } else {
                    e.ifname.as_str()
                };
                match &e.host {
                    Some(h) => format!(
                        "endpoint {} ({} {ifname} ↔ {})",
                        e.endpoint, e.sandbox, h.ifname
                    ),
                    None => {
                        // A plugin's interface: its kind is known after Join.
                        let kind = if e.unknown.iter().any(|u| u == "kind") {
                            format!("{} interface", e.driver)
                        } else {
                            e.kind.clone()
                        };
                        format!("endpoint {} ({} {ifname}, {kind})", e.endpoint, e.sandbox)
                    }
                }
            }
            Resource::Fdb(f) if f.is_flood() => format!("fdb {}: flood → {}", f.dev, f.dst),
            Resource::Fdb(f) => format!("fdb {}: {} → {}", f.dev, fmt_mac(&f.mac), f.dst),
            Resource::Neigh(n) => format!("neighbour {}: {} → {}", n.dev, n.ip, fmt_mac(&n.mac)),
            Resource::Route(r) => {
                let dst = if r.is_default() {
                    "default".to_string()
                } else {
                    r.dst.to_string()
                };
                match r.gateway {
                    Some(gw) => format!("route {}: {dst} via {gw} dev {}", r.sandbox, r.dev),
                    None => format!("route {}: {dst} dev {}", r.sandbox, r.dev),
                }
            }
            Resource::File(f) => format!("file {}", f.path),
            Resource::Firewall(f) => format!("firewall table {}", f.table),
            Resource::Sysctl(s) => format!("sysctl {} = {}", s.key.replace('/', "."), s.value),
            Resource::Dns(d) => format!(
                "dns {}: {a}:53 → {a}:{}",
                d.sandbox,
                d.port,
                a = crate::model::RESOLVER_ADDRESS
            ),
            Resource::Resolver(r) => format!(
                "resolver {} in {} sandbox{}",
                crate::model::RESOLVER_ADDRESS,
                r.sandboxes,
                if r.sandboxes == 1 { "" } else { "es" }
            ),
            Resource::Plugin(p) => match p.call {
                PluginCall::Pool => format!("pool of network {} (ipam {})", p.network, p.plugin),
                PluginCall::Gateway => {
                    format!("gateway of network {} (ipam {})", p.network, p.plugin)
                }
                PluginCall::Network => format!("network {} (plugin {})", p.network, p.plugin),
                PluginCall::Node => format!(
                    "node {} (plugin {})",
                    p.request_str("Address").unwrap_or("?"),
                    p.plugin
                ),
                PluginCall::Address => {
                    format!("address of endpoint {} (ipam {})", p.endpoint, p.plugin)
                }
            },
            Resource::Stray(s) => match &s.what {
                StrayKind::Link { ifname, .. } => {
                    format!("leftover link {ifname} (an interrupted apply created it)")
                }
                StrayKind::Endpoint {
                    endpoint, driver, ..
                } => format!("leftover endpoint {endpoint} at {driver} (its interface is gone)"),
                StrayKind::Mountpoint { netns, .. } => format!(
                    "leftover mount point /run/netns/{netns} (an interrupted apply created it)"
                ),
            },
        }
    }

    /// A short description of a created object's main values.
    pub fn summary(&self) -> String {
        let addrs = |a: &std::collections::BTreeSet<ipnetwork::IpNetwork>| {
            a.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Resource::Namespace(_) => String::new(),
            Resource::Link(l) => {
                let mut parts = vec![if l.addrs.is_empty() {
                    "no address".to_string()
                } else {
                    addrs(&l.addrs)
                }];
                if !l.master.is_empty() {
                    parts.push(format!("on {}", l.master));
                }
                parts.push(format!("mtu {}", l.mtu));
                parts.extend(l.settings.iter().skip(1).map(|(k, v)| format!("{k} {v}")));
                parts.join(", ")
            }
            Resource::Endpoint(e) => {
                let mac = if e.unknown.iter().any(|u| u == "mac") {
                    KNOWN_AFTER_APPLY.to_string()
                } else {
                    e.mac
                        .map(|m| fmt_mac(&m))
                        .unwrap_or_else(|| "random".into())
                };
                let mut s = if e.unknown.iter().any(|u| u == "addrs") {
                    format!("addresses {KNOWN_AFTER_APPLY}")
                } else {
                    addrs(&e.addrs)
                };
                if let Some(h) = &e.host {
                    s = format!("{s} on {}", h.master);
                }
                let mut parts = vec![s, format!("mac {mac}"), format!("mtu {}", e.mtu)];
                parts.extend(e.settings.iter().map(|(k, v)| format!("{k} {v}")));
                parts.join(", ")
            }
            Resource::Fdb(_) | Resource::Neigh(_) => String::new(),
            Resource::Route(_) => String::new(),
            Resource::File(f) => format!("{} lines", f.content.lines().count()),
            Resource::Firewall(f) if f.maps.is_empty() => rules(f.rules.len()),
            Resource::Firewall(f) => {
                format!("{}, {}", rules(f.rules.len()), elements(f.elements()))
            }
            Resource::Sysctl(_) | Resource::Stray(_) => String::new(),
            Resource::Dns(_) => "udp, tcp".into(),
            Resource::Plugin(p) => plugin_summary(p),
            Resource::Resolver(r) => format!("{} names", r.names),
        }
    }

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

    /// Terraform-like text. `color` adds ANSI colours to the markers.
    pub fn render_text(&self, file: &str, color: bool) -> String {
        if self.actions.is_empty() {
            return format!("No changes. The kernel matches {file}.\n");
        }
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cnm will perform the following actions for topology {}:\n",
            self.topology
        );
        for a in &self.actions {
            let (sym, code) = match a.op {
                Op::Create => ("+", "32"),
                Op::Update => ("~", "33"),
                Op::Delete => ("-", "31"),
                Op::Replace => ("!", "35"),
            };
            let label = match (a.op, &a.before) {
                (Op::Delete, _) | (_, None) => a.resource.label(),
                (_, Some(b)) if b.label() != a.resource.label() && a.op == Op::Replace => {
                    format!("{} → {}", b.label(), a.resource.label())
                }
                _ => a.resource.label(),
            };
            let _ = write!(out, "  {} {}", paint(code, sym), label);
            let summary = a.resource.summary();
            if a.op == Op::Create && !summary.is_empty() {
                let _ = write!(out, ": {summary}");
            }
            if let Some(r) = &a.reason {
                let _ = write!(out, " ({r})");
            }
            out.push('\n');
            for c in &a.changes {
                let _ = writeln!(out, "      {}: {} → {}", c.field, c.old, c.new);
            }
            match (a.op, &a.resource, &a.before) {
                (Op::Update, Resource::File(new), Some(Resource::File(old))) => {
                    out.push_str(&content_diff(&old.content, &new.content, &paint));
                }
                (Op::Update, Resource::Firewall(new), Some(Resource::Firewall(old))) => {
                    for r in old.rules.iter().filter(|r| !new.rules.contains(r)) {
                        let _ = writeln!(out, "        {}", paint("31", &format!("- {}", r.label)));
                    }
                    for r in new.rules.iter().filter(|r| !old.rules.contains(r)) {
                        let _ = writeln!(out, "        {}", paint("32", &format!("+ {}", r.label)));
                    }
                    for (sign, color, line) in element_changes(old, new) {
                        let _ =
                            writeln!(out, "        {}", paint(color, &format!("{sign} {line}")));
                    }
                }
                (Op::Create, Resource::Firewall(new), _) => {
                    for r in &new.rules {
                        let _ = writeln!(out, "        {}", paint("32", &format!("+ {}", r.label)));
                    }
                    let empty = crate::model::FirewallRes {
                        maps: Vec::new(),
                        ..new.clone()
                    };
                    for (sign, color, line) in element_changes(&empty, new) {
                        let _ =
                            writeln!(out, "        {}", paint(color, &format!("{sign} {line}")));
                    }
                }
                _ => {}
            }
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "\nPlan: {} to add, {} to change, {} to destroy.",
            s.add, s.change, s.destroy
        );
        out
    }
}

/// Changed lines of a file, indented under its action.
fn content_diff(old: &str, new: &str, paint: &dyn Fn(&str, &str) -> String) -> String {
    let mut out = String::new();
    let diff = similar::TextDiff::from_lines(old, new);
    for change in diff.iter_all_changes() {
        let line = change.value().trim_end_matches('\n');
        match change.tag() {
            similar::ChangeTag::Delete => {
                let _ = writeln!(out, "        {}", paint("31", &format!("- {line}")));
            }
            similar::ChangeTag::Insert => {
                let _ = writeln!(out, "        {}", paint("32", &format!("+ {line}")));
            }
            similar::ChangeTag::Equal => {}
        }
    }
    out
}

/// Map elements `old` has and `new` does not ("-"), then the reverse
/// ("+"), by label; elements of one label (a port's address and port in two
/// maps) make one line.
fn element_changes(
    old: &crate::model::FirewallRes,
    new: &crate::model::FirewallRes,
) -> Vec<(&'static str, &'static str, String)> {
    let mut out: Vec<(&'static str, &'static str, String)> = Vec::new();
    let mut shown = std::collections::BTreeSet::new();
    let find =
        |f: &crate::model::FirewallRes, name: &str| f.maps.iter().find(|m| m.name == name).cloned();
    for (sign, color, from, to) in [("-", "31", old, new), ("+", "32", new, old)] {
        for m in &from.maps {
            let other = find(to, &m.name);
            for (k, v) in &m.elements {
                let line = m.describe(k, v);
                if other.as_ref().and_then(|o| o.elements.get(k)) != Some(v)
                    && shown.insert((sign, line.clone()))
                {
                    out.push((sign, color, line));
                }
            }
        }
    }
    out
}

/// "1 map element", "13 map elements".
pub fn elements(n: usize) -> String {
    format!("{n} map element{}", if n == 1 { "" } else { "s" })
}

/// "1 rule", "13 rules".
pub fn rules(n: usize) -> String {
    format!("{n} rule{}", if n == 1 { "" } else { "s" })
}

/// What a plugin object asks for, or what the plugin gave.
fn plugin_summary(p: &PluginRes) -> String {
    let shown = |v: Option<&str>, what: &str| match v {
        Some(v) => v.to_string(),
        None => format!("any {what}"),
    };
    match p.call {
        PluginCall::Pool => p
            .returned_str("Pool")
            .map(str::to_string)
            .unwrap_or_else(|| shown(p.request_str("Pool"), "pool")),
        PluginCall::Gateway | PluginCall::Address => p
            .returned_str("Address")
            .map(str::to_string)
            .unwrap_or_else(|| match p.request_str("Address") {
                Some(a) => a.to_string(),
                None => KNOWN_AFTER_APPLY.to_string(),
            }),
        PluginCall::Network => {
            let id: String = p
                .request_str("NetworkID")
                .unwrap_or("")
                .chars()
                .take(12)
                .collect();
            format!("id {id}")
        }
        PluginCall::Node => String::new(),
    }
}
