//! Validation rules and their exact messages (SPEC §3). No kernel, no root.

use cnm::spec;

/// Every diagnostic of `yaml`, rendered as `t.yaml:L:C: message`.
fn errors(yaml: &str) -> Vec<String> {
    match spec::parse("t.yaml", yaml) {
        Ok(_) => Vec::new(),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

fn has(yaml: &str, want: &str) {
    let got = errors(yaml);
    assert!(
        got.iter().any(|e| e == want),
        "wanted {want:?}\ngot {got:#?}"
    );
}

const HEAD: &str = "version: 1\nname: t\n";

#[test]
fn the_examples_are_valid() {
    for f in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/topologies")).unwrap()
    {
        let path = f.unwrap().path();
        spec::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn yaml_syntax_unknown_and_duplicate_keys() {
    has(
        "version: 1\nname: t\nnetworks: [\n",
        "t.yaml:3:11: expected mapping start",
    );
    has(&format!("{HEAD}networks:\n  a: {{ subnet: 10.0.0.0/24, bogus: 1 }}\n"), "t.yaml:4:29: networks.a: unknown key 'bogus'; known keys: aux_addresses, driver, gateway, internal, ip_range, ipam, ipv4, ipv6, mtu, options, subnet");
    has(
        &format!("{HEAD}networks:\n  a: {{}}\n  a: {{}}\n"),
        "t.yaml:5:3: duplicate mapping key: a",
    );
    has(
        "version: 2\nname: t\n",
        "t.yaml:1:10: version: 2 is not supported; this cnm reads version 1",
    );
}

#[test]
fn dangling_references() {
    has(
        &format!("{HEAD}sandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s }}\n"),
        "t.yaml:5:17: endpoint e: network 'n' is not defined",
    );
    has(
        &format!("{HEAD}networks: {{ n: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s }}\n"),
        "t.yaml:5:29: endpoint e: sandbox 's' is not defined (defined: none)"
            .replace(" (defined: none)", "")
            .as_str(),
    );
}

#[test]
fn subnets_gateways_and_addresses() {
    has(
        &format!(
            "{HEAD}networks:\n  a: {{ subnet: 10.0.0.0/24 }}\n  b: {{ subnet: 10.0.0.128/25 }}\n"
        ),
        "t.yaml:5:6: network b: subnet 10.0.0.128/25 overlaps subnet 10.0.0.0/24 of network a",
    );
    has(
        &format!("{HEAD}networks:\n  a: {{ subnet: 10.0.0.5/24 }}\n"),
        "t.yaml:4:16: network a: subnet 10.0.0.5/24 has host bits set; did you mean 10.0.0.0/24?",
    );
    has(
        &format!("{HEAD}networks:\n  a: {{ subnet: 10.0.0.0/24, gateway: 10.0.0.255 }}\n"),
        "t.yaml:4:38: network a: gateway 10.0.0.255 is the broadcast address of 10.0.0.0/24",
    );
    has(
        &format!("{HEAD}networks:\n  a: {{ gateway: 10.0.0.1 }}\n"),
        "t.yaml:4:17: network a: gateway needs an explicit subnet",
    );
    has(
        &format!("{HEAD}networks:\n  a: {{ subnet: 10.0.0.0/24, ip_range: 10.1.0.0/25 }}\n"),
        "t.yaml:4:39: network a: ip_range 10.1.0.0/25 is not inside subnet 10.0.0.0/24",
    );
    let eps = |a: &str, b: &str| {
        format!("{HEAD}networks: {{ n: {{ subnet: 10.0.0.0/24 }} }}\nsandboxes: {{ s: {{}}, u: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s, address: {a} }}\n  f: {{ network: n, sandbox: u, address: {b} }}\n")
    };
    has(
        &eps("10.0.1.5", "10.0.0.6"),
        "t.yaml:6:41: endpoint e: address 10.0.1.5 is outside subnet 10.0.0.0/24",
    );
    has(
        &eps("10.0.0.0", "10.0.0.6"),
        "t.yaml:6:41: endpoint e: address 10.0.0.0 is the network address of 10.0.0.0/24",
    );
    has(
        &eps("10.0.0.1", "10.0.0.6"),
        "t.yaml:6:41: endpoint e: address 10.0.0.1 is the gateway of network n",
    );
    has(
        &eps("10.0.0.7", "10.0.0.7"),
        "t.yaml:7:6: endpoint f: address 10.0.0.7 is also assigned to endpoint e",
    );
}

#[test]
fn macs() {
    let y = |a: &str, b: &str| {
        format!("{HEAD}networks: {{ n: {{}} }}\nsandboxes: {{ s: {{}}, u: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s, mac: \"{a}\" }}\n  f: {{ network: n, sandbox: u, mac: \"{b}\" }}\n")
    };
    has(
        &y("02:00:00:00:00:01", "02:00:00:00:00:01"),
        "t.yaml:7:6: endpoint f: mac 02:00:00:00:00:01 is also used by endpoint e",
    );
    has(&y("01:00:00:00:00:01", "02:00:00:00:00:02"), "t.yaml:6:37: endpoint e: mac '01:00:00:00:00:01' is a multicast address; an interface needs a unicast MAC");
    has(
        &y("zz", "02:00:00:00:00:02"),
        "t.yaml:6:37: endpoint e: mac 'zz' is not a MAC address like 02:42:0a:00:00:02",
    );
}

#[test]
fn kernel_names_and_paths() {
    has(&format!("{HEAD}networks:\n  a: {{ options: {{ bridge_name: br-this-is-too-long }} }}\n"), "t.yaml:4:32: network a: options.bridge_name 'br-this-is-too-long' is 19 bytes long; Linux interface names have at most 15");
    has(&format!("{HEAD}networks:\n  a: {{ options: {{ bridge_name: \"br 0\" }} }}\n"), "t.yaml:4:32: network a: options.bridge_name 'br 0' contains whitespace, which Linux interface names cannot hold");
    has(
        &format!("{HEAD}sandboxes:\n  \"..\": {{}}\n"),
        "t.yaml:4:9: sandbox '..': name must start with a letter or digit",
    );
    has(&format!("{HEAD}sandboxes:\n  \"a/../../etc\": {{}}\n"), "t.yaml:4:18: sandbox 'a/../../etc': name contains '/'; only letters, digits, '_', '.' and '-' are allowed");
    has("version: 1\nname: \"x y\"\n", "t.yaml:2:7: name: topology name 'x y' contains whitespace; only letters, digits, '_', '.' and '-' are allowed");
}

#[test]
fn hosts_file_injection_is_refused() {
    has(
        &format!("{HEAD}sandboxes:\n  s: {{ hostname: \"web\\n6.6.6.6 bank\" }}\n"),
        "t.yaml:4:18: sandbox s: hostname 'web\\n6.6.6.6 bank' contains whitespace",
    );
    has(&format!("{HEAD}networks: {{ n: {{}} }}\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s, aliases: [\"a b\"] }}\n"), "t.yaml:6:42: endpoint e: alias 'a b' contains whitespace");
}

#[test]
fn host_and_null_networks_are_exclusive() {
    has(
        &format!("{HEAD}networks: {{ h: {{ driver: host }}, b: {{}} }}\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e1: {{ network: h, sandbox: s }}\n  e2: {{ network: b, sandbox: s }}\n"),
        "t.yaml:6:7: endpoint e1: sandbox s joins a host network and other networks; a host network must be its only one",
    );
    has(
        &format!("{HEAD}networks:\n  h: {{ driver: host, subnet: 10.0.0.0/24 }}\n"),
        "t.yaml:4:30: network h: subnet does not apply to driver host",
    );
}

/// validate stays pure: any driver name may be a plugin, so it is accepted
/// here; `plan` refuses the ones that are neither built in nor found
/// (tests/e2e/correctness.sh). Only names that could escape a path fail.
#[test]
fn any_driver_name_is_valid_until_plan() {
    for d in ["calico", "warp", "weave.net"] {
        let y = format!("{HEAD}networks:\n  v: {{ driver: {d}, subnet: 10.0.0.0/24 }}\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: v, sandbox: s, address: 10.0.0.5 }}\n");
        assert_eq!(errors(&y), Vec::<String>::new(), "{d}");
    }
    has(
        &format!("{HEAD}networks:\n  v: {{ driver: ../x }}\n"),
        "t.yaml:4:16: network v: driver name '../x' must start with a letter or digit",
    );
}

#[test]
fn ranges_that_cannot_carry_a_network() {
    for (subnet, why) in [
        ("127.0.0.0/8", "is in the loopback range 127.0.0.0/8"),
        ("224.1.0.0/16", "is in the multicast range 224.0.0.0/4"),
        (
            "169.254.0.0/16",
            "is in the link-local range 169.254.0.0/16",
        ),
        ("0.0.0.0/0", "covers the unspecified address 0.0.0.0"),
    ] {
        let y = format!("{HEAD}networks:\n  a: {{ subnet: {subnet} }}\n");
        assert!(
            errors(&y)
                .iter()
                .any(|e| e.starts_with(&format!("t.yaml:4:16: network a: subnet {subnet} {why}"))),
            "{subnet}: {:?}",
            errors(&y)
        );
    }
    for (subnet, why) in [
        ("fe80::/64", "is in the link-local range fe80::/10"),
        ("ff02::/64", "is in the multicast range ff00::/8"),
        ("::/0", "covers the unspecified address ::"),
        ("::1/128", "covers the loopback address ::1"),
    ] {
        let y = format!("{HEAD}networks:\n  a: {{ ipv6: {{ subnet: \"{subnet}\" }} }}\n");
        assert!(
            errors(&y)
                .iter()
                .any(|e| e.contains(&format!("network a: ipv6 subnet {subnet} {why}"))),
            "{subnet}: {:?}",
            errors(&y)
        );
    }
    let y = format!("{HEAD}networks: {{ n: {{}} }}\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s, ports: [\"[::1]:8080:80\"] }}\n");
    assert!(
        errors(&y)
            .iter()
            .any(|e| e.contains("the IPv6 loopback ::1 cannot be published")),
        "{:?}",
        errors(&y)
    );
}

#[test]
fn ports() {
    let y = |p: &str| {
        format!("{HEAD}networks: {{ n: {{}}, i: {{ internal: true }} }}\nsandboxes: {{ s: {{}}, u: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s, ports: [{p}] }}\n  f: {{ network: i, sandbox: u }}\n")
    };
    has(
        &y("\"80\", \"80/tcp\""),
        "t.yaml:6:6: endpoint e: port 80/tcp is listed twice",
    );
    has(&y("\"80-81\""), "t.yaml:6:40: endpoint e: port '80-81': a range needs its host ports: write \"HOST_START-HOST_END:80-81\"");
    has(
        &y("\"8080:80\", \"8080:81\""),
        "t.yaml:6:6: endpoint e: port 8080:81/tcp clashes with port 8080:80/tcp of endpoint e",
    );
    let internal = format!("{HEAD}networks: {{ i: {{ internal: true }} }}\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: i, sandbox: s, ports: [\"1:1\"] }}\n");
    has(
        &internal,
        "t.yaml:6:40: endpoint e: network i is internal; it cannot publish ports",
    );
}

#[test]
fn all_problems_are_reported_in_file_order() {
    let got = errors(&format!(
        "{HEAD}networks:\n  a: {{ mtu: 10 }}\n  b: {{ subnet: nope }}\n"
    ));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("t.yaml:4:13: network a: mtu 10 is outside 68..65535"),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with("t.yaml:5:16: network b: subnet 'nope' is not a CIDR network"),
        "{got:#?}"
    );
}

#[test]
fn macvlan_options() {
    let net =
        |opts: &str| format!("{HEAD}networks:\n  m:\n    driver: macvlan\n    options: {opts}\n");
    has(
        &format!("{HEAD}networks:\n  m: {{ driver: macvlan }}\n"),
        "t.yaml:4:6: network m: a macvlan network needs options.parent, the host interface its endpoints share",
    );
    has(
        &net("{ parent: lo }"),
        "t.yaml:6:24: network m: options.parent cannot be the loopback interface",
    );
    has(
        &net("{ parent: eth0, macvlan_mode: l2 }"),
        "t.yaml:6:44: network m: options.macvlan_mode must be one of bridge, private, vepa, passthru",
    );
    has(
        &net("{ parent: eth0, vlan: 10 }"),
        "t.yaml:6:36: network m: unknown macvlan option 'vlan' (known: parent, macvlan_mode)",
    );
    has(
        &format!("{HEAD}networks:\n  a: {{ driver: macvlan, options: {{ parent: eth0 }} }}\n  b: {{ driver: macvlan, options: {{ parent: eth0 }} }}\n"),
        "t.yaml:5:44: network b: parent eth0 is already the parent of macvlan network a",
    );
    has(
        &format!("{HEAD}networks:\n  m: {{ driver: macvlan, options: {{ parent: eth0 }} }}\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: m, sandbox: s, ports: [\"80:80\"] }}\n"),
        "t.yaml:7:40: endpoint e: ports cannot be published on a macvlan network; publish them on a bridge endpoint of sandbox s",
    );
}

#[test]
fn endpoint_ifname() {
    let y = |ifname: &str, more: &str| {
        format!("{HEAD}networks:\n  n: {{ subnet: 10.9.0.0/24 }}\n  z: {{ driver: \"null\" }}\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: n, sandbox: s, ifname: {ifname} }}\n{more}")
    };
    has(
        &y("lo", ""),
        "t.yaml:8:40: endpoint e: ifname 'lo' is the loopback's",
    );
    has(
        &y("a-very-long-name0", ""),
        "t.yaml:8:40: endpoint e: ifname 'a-very-long-name0' is 17 bytes long; Linux interface names have at most 15",
    );
    has(
        &y("lan0", "  f: { network: n, sandbox: s, ifname: lan0 }\n"),
        "t.yaml:9:40: endpoint f: sandbox s already has an interface lan0 (endpoint e)",
    );
    has(
        &y("lan0", "  g: { network: z, sandbox: s, ifname: x0 }\n"),
        "t.yaml:9:40: endpoint g: ifname does not apply to a null network: it makes no interface",
    );
    assert_eq!(errors(&y("lan0", "")), Vec::<String>::new());
}

#[test]
fn ipvlan_options() {
    let net =
        |opts: &str| format!("{HEAD}networks:\n  m:\n    driver: ipvlan\n    options: {opts}\n");
    has(
        &format!("{HEAD}networks:\n  m: {{ driver: ipvlan }}\n"),
        "t.yaml:4:6: network m: an ipvlan network needs options.parent, the host interface its endpoints share",
    );
    has(
        &net("{ parent: eth0, ipvlan_mode: bridge }"),
        "t.yaml:6:43: network m: options.ipvlan_mode must be one of l2, l3, l3s",
    );
    has(
        &net("{ parent: eth0, ipvlan_flag: l3 }"),
        "t.yaml:6:43: network m: options.ipvlan_flag must be one of bridge, private, vepa",
    );
    has(
        &net("{ parent: eth0, macvlan_mode: bridge }"),
        "t.yaml:6:44: network m: unknown ipvlan option 'macvlan_mode' (known: parent, ipvlan_mode, ipvlan_flag)",
    );
    has(
        &format!("{HEAD}networks:\n  a: {{ driver: ipvlan, options: {{ parent: eth0 }} }}\n  b: {{ driver: ipvlan, options: {{ parent: eth0 }} }}\n"),
        "t.yaml:5:43: network b: parent eth0 is already the parent of ipvlan network a",
    );
    // l3: the parent routes; a gateway is refused, l2 takes one.
    has(
        &format!("{HEAD}networks:\n  m: {{ driver: ipvlan, subnet: 10.9.0.0/24, gateway: 10.9.0.1, options: {{ parent: eth0, ipvlan_mode: l3 }} }}\n"),
        "t.yaml:4:54: network m: gateway does not apply to an ipvlan network: its default route goes out of the endpoint's interface, with no next hop",
    );
    assert_eq!(
        errors(&format!("{HEAD}networks:\n  m: {{ driver: ipvlan, subnet: 10.9.0.0/24, gateway: 10.9.0.1, options: {{ parent: eth0 }} }}\n")),
        Vec::<String>::new()
    );
    // No gateway address in l3: host-gateway has nothing to name.
    let hosts = |mode: &str| {
        format!("{HEAD}networks:\n  m: {{ driver: ipvlan, subnet: 10.9.0.0/24, options: {{ parent: eth0, ipvlan_mode: {mode} }} }}\nsandboxes:\n  s: {{ extra_hosts: [\"gw:host-gateway\"] }}\nendpoints:\n  e: {{ network: m, sandbox: s }}\n")
    };
    assert_eq!(errors(&hosts("l2")), Vec::<String>::new());
    let got = errors(&hosts("l3"));
    assert!(
        got.len() == 1
            && got[0].contains(
                "host-gateway is the gateway of the sandbox's default route, and it has none"
            ),
        "{got:?}"
    );
}

#[test]
fn ipam_plugins() {
    has(
        &format!("{HEAD}networks:\n  a: {{ ipam: {{ driver: ../x }} }}\n"),
        "t.yaml:4:24: network a: ipam driver name '../x' must start with a letter or digit",
    );
    has(
        &format!("{HEAD}networks:\n  a: {{ driver: \"null\", ipam: {{ driver: p }} }}\n"),
        "t.yaml:4:40: network a: ipam does not apply to driver null: its endpoints have no addresses",
    );
    has(
        &format!("{HEAD}networks:\n  a: {{ ipam: {{ driver: p, options: {{ k: [1] }} }} }}\n"),
        "t.yaml:4:41: network a: ipam option k must be a string, number or boolean",
    );
    // With an IPAM plugin, an address is a request: the plugin decides.
    assert!(errors(&format!("{HEAD}networks:\n  a: {{ ipam: {{ driver: p }} }}\nsandboxes:\n  s: {{}}\nendpoints:\n  e: {{ network: a, sandbox: s, address: 10.9.0.5 }}\n")).is_empty());
    // Docker's and compose's `default` is cnm's own IPAM; a plugin name is
    // taken as written (plan finds it).
    assert!(errors(&format!(
        "{HEAD}networks:\n  a: {{ ipam: {{ driver: default }} }}\n"
    ))
    .is_empty());
    assert!(errors(&format!(
        "{HEAD}networks:\n  a: {{ driver: weave, ipam: {{ driver: p, options: {{ k: v }} }} }}\n"
    ))
    .is_empty());
}

#[test]
fn aux_addresses_are_hosts_of_the_subnet_and_no_endpoint_takes_one() {
    let net = "networks:\n  a:\n    subnet: 10.0.0.0/24\n    ipv6: { subnet: \"fd00::/64\" }\n    aux_addresses:\n";
    has(&format!("{HEAD}{net}      r: 10.1.0.9\n"), "t.yaml:8:10: network a: aux_addresses.r: 10.1.0.9 is not a host address of the subnet other than the gateway");
    has(&format!("{HEAD}{net}      r: 10.0.0.1\n"), "t.yaml:8:10: network a: aux_addresses.r: 10.0.0.1 is not a host address of the subnet other than the gateway");
    has(
        &format!("{HEAD}{net}      r: nope\n"),
        "t.yaml:8:10: network a: aux_addresses.r: 'nope' is not an IP address",
    );
    has(
        &format!("{HEAD}{net}      r: 10.0.0.9\n      s: 10.0.0.9\n"),
        "t.yaml:9:10: network a: aux_addresses.s: 10.0.0.9 is also aux_addresses.r",
    );
    has(
        &format!("{HEAD}networks:\n  a:\n    aux_addresses: {{ r: 10.0.0.9 }}\n"),
        "t.yaml:5:25: network a: aux_addresses.r: 10.0.0.9 needs an explicit IPv4 subnet on the network",
    );
    has(
        &format!("{HEAD}{net}      r: 10.0.0.9\nsandboxes: {{ s: {{}} }}\nendpoints:\n  e: {{ network: a, sandbox: s, address: 10.0.0.9 }}\n"),
        "t.yaml:11:41: endpoint e: address 10.0.0.9 is one of the aux_addresses of network a",
    );
    assert!(errors(&format!(
        "{HEAD}{net}      r: 10.0.0.9\n      v6: \"fd00::9\"\n"
    ))
    .is_empty());
}

/// Every unknown key in one run, each with a suggestion when a known key
/// is close; each diagnostic carries its key path.
#[test]
fn every_unknown_key_at_once_with_suggestions() {
    let yaml = format!(
        "{HEAD}networks:\n  n: {{ subnett: 10.1.0.0/24, drivr: bridge }}\nsandboxes:\n  s: {{ hostnme: x }}\nendpoints:\n  e: {{ netwrok: n, sandbox: s }}\n"
    );
    assert_eq!(
        errors(&yaml),
        vec![
            "t.yaml:4:8: networks.n: unknown key 'subnett'; did you mean 'subnet'?",
            "t.yaml:4:30: networks.n: unknown key 'drivr'; did you mean 'driver'?",
            "t.yaml:6:8: sandboxes.s: unknown key 'hostnme'; did you mean 'hostname'?",
            "t.yaml:8:8: endpoints.e: unknown key 'netwrok'; did you mean 'network'?",
        ]
    );
    let Err(e) = spec::parse("t.yaml", &yaml) else {
        panic!("valid")
    };
    let keys: Vec<Option<&str>> = e.diagnostics.iter().map(|d| d.key.as_deref()).collect();
    assert_eq!(
        keys,
        vec![
            Some("networks.n.subnett"),
            Some("networks.n.drivr"),
            Some("sandboxes.s.hostnme"),
            Some("endpoints.e.netwrok"),
        ]
    );
}

/// A syntax error carries the key path of where the parser was; a value's
/// error, the key path of the value.
#[test]
fn diagnostics_carry_key_paths() {
    let Err(e) = spec::parse(
        "t.yaml",
        &format!("{HEAD}networks:\n  n:\n    subnet: 10.1.0.0/24\n   driver: bridge\n"),
    ) else {
        panic!("valid")
    };
    assert_eq!(e.diagnostics[0].key.as_deref(), Some("networks"));
    let Err(e) = spec::parse(
        "t.yaml",
        &format!("{HEAD}networks:\n  n: {{ subnet: 10.1.0.0/24, mtu: 9 }}\n"),
    ) else {
        panic!("valid")
    };
    assert_eq!(e.diagnostics[0].key.as_deref(), Some("networks.n.mtu"));
}

/// An invalid value gives one error, not errors about what depends on it.
#[test]
fn no_follow_on_errors() {
    let one = |yaml: &str, want: &str| {
        let got = errors(yaml);
        assert_eq!(got, vec![want.to_string()], "for {yaml}");
    };
    let tail = "sandboxes:\n  s: {}\nendpoints:\n  e: { network: n, sandbox: s, address: 10.1.0.5, ipv6_address: \"fd00::5\" }\n";
    one(
        &format!("{HEAD}networks:\n  n: {{ subnet: 10.1.0.0/33, ipv6: {{ subnet: \"fd00::/64\" }} }}\n{tail}"),
        "t.yaml:4:16: network n: subnet '10.1.0.0/33' is not a CIDR network like 10.0.0.0/24",
    );
    one(
        &format!("{HEAD}networks:\n  n: {{ subnet: 10.1.0.0/24, ipv6: {{ subnet: \"fd00::/6x\" }} }}\n{tail}"),
        "t.yaml:4:45: network n: ipv6 subnet 'fd00::/6x' is not an IPv6 CIDR network like fd00::/64",
    );
    one(
        &format!("{HEAD}networks:\n  \"n x\": {{ subnet: 10.1.0.0/24 }}\nsandboxes:\n  s: {{}}\nendpoints:\n  e: {{ network: \"n x\", sandbox: s }}\n"),
        "t.yaml:4:10: network 'n x': name contains whitespace; only letters, digits, '_', '.' and '-' are allowed",
    );
    one(
        &format!("{HEAD}hosts:\n  h1: {{ address: 1.2.3 }}\nnetworks:\n  n: {{ driver: overlay, subnet: 10.1.0.0/24, options: {{ vni: 77 }} }}\nsandboxes:\n  s: {{ host: h1 }}\nendpoints:\n  e: {{ network: n, sandbox: s }}\n"),
        "t.yaml:4:18: host h1: address: '1.2.3' is not valid",
    );
}

/// `driver: cni` needs its chain: inline or a conflist's name, not both; a
/// chain with its own IPAM takes no subnet.
#[test]
fn cni_networks_need_a_chain() {
    has(
        &format!("{HEAD}networks:\n  p: {{ driver: cni }}\n"),
        "t.yaml:4:6: network p: driver cni needs options.plugins (a chain of CNI plugins) or options.conflist (a name in /etc/cni/net.d)",
    );
    has(
        &format!("{HEAD}networks:\n  p: {{ driver: cni, options: {{ plugins: [ {{ bridge: x }} ] }} }}\n"),
        "t.yaml:4:41: network p: options.plugins[0] must be an object with a type (bridge, macvlan, ...)",
    );
    has(
        &format!("{HEAD}networks:\n  p: {{ driver: cni, subnet: 10.9.0.0/24, options: {{ plugins: [ {{ type: bridge, ipam: {{ type: host-local }} }} ] }} }}\n"),
        "t.yaml:4:29: network p: subnet does not apply to driver cni",
    );
    let ok = format!("{HEAD}networks:\n  p: {{ driver: cni, subnet: 10.9.0.0/24, options: {{ plugins: [ {{ type: macvlan, master: lan0 }} ] }} }}\n  n: {{ driver: cni, options: {{ conflist: mynet }} }}\n");
    assert_eq!(errors(&ok), Vec::<String>::new());
}
