//! An endpoint's published ports, read back from the firewall's port maps
//! and rule labels.

use super::*;

/// (published, target, protocol) of a short-syntax port, host IP left out.
pub(super) fn shape(p: &str) -> Option<(String, String, String)> {
    let (spec, proto) = p.rsplit_once('/').unwrap_or((p, "tcp"));
    let mut parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    parts.reverse();
    let n = parts.len();
    (n >= 2).then(|| {
        (
            parts[n - 2].to_string(),
            parts[n - 1].to_string(),
            proto.to_string(),
        )
    })
}

/// The endpoint's published ports, from the port maps' elements whose
/// address is one of its addresses (the target from the paired port map), and from the labels of range rules
/// (`port HOST:P/PROTO → ENDPOINT ADDR:T`). A wildcard host IP is left out
/// when the rules cover every family of the endpoint (as the file would
/// have it), and kept when they cover one family only.
pub(super) fn ports_of(
    fw: &crate::model::FirewallRes,
    endpoint: &str,
    v: &EndpointRes,
) -> Vec<String> {
    let mut by_port: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for r in fw.rules.iter().filter(|r| r.chain == "prerouting") {
        if let Some((ep, host, published, target, proto)) = parse_port_label(&r.label) {
            if ep == endpoint {
                by_port
                    .entry((published, target, proto))
                    .or_default()
                    .insert(host);
            }
        }
    }
    let addrs: BTreeSet<String> = v.addrs.iter().map(|a| a.ip().to_string()).collect();
    for m in fw.maps.iter().filter(|m| m.name.ends_with("_addr")) {
        let v4 = m.value_type.first().is_some_and(|t| t == "ipv4_addr");
        let port_map = format!("{}_port", m.name.trim_end_matches("_addr"));
        let Some(targets) = fw.maps.iter().find(|p| p.name == port_map) else {
            continue;
        };
        for (key, value) in &m.elements {
            let ([.., proto, published], [addr], Some([target])) = (
                key.as_slice(),
                value.as_slice(),
                targets.elements.get(key).map(Vec::as_slice),
            ) else {
                continue;
            };
            if !addrs.contains(&addr.to_string()) {
                continue;
            }
            let host = match key.len() {
                3 => host_text(&key[0].to_string()),
                _ if v4 => "0.0.0.0".to_string(),
                _ => "[::]".to_string(),
            };
            by_port
                .entry((published.to_string(), target.to_string(), proto.to_string()))
                .or_default()
                .insert(host);
        }
    }
    let has_v4 = v.addrs.iter().any(|a| a.is_ipv4());
    let has_v6 = v.addrs.iter().any(|a| a.is_ipv6());
    let mut out = Vec::new();
    for ((published, target, proto), hosts) in by_port {
        let any4 = hosts.contains("0.0.0.0");
        let any6 = hosts.contains("[::]");
        let wildcard = (any4 || !has_v4) && (any6 || !has_v6) && (any4 || any6);
        if wildcard {
            out.push(format!("{published}:{target}/{proto}"));
        }
        for h in hosts {
            let is_wild = h == "0.0.0.0" || h == "[::]";
            if !(wildcard && is_wild) {
                out.push(format!("{h}:{published}:{target}/{proto}"));
            }
        }
    }
    out
}

/// `port HOST:P/PROTO → ENDPOINT ADDR:T[ (from the host)]` →
/// (endpoint, host, published, target, protocol).
/// A host address as port labels write it (IPv6 in brackets).
fn host_text(addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    }
}

fn parse_port_label(label: &str) -> Option<(String, String, String, String, String)> {
    let (left, right) = label.strip_prefix("port ")?.split_once(" → ")?;
    let (hostport, proto) = left.rsplit_once('/')?;
    let (host, published) = hostport.rsplit_once(':')?;
    let (ep, addrport) = right.split_once(' ')?;
    let (_, target) = addrport.rsplit_once(':')?;
    Some((
        ep.to_string(),
        host.to_string(),
        published.to_string(),
        target.to_string(),
        proto.to_string(),
    ))
}
