//! Raw file → [`Topology`], or every problem found, each with its location.

use super::names::{is_hostname, valid_identifier, valid_kernel_name};
use super::ports::parse_port;
use super::raw::*;
use super::*;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Longest topology name: it prefixes namespace names and marks.
const MAX_TOPOLOGY_NAME: usize = 32;
/// Longest network, sandbox or endpoint name.
const MAX_OBJECT_NAME: usize = 64;

struct Checker {
    diags: Vec<Diagnostic>,
}

impl Checker {
    fn err(&mut self, loc: impl Into<Loc>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            loc: loc.into(),
            message: message.into(),
        });
    }

    fn parse<T: std::str::FromStr>(&mut self, s: &Spanned<String>, what: &str) -> Option<T> {
        match s.value.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(s, format!("{what}: '{}' is not valid", s.value));
                None
            }
        }
    }
}

impl<T> From<&Spanned<T>> for Diagnostic {
    fn from(s: &Spanned<T>) -> Self {
        Diagnostic {
            loc: s.into(),
            message: String::new(),
        }
    }
}

pub fn validate(file: &str, raw: RawTopology) -> Result<Topology, SpecError> {
    let mut c = Checker { diags: Vec::new() };

    if raw.version.value != 1 {
        c.err(
            &raw.version,
            format!(
                "version: {} is not supported; this cnm reads version 1",
                raw.version.value
            ),
        );
    }
    if let Err(e) = valid_identifier(&raw.name.value, MAX_TOPOLOGY_NAME) {
        c.err(
            &raw.name,
            format!("name: topology name '{}' {e}", raw.name.value),
        );
    }
    check_sizes(&mut c, &raw);
    let hosts = check_hosts(&mut c, &raw.hosts);
    let networks = check_networks(&mut c, &raw.name.value, &raw.networks, &hosts);
    let sandboxes = check_sandboxes(&mut c, &raw.sandboxes, &hosts);
    let endpoints = check_endpoints(&mut c, &raw.endpoints, &networks, &sandboxes);

    let topo = Topology {
        file: file.to_string(),
        name: raw.name.value.clone(),
        hosts,
        this_host: None,
        networks,
        sandboxes,
        endpoints,
        source: None,
    };
    check_cross(&mut c, &topo, &raw.endpoints);

    if c.diags.is_empty() {
        Ok(topo)
    } else {
        c.diags.sort();
        c.diags.dedup();
        Err(SpecError {
            file: file.to_string(),
            diagnostics: c.diags,
        })
    }
}

/// Bounds on every list of the file, so no input makes cnm work without
/// end: generous for real topologies (10,000 endpoints and far more).
pub mod limits {
    pub const HOSTS: usize = 1_000;
    pub const NETWORKS: usize = 10_000;
    pub const SANDBOXES: usize = 100_000;
    pub const ENDPOINTS: usize = 100_000;
    pub const ALIASES: usize = 64;
    pub const PORTS: usize = 1_024;
    pub const DNS_SERVERS: usize = 16;
    pub const DNS_SEARCH: usize = 32;
    pub const DNS_OPTIONS: usize = 32;
}

fn too_many<T>(c: &mut Checker, items: &[Spanned<T>], max: usize, what: &str) {
    if let Some(extra) = items.get(max) {
        c.err(
            extra,
            format!("{what}: more than {max}, the most cnm accepts"),
        );
    }
}

fn check_sizes(c: &mut Checker, raw: &RawTopology) {
    for (len, first_extra, max, what) in [
        (
            raw.hosts.len(),
            raw.hosts.values().nth(limits::HOSTS).map(Loc::from),
            limits::HOSTS,
            "hosts",
        ),
        (
            raw.networks.len(),
            raw.networks.values().nth(limits::NETWORKS).map(Loc::from),
            limits::NETWORKS,
            "networks",
        ),
        (
            raw.sandboxes.len(),
            raw.sandboxes.values().nth(limits::SANDBOXES).map(Loc::from),
            limits::SANDBOXES,
            "sandboxes",
        ),
        (
            raw.endpoints.len(),
            raw.endpoints.values().nth(limits::ENDPOINTS).map(Loc::from),
            limits::ENDPOINTS,
            "endpoints",
        ),
    ] {
        if len > max {
            c.err(
                first_extra.unwrap_or_default(),
                format!("{what}: {len} of them, more than {max}, the most cnm accepts"),
            );
        }
    }
    for (name, e) in &raw.endpoints {
        if let Some(e) = &e.value {
            too_many(
                c,
                &e.aliases,
                limits::ALIASES,
                &format!("endpoint {name}: aliases"),
            );
            too_many(
                c,
                &e.ports,
                limits::PORTS,
                &format!("endpoint {name}: ports"),
            );
        }
    }
    for (name, s) in &raw.sandboxes {
        if let Some(d) = s.value.as_ref().and_then(|s| s.dns.as_ref()) {
            too_many(
                c,
                &d.value.servers,
                limits::DNS_SERVERS,
                &format!("sandbox {name}: dns servers"),
            );
            too_many(
                c,
                &d.value.search,
                limits::DNS_SEARCH,
                &format!("sandbox {name}: dns search"),
            );
            too_many(
                c,
                &d.value.options,
                limits::DNS_OPTIONS,
                &format!("sandbox {name}: dns options"),
            );
        }
    }
}

/// `hosts:`: names, underlay addresses (unique, one address family).
fn check_hosts(c: &mut Checker, raw: &Map<Option<RawHost>>) -> BTreeMap<String, Host> {
    let mut out: BTreeMap<String, Host> = BTreeMap::new();
    for (name, spanned) in raw {
        if let Err(e) = valid_identifier(name, MAX_OBJECT_NAME) {
            c.err(spanned, format!("host '{name}': name {e}"));
            continue;
        }
        let Some(h) = &spanned.value else {
            c.err(
                spanned,
                format!("host {name}: needs an address: {{ address: 192.0.2.10 }}"),
            );
            continue;
        };
        let Some(address) = c.parse::<IpAddr>(&h.address, &format!("host {name}: address")) else {
            continue;
        };
        if address.is_unspecified() || address.is_loopback() || address.is_multicast() {
            c.err(
                &h.address,
                format!("host {name}: address {address} cannot be a VXLAN endpoint; give the machine's underlay address"),
            );
            continue;
        }
        if let Some(other) = out.values().find(|o| o.address == address) {
            c.err(
                &h.address,
                format!(
                    "host {name}: address {address} is also the address of host {}",
                    other.name
                ),
            );
            continue;
        }
        if let Some(other) = out
            .values()
            .find(|o| o.address.is_ipv4() != address.is_ipv4())
        {
            c.err(
                &h.address,
                format!(
                    "host {name}: address {address} is not of the same IP family as host {}'s {}; VXLAN needs one underlay family",
                    other.name, other.address
                ),
            );
            continue;
        }
        out.insert(
            name.clone(),
            Host {
                name: name.clone(),
                loc: spanned.into(),
                address,
            },
        );
    }
    out
}

fn check_networks(
    c: &mut Checker,
    topology: &str,
    raw: &Map<Option<RawNetwork>>,
    hosts: &BTreeMap<String, Host>,
) -> BTreeMap<String, Network> {
    let mut out = BTreeMap::new();
    for (name, spanned) in raw {
        if let Err(e) = valid_identifier(name, MAX_OBJECT_NAME) {
            c.err(spanned, format!("network '{name}': name {e}"));
            continue;
        }
        let empty = RawNetwork::default();
        let n = spanned.value.as_ref().unwrap_or(&empty);
        let loc = Loc::from(spanned);
        if let Some(d) = n.driver.as_ref().filter(|d| d.value.is_none()) {
            c.err(
                d,
                format!("network {name}: driver is YAML's null here; write driver: \"null\" (quoted) for Docker's null driver, or leave driver out for bridge"),
            );
            continue;
        }
        let driver_name = n
            .driver
            .as_ref()
            .and_then(|d| d.value.as_deref())
            .unwrap_or("bridge");
        let driver_loc = n.driver.as_ref().map(Loc::from).unwrap_or(loc);
        let driver = match driver_name {
            "bridge" => DriverKind::Bridge,
            "null" => DriverKind::Null,
            "host" => DriverKind::Host,
            "overlay" => DriverKind::Overlay,
            other => {
                // Any other driver may be a plugin: plan decides. The name
                // becomes part of plugin paths, so it passes the name check.
                if let Err(e) = valid_identifier(other, MAX_OBJECT_NAME) {
                    c.err(
                        driver_loc,
                        format!("network {name}: driver name '{}' {e}", other.escape_debug()),
                    );
                    continue;
                }
                DriverKind::Plugin
            }
        };
        let mut net = Network {
            name: name.clone(),
            loc,
            driver,
            driver_name: driver_name.to_string(),
            driver_loc,
            subnet: None,
            gateway: None,
            ip_range: None,
            ipv6: None,
            internal: n.internal.as_ref().map(|b| b.value).unwrap_or(false),
            mtu: n.mtu.as_ref().map(|m| m.value),
            bridge_name: None,
            icc: true,
            vni: None,
            vni_explicit: false,
            options: BTreeMap::new(),
        };
        if driver == DriverKind::Overlay {
            check_overlay(c, topology, name, n, hosts, &mut net);
            out.insert(name.clone(), net);
            continue;
        }
        if driver == DriverKind::Plugin {
            // Addressing as for bridge (cnm's IPAM); options are the driver's.
            check_addressing(c, name, n, &mut net);
            net.options = n
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect();
            out.insert(name.clone(), net);
            continue;
        }
        if driver != DriverKind::Bridge {
            // null and host networks have no addressing of their own.
            let extra: [(&str, Option<Loc>); 7] = [
                ("subnet", n.subnet.as_ref().map(Loc::from)),
                ("gateway", n.gateway.as_ref().map(Loc::from)),
                ("ip_range", n.ip_range.as_ref().map(Loc::from)),
                ("ipv6", n.ipv6.as_ref().map(Loc::from)),
                ("internal", n.internal.as_ref().map(Loc::from)),
                ("mtu", n.mtu.as_ref().map(Loc::from)),
                ("options", n.options.values().next().map(Loc::from)),
            ];
            for (key, at) in extra {
                if let Some(at) = at {
                    c.err(
                        at,
                        format!(
                            "network {name}: {key} does not apply to driver {}",
                            driver.as_str()
                        ),
                    );
                }
            }
            out.insert(name.clone(), net);
            continue;
        }
        check_addressing(c, name, n, &mut net);
        for (key, v) in &n.options {
            match key.as_str() {
                "bridge_name" => match v.value.as_str() {
                    Some(s) => match valid_kernel_name(s) {
                        Ok(()) => net.bridge_name = Some(s.to_string()),
                        Err(e) => {
                            c.err(v, format!("network {name}: options.bridge_name '{s}' {e}"))
                        }
                    },
                    None => c.err(
                        v,
                        format!("network {name}: options.bridge_name must be a string"),
                    ),
                },
                "icc" => match v.value.as_bool() {
                    Some(b) => net.icc = b,
                    None => c.err(
                        v,
                        format!("network {name}: options.icc must be true or false"),
                    ),
                },
                other => c.err(
                    v,
                    format!(
                        "network {name}: unknown bridge option '{other}' (known: bridge_name, icc)"
                    ),
                ),
            }
        }
        out.insert(name.clone(), net);
    }
    out
}

/// An overlay network: an explicit subnet (every host must derive the same
/// addresses without asking the others), no gateway (it carries traffic
/// between its sandboxes only), `options.vni`.
fn check_overlay(
    c: &mut Checker,
    topology: &str,
    name: &str,
    n: &RawNetwork,
    hosts: &BTreeMap<String, Host>,
    net: &mut Network,
) {
    let driver_loc = n.driver.as_ref().map(Loc::from).unwrap_or(net.loc);
    if hosts.is_empty() {
        c.err(
            driver_loc,
            format!("network {name}: driver overlay spans machines; declare them under hosts: (name: {{ address: <underlay IP> }})"),
        );
    }
    if n.subnet.is_none() {
        c.err(
            driver_loc,
            format!("network {name}: an overlay network needs an explicit subnet: every host derives the same addresses from it"),
        );
    }
    for (key, at) in [
        ("gateway", n.gateway.as_ref().map(Loc::from)),
        (
            "ipv6 gateway",
            n.ipv6
                .as_ref()
                .and_then(|v| v.value.gateway.as_ref().map(Loc::from)),
        ),
        ("internal", n.internal.as_ref().map(Loc::from)),
    ] {
        if let Some(at) = at {
            c.err(at, format!("network {name}: {key} does not apply to an overlay network: it carries traffic between its sandboxes only; give a sandbox a bridge endpoint to reach outside"));
        }
    }
    check_addressing(c, name, n, net);
    net.gateway = None;
    for (key, v) in &n.options {
        match key.as_str() {
            "vni" => match v.value.as_u64() {
                Some(x) if (1..(1 << 24)).contains(&x) => {
                    net.vni = Some(x as u32);
                    net.vni_explicit = true;
                }
                _ => c.err(
                    v,
                    format!("network {name}: options.vni must be an integer in 1..16777215"),
                ),
            },
            other => c.err(
                v,
                format!("network {name}: unknown overlay option '{other}' (known: vni)"),
            ),
        }
    }
    if net.vni.is_none() && !n.options.contains_key("vni") {
        net.vni = Some(derived_vni(topology, name));
    }
}

/// Subnets (both families) and MTU: what bridge and overlay networks share.
fn check_addressing(c: &mut Checker, name: &str, n: &RawNetwork, net: &mut Network) {
    check_ipv4(c, name, n, net);
    if let Some(v6) = &n.ipv6 {
        net.ipv6 = check_ipv6(c, name, &v6.value);
    }
    if let Some(m) = &n.mtu {
        if !(68..=65535).contains(&m.value) {
            c.err(
                m,
                format!("network {name}: mtu {} is outside 68..65535", m.value),
            );
        }
    }
}

fn check_ipv4(c: &mut Checker, name: &str, n: &RawNetwork, net: &mut Network) {
    if let Some(s) = &n.subnet {
        match s.value.parse::<ipnetwork::IpNetwork>() {
            Ok(ipnetwork::IpNetwork::V4(v4)) => {
                if v4.ip() != v4.network() {
                    c.err(s, format!("network {name}: subnet {v4} has host bits set; did you mean {}/{}?", v4.network(), v4.prefix()));
                } else if v4.prefix() > 30 {
                    c.err(s, format!("network {name}: subnet {v4} is too small; use a /30 or larger"));
                } else if let Some(why) = reserved_v4(v4) {
                    c.err(s, format!("network {name}: subnet {v4} {why}; a container network needs ordinary unicast addresses (for example from 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)"));
                } else {
                    net.subnet = Some(v4);
                }
            }
            Ok(ipnetwork::IpNetwork::V6(_)) => {
                c.err(s, format!("network {name}: subnet takes an IPv4 network; put IPv6 under ipv6: {{ subnet: ... }}"))
            }
            Err(_) => c.err(s, format!("network {name}: subnet '{}' is not a CIDR network like 10.0.0.0/24", s.value)),
        }
    }
    if let Some(g) = n
        .gateway
        .as_ref()
        .filter(|_| net.driver != DriverKind::Overlay)
    {
        if let Some(ip) = c.parse::<Ipv4Addr>(g, &format!("network {name}: gateway")) {
            match net.subnet {
                Some(sub) => match host_problem(
                    sub.network().into(),
                    sub.broadcast().into(),
                    sub.contains(ip),
                    ip.into(),
                ) {
                    Some(p) => c.err(g, format!("network {name}: gateway {ip} {p} {sub}")),
                    None => net.gateway = Some(ip),
                },
                None if n.subnet.is_none() => c.err(
                    g,
                    format!("network {name}: gateway needs an explicit subnet"),
                ),
                None => {}
            }
        }
    }
    if let Some(r) = &n.ip_range {
        if let Some(range) = c.parse::<Ipv4Network>(r, &format!("network {name}: ip_range")) {
            match net.subnet {
                Some(sub)
                    if !(sub.contains(range.network()) && sub.contains(range.broadcast())) =>
                {
                    c.err(
                        r,
                        format!("network {name}: ip_range {range} is not inside subnet {sub}"),
                    )
                }
                Some(_) => {
                    net.ip_range =
                        Some(Ipv4Network::new(range.network(), range.prefix()).unwrap_or(range))
                }
                None if n.subnet.is_none() => c.err(
                    r,
                    format!("network {name}: ip_range needs an explicit subnet"),
                ),
                None => {}
            }
        }
    }
}

fn check_ipv6(c: &mut Checker, name: &str, v6: &RawIpv6) -> Option<Ipv6Config> {
    let subnet = match v6.subnet.value.parse::<ipnetwork::IpNetwork>() {
        Ok(ipnetwork::IpNetwork::V6(s)) if s.ip() != s.network() => {
            c.err(
                &v6.subnet,
                format!(
                    "network {name}: ipv6 subnet {s} has host bits set; did you mean {}/{}?",
                    s.network(),
                    s.prefix()
                ),
            );
            return None;
        }
        Ok(ipnetwork::IpNetwork::V6(s)) if reserved_v6(s).is_some() => {
            c.err(
                &v6.subnet,
                format!(
                    "network {name}: ipv6 subnet {s} {}; a container network needs ordinary unicast addresses (for example from fd00::/8)",
                    reserved_v6(s).unwrap_or_default()
                ),
            );
            return None;
        }
        Ok(ipnetwork::IpNetwork::V6(s)) if s.prefix() > 126 => {
            c.err(
                &v6.subnet,
                format!("network {name}: ipv6 subnet {s} is too small; use a /126 or larger"),
            );
            return None;
        }
        Ok(ipnetwork::IpNetwork::V6(s)) => s,
        _ => {
            c.err(
                &v6.subnet,
                format!(
                    "network {name}: ipv6 subnet '{}' is not an IPv6 CIDR network like fd00::/64",
                    v6.subnet.value
                ),
            );
            return None;
        }
    };
    let mut cfg = Ipv6Config {
        subnet,
        gateway: None,
        ip_range: None,
    };
    if let Some(g) = &v6.gateway {
        if let Some(ip) = c.parse::<Ipv6Addr>(g, &format!("network {name}: ipv6 gateway")) {
            match host_problem(
                subnet.network().into(),
                IpAddr::V6(subnet.broadcast()),
                subnet.contains(ip),
                ip.into(),
            ) {
                Some(p) => c.err(g, format!("network {name}: ipv6 gateway {ip} {p} {subnet}")),
                None => cfg.gateway = Some(ip),
            }
        }
    }
    if let Some(r) = &v6.ip_range {
        if let Some(range) = c.parse::<Ipv6Network>(r, &format!("network {name}: ipv6 ip_range")) {
            if subnet.contains(range.network()) && subnet.contains(range.broadcast()) {
                cfg.ip_range =
                    Some(Ipv6Network::new(range.network(), range.prefix()).unwrap_or(range));
            } else {
                c.err(
                    r,
                    format!("network {name}: ipv6 ip_range {range} is not inside subnet {subnet}"),
                );
            }
        }
    }
    Some(cfg)
}

/// Why an IPv4 subnet cannot carry a container network, if it cannot.
fn reserved_v4(n: Ipv4Network) -> Option<&'static str> {
    let overlaps = |r: &str| {
        let r: Ipv4Network = r.parse().ok()?;
        (r.contains(n.network()) || n.contains(r.network())).then_some(())
    };
    [
        ("0.0.0.0/8", "covers the unspecified address 0.0.0.0"),
        ("127.0.0.0/8", "is in the loopback range 127.0.0.0/8"),
        (
            "169.254.0.0/16",
            "is in the link-local range 169.254.0.0/16",
        ),
        ("224.0.0.0/4", "is in the multicast range 224.0.0.0/4"),
        ("240.0.0.0/4", "is in the reserved range 240.0.0.0/4"),
    ]
    .into_iter()
    .find_map(|(r, why)| overlaps(r).map(|()| why))
}

/// Why an IPv6 subnet cannot carry a container network, if it cannot.
fn reserved_v6(n: Ipv6Network) -> Option<&'static str> {
    let overlaps = |r: &str| {
        let r: Ipv6Network = r.parse().ok()?;
        (r.contains(n.network()) || n.contains(r.network())).then_some(())
    };
    [
        ("::/128", "covers the unspecified address ::"),
        ("::1/128", "covers the loopback address ::1"),
        ("fe80::/10", "is in the link-local range fe80::/10"),
        ("ff00::/8", "is in the multicast range ff00::/8"),
    ]
    .into_iter()
    .find_map(|(r, why)| overlaps(r).map(|()| why))
}

/// Why `ip` cannot be a host address in its subnet, phrased to be followed by
/// the subnet: "is outside subnet", "is the network address of".
fn host_problem(
    network: IpAddr,
    broadcast: IpAddr,
    inside: bool,
    ip: IpAddr,
) -> Option<&'static str> {
    if !inside {
        Some("is outside subnet")
    } else if ip == network {
        Some("is the network address of")
    } else if ip == broadcast && ip.is_ipv4() {
        Some("is the broadcast address of")
    } else {
        None
    }
}

fn check_sandboxes(
    c: &mut Checker,
    raw: &Map<Option<RawSandbox>>,
    hosts: &BTreeMap<String, Host>,
) -> BTreeMap<String, Sandbox> {
    let mut out = BTreeMap::new();
    for (name, spanned) in raw {
        if let Err(e) = valid_identifier(name, MAX_OBJECT_NAME) {
            c.err(spanned, format!("sandbox '{name}': name {e}"));
            continue;
        }
        let empty = RawSandbox::default();
        let s = spanned.value.as_ref().unwrap_or(&empty);
        let mut sb = Sandbox {
            name: name.clone(),
            loc: spanned.into(),
            hostname: None,
            domainname: None,
            dns: None,
            host: None,
        };
        match &s.host {
            Some(h) if hosts.contains_key(&h.value) => sb.host = Some(h.value.clone()),
            Some(h) if hosts.is_empty() => c.err(
                h,
                format!(
                    "sandbox {name}: host '{}' is not defined; the file declares no hosts:",
                    h.value
                ),
            ),
            Some(h) => c.err(
                h,
                format!(
                    "sandbox {name}: host '{}' is not defined{}",
                    h.value,
                    known(hosts.keys())
                ),
            ),
            None if !hosts.is_empty() => c.err(
                spanned,
                format!(
                    "sandbox {name}: needs host: (one of {}): the file declares hosts, so every sandbox names the machine that runs it",
                    hosts.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ),
            None => {}
        }
        for (key, field, slot) in [
            ("hostname", &s.hostname, &mut sb.hostname),
            ("domainname", &s.domainname, &mut sb.domainname),
        ] {
            if let Some(v) = field {
                match is_hostname(&v.value) {
                    Ok(()) => *slot = Some(v.value.clone()),
                    Err(e) => c.err(
                        v,
                        format!("sandbox {name}: {key} '{}' {e}", v.value.escape_debug()),
                    ),
                }
            }
        }
        if let Some(d) = &s.dns {
            let mut dns = Dns::default();
            for srv in &d.value.servers {
                if let Some(ip) = c.parse::<IpAddr>(srv, &format!("sandbox {name}: dns server")) {
                    dns.servers.push(ip);
                }
            }
            for dom in &d.value.search {
                match is_hostname(&dom.value) {
                    Ok(()) => dns.search.push(dom.value.clone()),
                    Err(e) => c.err(
                        dom,
                        format!(
                            "sandbox {name}: dns search domain '{}' {e}",
                            dom.value.escape_debug()
                        ),
                    ),
                }
            }
            for opt in &d.value.options {
                let ok = !opt.value.is_empty()
                    && opt.value.chars().all(|ch| {
                        ch.is_ascii_alphanumeric() || matches!(ch, ':' | '_' | '-' | '.')
                    });
                if ok {
                    dns.options.push(opt.value.clone());
                } else {
                    c.err(opt, format!("sandbox {name}: dns option '{}' is not a resolv.conf option like ndots:2", opt.value.escape_debug()));
                }
            }
            sb.dns = Some(dns);
        }
        out.insert(name.clone(), sb);
    }
    out
}

fn check_endpoints(
    c: &mut Checker,
    raw: &Map<Option<RawEndpoint>>,
    networks: &BTreeMap<String, Network>,
    sandboxes: &BTreeMap<String, Sandbox>,
) -> BTreeMap<String, Endpoint> {
    let mut out = BTreeMap::new();
    for (name, spanned) in raw {
        if let Err(e) = valid_identifier(name, MAX_OBJECT_NAME) {
            c.err(spanned, format!("endpoint '{name}': name {e}"));
            continue;
        }
        let Some(e) = &spanned.value else {
            c.err(
                spanned,
                format!("endpoint {name}: needs network: and sandbox:"),
            );
            continue;
        };
        let net = networks.get(&e.network.value);
        if net.is_none() {
            c.err(
                &e.network,
                format!(
                    "endpoint {name}: network '{}' is not defined{}",
                    e.network.value,
                    known(networks.keys())
                ),
            );
        }
        if !sandboxes.contains_key(&e.sandbox.value) {
            c.err(
                &e.sandbox,
                format!(
                    "endpoint {name}: sandbox '{}' is not defined{}",
                    e.sandbox.value,
                    known(sandboxes.keys())
                ),
            );
        }
        let mut ep = Endpoint {
            name: name.clone(),
            loc: spanned.into(),
            network: e.network.value.clone(),
            sandbox: e.sandbox.value.clone(),
            address: None,
            ipv6_address: None,
            mac: None,
            aliases: Vec::new(),
            ports: Vec::new(),
            gateway: e.gateway.as_ref().map(|g| g.value).unwrap_or(false),
        };
        let bridged = net.map(|n| n.driver.has_interfaces());
        if let Some(a) = &e.address {
            if let Some(ip) = c.parse::<Ipv4Addr>(a, &format!("endpoint {name}: address")) {
                match net {
                    Some(n) if !n.driver.has_interfaces() => c.err(a, format!("endpoint {name}: network {} (driver {}) assigns no addresses", n.name, n.driver.as_str())),
                    Some(n) => match n.subnet {
                        None => c.err(a, format!("endpoint {name}: a static address needs network {} to have an explicit subnet", n.name)),
                        Some(sub) => match host_problem(sub.network().into(), sub.broadcast().into(), sub.contains(ip), ip.into()) {
                            Some(p) => c.err(a, format!("endpoint {name}: address {ip} {p} {sub}")),
                            None if Some(ip) == gateway_v4(n) => c.err(a, format!("endpoint {name}: address {ip} is the gateway of network {}", n.name)),
                            None => ep.address = Some(ip),
                        },
                    },
                    None => {}
                }
            }
        }
        if let Some(a) = &e.ipv6_address {
            if let Some(ip) = c.parse::<Ipv6Addr>(a, &format!("endpoint {name}: ipv6_address")) {
                match net.map(|n| (n, &n.ipv6)) {
                    Some((n, None)) => c.err(
                        a,
                        format!("endpoint {name}: network {} has no ipv6 subnet", n.name),
                    ),
                    Some((n, Some(v6))) => match host_problem(
                        v6.subnet.network().into(),
                        IpAddr::V6(v6.subnet.broadcast()),
                        v6.subnet.contains(ip),
                        ip.into(),
                    ) {
                        Some(p) => c.err(
                            a,
                            format!("endpoint {name}: ipv6_address {ip} {p} {}", v6.subnet),
                        ),
                        None if n.driver != DriverKind::Overlay && Some(ip) == gateway_v6(v6) => c
                            .err(
                                a,
                                format!(
                                "endpoint {name}: ipv6_address {ip} is the gateway of network {}",
                                n.name
                            ),
                            ),
                        None => ep.ipv6_address = Some(ip),
                    },
                    None => {}
                }
            }
        }
        if let Some(m) = &e.mac {
            match parse_mac(&m.value) {
                Ok(mac) if bridged == Some(false) => {
                    let _ = mac;
                    c.err(
                        m,
                        format!(
                            "endpoint {name}: mac does not apply to a {} network",
                            net.map(|n| n.driver.as_str()).unwrap_or("")
                        ),
                    );
                }
                Ok(mac) => ep.mac = Some(mac),
                Err(why) => c.err(m, format!("endpoint {name}: mac '{}' {why}", m.value)),
            }
        }
        for a in &e.aliases {
            match is_hostname(&a.value) {
                Ok(()) => ep.aliases.push(a.value.clone()),
                Err(why) => c.err(
                    a,
                    format!("endpoint {name}: alias '{}' {why}", a.value.escape_debug()),
                ),
            }
        }
        for p in &e.ports {
            match parse_port(&p.value) {
                Ok(pm) => match net {
                    Some(n) if n.driver == DriverKind::Overlay => c.err(
                        p,
                        format!(
                            "endpoint {name}: ports cannot be published on an overlay network; publish them on a bridge endpoint of sandbox {}",
                            ep.sandbox
                        ),
                    ),
                    Some(n) if n.driver != DriverKind::Bridge => c.err(
                        p,
                        format!(
                            "endpoint {name}: ports cannot be published on a {} network",
                            n.driver.as_str()
                        ),
                    ),
                    Some(n) if n.internal => c.err(
                        p,
                        format!(
                            "endpoint {name}: network {} is internal; it cannot publish ports",
                            n.name
                        ),
                    ),
                    _ => ep.ports.push(pm),
                },
                Err(why) => c.err(p, format!("endpoint {name}: {why}")),
            }
        }
        if let (Some(g), Some(n)) = (&e.gateway, net) {
            if g.value && (n.internal || n.driver != DriverKind::Bridge) {
                c.err(g, format!("endpoint {name}: gateway: true needs a non-internal bridge network; {} is not", n.name));
            }
        }
        out.insert(name.clone(), ep);
    }
    out
}

/// Rules that relate several objects.
fn check_cross(c: &mut Checker, t: &Topology, raw_eps: &Map<Option<RawEndpoint>>) {
    let loc_of = |ep: &str| raw_eps.get(ep).map(Loc::from).unwrap_or_default();

    // Overlapping subnets (both families).
    let nets: Vec<&Network> = t.networks.values().collect();
    for (i, a) in nets.iter().enumerate() {
        for b in &nets[i + 1..] {
            if let (Some(x), Some(y)) = (a.subnet, b.subnet) {
                if x.contains(y.network()) || y.contains(x.network()) {
                    c.err(
                        b.loc,
                        format!(
                            "network {}: subnet {y} overlaps subnet {x} of network {}",
                            b.name, a.name
                        ),
                    );
                }
            }
            if let (Some(x), Some(y)) = (&a.ipv6, &b.ipv6) {
                if x.subnet.contains(y.subnet.network()) || y.subnet.contains(x.subnet.network()) {
                    c.err(
                        b.loc,
                        format!(
                            "network {}: ipv6 subnet {} overlaps ipv6 subnet {} of network {}",
                            b.name, y.subnet, x.subnet, a.name
                        ),
                    );
                }
            }
            if a.bridge_name.is_some() && a.bridge_name == b.bridge_name {
                c.err(
                    b.loc,
                    format!(
                        "network {}: bridge_name {} is also used by network {}",
                        b.name,
                        b.bridge_name.as_deref().unwrap_or(""),
                        a.name
                    ),
                );
            }
        }
    }

    // Two overlay networks cannot share a VNI (the kernel refuses a second
    // VXLAN device with the same VNI and port).
    let mut seen_vni: BTreeMap<u32, &str> = BTreeMap::new();
    for n in t.networks.values() {
        if let Some(vni) = n.vni {
            if let Some(first) = seen_vni.insert(vni, &n.name) {
                c.err(
                    n.loc,
                    format!(
                        "network {}: vni {vni} is also the vni of network {first}; set options.vni",
                        n.name
                    ),
                );
            }
        }
    }

    // Duplicate addresses per network, duplicate MACs anywhere, one endpoint
    // per sandbox and network, duplicate published ports.
    let mut seen_v4: BTreeMap<(String, Ipv4Addr), String> = BTreeMap::new();
    let mut seen_v6: BTreeMap<(String, Ipv6Addr), String> = BTreeMap::new();
    let mut seen_mac: BTreeMap<[u8; 6], String> = BTreeMap::new();
    let mut seen_join: BTreeMap<(String, String), String> = BTreeMap::new();
    for ep in t.endpoints.values() {
        if let Some(a) = ep.address {
            if let Some(first) = seen_v4.insert((ep.network.clone(), a), ep.name.clone()) {
                c.err(
                    loc_of(&ep.name),
                    format!(
                        "endpoint {}: address {a} is also assigned to endpoint {first}",
                        ep.name
                    ),
                );
            }
        }
        if let Some(a) = ep.ipv6_address {
            if let Some(first) = seen_v6.insert((ep.network.clone(), a), ep.name.clone()) {
                c.err(
                    loc_of(&ep.name),
                    format!(
                        "endpoint {}: ipv6_address {a} is also assigned to endpoint {first}",
                        ep.name
                    ),
                );
            }
        }
        if let Some(m) = ep.mac {
            if let Some(first) = seen_mac.insert(m, ep.name.clone()) {
                c.err(
                    loc_of(&ep.name),
                    format!(
                        "endpoint {}: mac {} is also used by endpoint {first}",
                        ep.name,
                        format_mac(&m)
                    ),
                );
            }
        }
        if let Some(first) =
            seen_join.insert((ep.sandbox.clone(), ep.network.clone()), ep.name.clone())
        {
            c.err(
                loc_of(&ep.name),
                format!(
                    "endpoint {}: sandbox {} already joins network {} through endpoint {first}",
                    ep.name, ep.sandbox, ep.network
                ),
            );
        }
    }
    // Published ports, sorted by protocol and first port: each is compared
    // only with the ones whose range starts inside its own (no N²).
    let mut all_ports: Vec<(&Endpoint, &PortMapping)> = t
        .endpoints
        .values()
        .flat_map(|e| e.ports.iter().map(move |p| (e, p)))
        .collect();
    all_ports.sort_by_key(|(e, p)| (p.protocol, p.published.0, e.name.clone()));
    for (i, (ea, pa)) in all_ports.iter().enumerate() {
        for (eb, pb) in all_ports[i + 1..]
            .iter()
            .take_while(|(_, pb)| pb.protocol == pa.protocol && pb.published.0 <= pa.published.1)
        {
            if pa.clashes_with(pb) {
                let ((first, fp), (second, sp)) = if (&ea.name, pa) <= (&eb.name, pb) {
                    ((ea, pa), (eb, pb))
                } else {
                    ((eb, pb), (ea, pa))
                };
                c.err(
                    loc_of(&second.name),
                    format!(
                        "endpoint {}: port {sp} clashes with port {fp} of endpoint {}",
                        second.name, first.name
                    ),
                );
            }
        }
    }

    // Sandbox-level rules: host/null networks are exclusive; one gateway.
    let mut by_sandbox: BTreeMap<&str, Vec<&Endpoint>> = BTreeMap::new();
    for e in t.endpoints.values() {
        by_sandbox.entry(e.sandbox.as_str()).or_default().push(e);
    }
    for sb in t.sandboxes.values() {
        let eps: &[&Endpoint] = by_sandbox.get(sb.name.as_str()).map_or(&[], Vec::as_slice);
        for special in [DriverKind::Host, DriverKind::Null] {
            if eps.len() > 1 {
                if let Some(e) = eps
                    .iter()
                    .find(|e| t.networks.get(&e.network).map(|n| n.driver) == Some(special))
                {
                    c.err(loc_of(&e.name), format!(
                        "endpoint {}: sandbox {} joins a {} network and other networks; a {} network must be its only one",
                        e.name, sb.name, special.as_str(), special.as_str()
                    ));
                }
            }
        }
        let gws: Vec<&&Endpoint> = eps.iter().filter(|e| e.gateway).collect();
        if gws.len() > 1 {
            c.err(
                loc_of(&gws[1].name),
                format!(
                    "endpoint {}: sandbox {} already routes through endpoint {} (gateway: true)",
                    gws[1].name, sb.name, gws[0].name
                ),
            );
        }
    }
}

fn gateway_v4(n: &Network) -> Option<Ipv4Addr> {
    if n.driver == DriverKind::Overlay {
        return None; // overlay networks have no gateway
    }
    n.gateway.or_else(|| n.subnet.and_then(|s| s.nth(1)))
}

fn gateway_v6(v6: &Ipv6Config) -> Option<Ipv6Addr> {
    v6.gateway.or_else(|| {
        let base = u128::from(v6.subnet.network());
        Some(Ipv6Addr::from(base + 1))
    })
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.map(|s| s.as_str()).collect();
    if list.is_empty() {
        String::new()
    } else {
        format!(" (defined: {})", list.join(", "))
    }
}

pub fn parse_mac(s: &str) -> Result<[u8; 6], &'static str> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err("is not a MAC address like 02:42:0a:00:00:02");
    }
    let mut mac = [0u8; 6];
    for (slot, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err("is not a MAC address like 02:42:0a:00:00:02");
        }
        *slot =
            u8::from_str_radix(p, 16).map_err(|_| "is not a MAC address like 02:42:0a:00:00:02")?;
    }
    if mac[0] & 1 == 1 {
        return Err("is a multicast address; an interface needs a unicast MAC");
    }
    if mac == [0; 6] {
        return Err("is all zeros");
    }
    Ok(mac)
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
