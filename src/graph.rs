//! `cnm graph`: a topology as a picture. Pure: a [`FileTopology`] (the file
//! with the addresses cnm would give, or what `show` observed) rendered as
//! Graphviz DOT or as a Mermaid flowchart. Sandboxes and networks are
//! nodes, endpoints the edges between them (interface, addresses, ports);
//! in a multi-host file each host's sandboxes sit in a box of their own.

use crate::desired;
use crate::model::{HostFacts, Observed};
use crate::spec::file::{FileEndpoint, FileNetwork, FileSandbox, FileTopology};
use crate::spec::Topology;
use std::fmt::Write as _;

/// The file's topology with the addresses cnm would allocate filled in
/// (one desired state per host of a multi-host file). An endpoint whose
/// address cnm cannot know without the kernel or a plugin keeps none.
pub fn desired_view(t: &Topology) -> FileTopology {
    let mut view = FileTopology::from_spec(t);
    let hosts: Vec<Option<String>> = if t.hosts.is_empty() {
        vec![None]
    } else {
        t.hosts.keys().cloned().map(Some).collect()
    };
    for host in hosts {
        let mut one = t.clone();
        if one.select_host(host.as_deref()).is_err() {
            continue;
        }
        let local_addrs = host
            .as_ref()
            .and_then(|h| t.hosts.get(h))
            .map(|h| (h.address, ("eth0".to_string(), 1500)))
            .into_iter()
            .collect();
        let obs = Observed {
            state: Default::default(),
            host: HostFacts {
                local_addrs,
                ..Default::default()
            },
        };
        let Ok(state) = desired::build(&one, &obs) else {
            continue;
        };
        for ep in state.endpoints.values() {
            let Some(f) = view.endpoints.get_mut(&ep.endpoint) else {
                continue;
            };
            for a in &ep.addrs {
                let slot = if a.is_ipv4() {
                    &mut f.address
                } else {
                    &mut f.ipv6_address
                };
                slot.get_or_insert_with(|| a.ip().to_string());
            }
        }
    }
    view
}

/// The sandboxes of `host`, or (`None`) those of no declared host.
fn on_host<'a>(
    t: &'a FileTopology,
    host: Option<&'a str>,
) -> impl Iterator<Item = (&'a String, &'a FileSandbox)> {
    t.sandboxes.iter().filter(move |(_, s)| match host {
        Some(h) => s.host.as_deref() == Some(h),
        None => s.host.as_ref().is_none_or(|h| !t.hosts.contains_key(h)),
    })
}

/// A quoted DOT string.
fn dot_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\u{22}');
    for c in s.chars() {
        match c {
            '\u{22}' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('\u{22}');
    out
}

/// What a network's node says: name, driver, subnets, internal.
fn network_label(name: &str, n: &FileNetwork) -> Vec<String> {
    let mut lines = vec![name.to_string()];
    let mut second = n
        .driver
        .clone()
        .unwrap_or_else(|| crate::topology::DEFAULT_DRIVER.into());
    if n.internal {
        second.push_str(", internal");
    }
    lines.push(second);
    lines.extend(n.subnet.clone());
    lines.extend(n.ipv6.as_ref().map(|v| v.subnet.clone()));
    lines
}

fn sandbox_label(name: &str, s: &FileSandbox) -> Vec<String> {
    let mut lines = vec![name.to_string()];
    match (&s.hostname, &s.domainname) {
        (Some(h), Some(d)) => lines.push(format!("{h}.{d}")),
        (Some(h), None) if h != name => lines.push(h.clone()),
        _ => {}
    }
    lines
}

fn endpoint_label(name: &str, e: &FileEndpoint) -> Vec<String> {
    let mut lines = vec![name.to_string()];
    lines.extend(e.address.clone());
    lines.extend(e.ipv6_address.clone());
    if !e.aliases.is_empty() {
        lines.push(format!("aliases {}", e.aliases.join(", ")));
    }
    lines.extend(e.ports.iter().map(|p| format!("port {p}")));
    lines
}

/// Graphviz DOT (`dot -Tsvg` draws it).
pub fn dot(t: &FileTopology) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "graph {} {{", dot_str(&t.name));
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, fontname=\"Helvetica\", label={}, labelloc=t];",
        dot_str(&format!("topology {}", t.name))
    );
    out.push_str("  node [fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (name, n) in &t.networks {
        let _ = writeln!(
            out,
            "  {} [shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\", label={}];",
            dot_str(&format!("network:{name}")),
            dot_str(&network_label(name, n).join("\n"))
        );
    }
    let sandbox_node = |name: &str, s: &FileSandbox, indent: &str| {
        format!(
            "{indent}{} [shape=box, style=filled, fillcolor=\"#fef3c7\", label={}];\n",
            dot_str(&format!("sandbox:{name}")),
            dot_str(&sandbox_label(name, s).join("\n"))
        )
    };
    for (host, h) in &t.hosts {
        let _ = writeln!(out, "  subgraph {} {{", dot_str(&format!("cluster_{host}")));
        let _ = writeln!(
            out,
            "    label={}; style=dashed;",
            dot_str(&format!("host {host} ({})", h.address))
        );
        for (name, s) in on_host(t, Some(host)) {
            out.push_str(&sandbox_node(name, s, "    "));
        }
        out.push_str("  }\n");
    }
    for (name, s) in on_host(t, None) {
        out.push_str(&sandbox_node(name, s, "  "));
    }
    for (name, e) in &t.endpoints {
        let _ = writeln!(
            out,
            "  {} -- {} [label={}];",
            dot_str(&format!("sandbox:{}", e.sandbox)),
            dot_str(&format!("network:{}", e.network)),
            dot_str(&endpoint_label(name, e).join("\n"))
        );
    }
    out.push_str("}\n");
    out
}

/// A Mermaid label: quoted, line breaks as `<br/>`, quotes as entities.
fn mermaid_str(lines: &[String]) -> String {
    let text = lines
        .iter()
        .map(|l| {
            l.replace('&', "&amp;")
                .replace('\u{22}', "#quot;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        })
        .collect::<Vec<_>>()
        .join("<br/>");
    format!("\"{text}\"")
}

/// A Mermaid flowchart (GitHub and many editors draw it).
pub fn mermaid(t: &FileTopology) -> String {
    // Mermaid node ids are plain words: number the objects.
    let net_id: std::collections::BTreeMap<&str, String> = t
        .networks
        .keys()
        .enumerate()
        .map(|(i, n)| (n.as_str(), format!("n{i}")))
        .collect();
    let sb_id: std::collections::BTreeMap<&str, String> = t
        .sandboxes
        .keys()
        .enumerate()
        .map(|(i, s)| (s.as_str(), format!("s{i}")))
        .collect();
    let mut out = String::from("flowchart LR\n");
    for (name, n) in &t.networks {
        let _ = writeln!(
            out,
            "  {}([{}])",
            net_id[name.as_str()],
            mermaid_str(&network_label(name, n))
        );
    }
    let sandbox = |name: &str, s: &FileSandbox, indent: &str| {
        format!(
            "{indent}{}[{}]\n",
            sb_id[name],
            mermaid_str(&sandbox_label(name, s))
        )
    };
    for (i, (host, h)) in t.hosts.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph h{i}[{}]",
            mermaid_str(&[format!("host {host} ({})", h.address)])
        );
        for (name, s) in on_host(t, Some(host)) {
            out.push_str(&sandbox(name, s, "    "));
        }
        out.push_str("  end\n");
    }
    for (name, s) in on_host(t, None) {
        out.push_str(&sandbox(name, s, "  "));
    }
    for (name, e) in &t.endpoints {
        let (Some(s), Some(n)) = (
            sb_id.get(e.sandbox.as_str()),
            net_id.get(e.network.as_str()),
        ) else {
            continue;
        };
        let _ = writeln!(
            out,
            "  {s} ---|{}| {n}",
            mermaid_str(&endpoint_label(name, e))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"version: 1
name: lab
networks:
  front: { subnet: 10.10.0.0/24 }
  back: { subnet: 10.20.0.0/24, internal: true }
sandboxes:
  web: { hostname: web, domainname: "shop.local" }
  db: {}
endpoints:
  web-front: { network: front, sandbox: web, ports: ["8080:80"], aliases: [www] }
  web-back: { network: back, sandbox: web }
  db-back: { network: back, sandbox: db, address: 10.20.0.5 }
"#;

    #[test]
    fn every_object_is_drawn_with_its_addresses() {
        let t = crate::spec::parse("lab.yaml", FILE).unwrap();
        let view = desired_view(&t);
        let d = dot(&view);
        for want in [
            "\"network:front\"",
            "\"network:back\"",
            "\"sandbox:web\"",
            "\"sandbox:db\"",
            "\"sandbox:web\" -- \"network:front\"",
            "10.10.0.2",
            "10.20.0.5",
            "port 8080:80/tcp",
            "aliases www",
            "web.shop.local",
            "bridge, internal",
        ] {
            assert!(d.contains(want), "{want} missing from\n{d}");
        }
        let m = mermaid(&view);
        assert!(m.starts_with("flowchart LR\n"), "{m}");
        assert!(m.contains("s1 ---|") && m.contains("| n0"), "{m}");
        assert!(m.contains("10.20.0.5"), "{m}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(dot_str("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(
            mermaid_str(&["<a \"b\">".into()]),
            "\"&lt;a #quot;b#quot;&gt;\""
        );
    }
}
