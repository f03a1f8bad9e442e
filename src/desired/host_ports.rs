//! Host ports cnm chooses (`ports: ["80"]`, Docker's `-p 80`): one per
//! such port, from the kernel's ephemeral range, kept stable through the
//! records. Pure: what is busy on the host is given.

use crate::topology::{PortMapping, Protocol, Topology};
use std::collections::{BTreeMap, BTreeSet};

/// What identifies a port to choose across applies: its endpoint,
/// protocol, container port and host address.
pub fn key(endpoint: &str, p: &PortMapping) -> String {
    let ip = p
        .host_ip
        .map_or_else(|| "*".to_string(), |ip| ip.to_string());
    format!("{endpoint}/{}/{}/{ip}", p.protocol.as_str(), p.target.0)
}

/// The ephemeral range (`net.ipv4.ip_local_port_range`), or the kernel's
/// default when it cannot be read.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .filter(|(a, b)| 0 < *a && a <= b)
        .unwrap_or((32768, 60999))
}

/// A topology with host ports chosen, and the choices by [`key`].
pub type Chosen = (Topology, BTreeMap<String, u16>);

/// `t` with a host port for each port that has none, and the ports chosen
/// by [`key`]; `None` when no port needs one. A recorded port is kept
/// unless the file now publishes it otherwise; a new one is the lowest of
/// `range` that the file, the other choices and `busy` (a listener, another
/// topology's port) leave free.
pub fn choose(
    t: &Topology,
    recorded: &BTreeMap<String, u16>,
    busy: &dyn Fn(Protocol, u16) -> bool,
    range: (u16, u16),
) -> Result<Option<Chosen>, String> {
    let wanted: Vec<(String, String, usize)> = t
        .endpoints
        .values()
        .flat_map(|e| {
            e.ports
                .iter()
                .enumerate()
                .filter(|(_, p)| p.ephemeral())
                .map(|(i, p)| (e.name.clone(), key(&e.name, p), i))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    // Host ports the file gives explicitly, by protocol.
    let mut taken: BTreeSet<(Protocol, u16)> = BTreeSet::new();
    for p in t.endpoints.values().flat_map(|e| &e.ports) {
        if !p.ephemeral() {
            taken.extend((p.published.0..=p.published.1).map(|n| (p.protocol, n)));
        }
    }
    let mut out = t.clone();
    out.by_sandbox = Default::default();
    let mut chosen = BTreeMap::new();
    // Recorded ones first, so a new port never takes a kept one.
    let mut order = wanted.clone();
    order.sort_by_key(|(_, k, _)| !recorded.contains_key(k));
    for (endpoint, k, i) in order {
        let p = &mut out
            .endpoints
            .get_mut(&endpoint)
            .ok_or_else(|| format!("endpoint {endpoint} vanished"))?
            .ports[i];
        let kept = recorded
            .get(&k)
            .copied()
            .filter(|n| *n != 0 && !taken.contains(&(p.protocol, *n)));
        let n = match kept {
            Some(n) => n,
            None => (range.0..=range.1)
                .find(|n| !taken.contains(&(p.protocol, *n)) && !busy(p.protocol, *n))
                .ok_or_else(|| {
                    format!(
                        "endpoint {endpoint}: no free host port left in the ephemeral range {}-{} for {}",
                        range.0, range.1, p
                    )
                })?,
        };
        taken.insert((p.protocol, n));
        p.published = (n, n);
        chosen.insert(k, n);
    }
    Ok(Some((out, chosen)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(ports: &[&str]) -> Topology {
        let list: Vec<String> = ports.iter().map(|p| format!("\"{p}\"")).collect();
        let text = format!(
            "version: 1\nname: t\nnetworks: {{ n: {{ subnet: 10.9.0.0/24 }} }}\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s, ports: [{}] }}\n",
            list.join(", ")
        );
        crate::spec::parse("t.yaml", &text).expect("valid")
    }

    #[test]
    fn lowest_free_then_kept() {
        let t = topo(&["80", "40000:81", "53/udp"]);
        let none = |_: Protocol, _: u16| false;
        let (out, chosen) = choose(&t, &BTreeMap::new(), &none, (40000, 40010))
            .unwrap()
            .unwrap();
        let shown: Vec<String> = out.endpoints["e"]
            .ports
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(shown, ["40001:80/tcp", "40000:81/tcp", "40000:53/udp"]);
        // Kept from the records even when a lower port is free now.
        let mut rec = chosen.clone();
        rec.insert(key("e", &t.endpoints["e"].ports[0]), 40007);
        let (out, _) = choose(&t, &rec, &none, (40000, 40010)).unwrap().unwrap();
        assert_eq!(out.endpoints["e"].ports[0].published, (40007, 40007));
        // Busy ports are skipped; an exhausted range is an error.
        let busy = |p: Protocol, n: u16| p == Protocol::Tcp && n < 40005;
        let (out, _) = choose(&t, &BTreeMap::new(), &busy, (40000, 40010))
            .unwrap()
            .unwrap();
        assert_eq!(out.endpoints["e"].ports[0].published, (40005, 40005));
        assert!(choose(&t, &BTreeMap::new(), &busy, (40000, 40004)).is_err());
    }

    #[test]
    fn nothing_to_choose() {
        let t = topo(&["8080:80"]);
        assert!(choose(&t, &BTreeMap::new(), &|_, _| false, (1, 2))
            .unwrap()
            .is_none());
    }
}
