//! How plan names each object and sums up what a new one holds.

use super::{elements, rules, Resource, KNOWN_AFTER_APPLY};
use crate::model::{fmt_mac, EndpointRes, NamespaceRes, PluginCall, PluginRes, StrayKind};

impl Resource {
    /// Human label, e.g. `bridge br-shop-front (network front)`.
    pub fn label(&self) -> String {
        match self {
            Resource::Namespace(n) => namespace_label(n),
            Resource::Link(l) => {
                // The first setting names the link (a VXLAN device's VNI).
                let named = l
                    .settings
                    .first()
                    .map(|(k, v)| format!(", {k} {v}"))
                    .unwrap_or_default();
                format!("network {} ({} {}{named})", l.network, l.kind, l.ifname)
            }
            Resource::Endpoint(e) => endpoint_label(e),
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
            Resource::Plugin(p) => plugin_label(p),
            Resource::Stray(s) => stray_label(&s.what),
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
                        .unwrap_or_else(|| "from the kernel".into())
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
}

fn namespace_label(n: &NamespaceRes) -> String {
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

fn endpoint_label(e: &EndpointRes) -> String {
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

fn plugin_label(p: &PluginRes) -> String {
    match p.call {
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
    }
}

fn stray_label(what: &StrayKind) -> String {
    match what {
        StrayKind::Link { ifname, .. } => {
            format!("leftover link {ifname} (an interrupted apply created it)")
        }
        StrayKind::Endpoint {
            endpoint, driver, ..
        } => format!("leftover endpoint {endpoint} at {driver} (its interface is gone)"),
        StrayKind::Mountpoint { netns, .. } => {
            format!("leftover mount point /run/netns/{netns} (an interrupted apply created it)")
        }
    }
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
