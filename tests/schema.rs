//! The JSON Schemas: the topology schema (`cnm schema`) is the committed
//! `schema/topology.schema.json`; every example passes it; the bad inputs
//! that are schema errors (types, unknown keys, enums, patterns) fail it,
//! and cnm refuses them too. The plan schema (`schema/plan.schema.json`)
//! holds for the plans of every example (create, converged and destroy).

use cnm::model::{HostFacts, Observed};
use cnm::{desired, diff, spec};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
}

/// A YAML topology as the JSON value the schema judges.
fn yaml_value(text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).unwrap()
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("examples/topologies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 6, "examples: {v:?}");
    v
}

#[test]
fn committed_schema_is_cnm_schema() {
    let committed = std::fs::read_to_string(root().join("schema/topology.schema.json")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnm"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout).unwrap() == committed,
        "schema/topology.schema.json is not `cnm schema`: run `cnm schema > schema/topology.schema.json`"
    );
    // It is a draft 2020-12 schema, and says so.
    let s: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    jsonschema::meta::validate(&s).unwrap();
}

#[test]
fn every_example_passes_and_carries_the_modeline() {
    let v = validator(&load_json(&root().join("schema/topology.schema.json")));
    for p in examples() {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../../schema/topology.schema.json\n"),
            "{} lacks the yaml-language-server modeline",
            p.display()
        );
        let errors: Vec<String> = v
            .iter_errors(&yaml_value(&text))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.display());
    }
}

/// Files that are wrong in a way the schema can say: each fails it, and
/// cnm refuses each with a located error.
#[test]
fn schema_errors_fail_the_schema() {
    let v = validator(&load_json(&root().join("schema/topology.schema.json")));
    let head = "version: 1\nname: t\n";
    let cases: Vec<String> = [
        "networks: { n: { subnet: 10.0.0.0/24, bogus: 1 } }",
        "networks: { n: { mtu: \"big\" } }",
        "networks: { n: { driver: macvlan, options: { parent: eth0, macvlan_mode: sideways } } }",
        "networks: { n: { driver: macvlan } }",
        "networks: { n: { options: { icc: maybe } } }",
        "networks: { n: { options: { bridge_name: this-name-is-too-long } } }",
        "networks: { n: { driver: overlay, options: { vni: 0 } } }",
        "networks: { n: { ipv4: \"no\" } }",
        "networks: { n: { aux_addresses: { router: not-an-ip } } }",
        "sandboxes: { s: { netns: nowhere } }",
        "sandboxes: { s: { netns: \"docker:-x\" } }",
        "sandboxes: { s: { sysctls: { kernel.shmmax: 1 } } }",
        "sandboxes: { s: { extra_hosts: [nocolon] } }",
        "sandboxes: { s: { bogus: 1 } }",
        "endpoints: { e: { sandbox: s } }",
        "endpoints: { e: { network: n, sandbox: s, ports: [\"80:80/icmp\"] } }",
        "endpoints: { e: { network: n, sandbox: s, mac: 02-42 } }",
        "endpoints: { e: { network: n, sandbox: s, gateway: yes please } }",
        "endpoints: { e: { network: n, sandbox: s, address: 10.0.0.300 } }",
        "dns: { embedded: sometimes }",
        "unknown_top: 1",
    ]
    .iter()
    .map(|c| format!("{head}{c}\n"))
    .chain([
        "version: 2\nname: t\n".to_string(),
        "version: 1\n".to_string(),
        "version: 1\nname: ../up\n".to_string(),
    ])
    .collect();
    for text in &cases {
        assert!(
            !v.is_valid(&yaml_value(text)),
            "the schema accepts:\n{text}"
        );
        let err = spec::parse("t.yaml", text).expect_err(text);
        assert!(
            err.to_string().starts_with("t.yaml:"),
            "cnm refuses without a location: {err}"
        );
    }
    // And the bad corpus: the files that are schema errors fail it.
    for name in [
        "02-unknown-top-key.yaml",
        "03-unknown-network-key.yaml",
        "05-wrong-version.yaml",
        "06-missing-name.yaml",
        "15-bridge-name-too-long.yaml",
        "16-bridge-name-slash.yaml",
        "19-dotdot-name.yaml",
        "25-unknown-option.yaml",
        "28-mtu-range.yaml",
        "37-wrong-type.yaml",
        "38-slash-name.yaml",
    ] {
        let text = std::fs::read_to_string(root().join("tests/bad").join(name)).unwrap();
        assert!(
            !v.is_valid(&yaml_value(&text)),
            "the schema accepts tests/bad/{name}"
        );
    }
}

/// Valid forms of every key pass (the schema is not stricter than cnm).
#[test]
fn every_key_passes() {
    let v = validator(&load_json(&root().join("schema/topology.schema.json")));
    let text = r#"version: 1
name: all
dns: { embedded: true }
networks:
  a:
    driver: bridge
    subnet: 10.1.0.0/24
    gateway: 10.1.0.1
    ip_range: 10.1.0.0/25
    ipv6: { subnet: "fd00:1::/64", gateway: "fd00:1::1", ip_range: "fd00:1::/80" }
    internal: false
    mtu: 1400
    aux_addresses: { router: 10.1.0.250 }
    options:
      com.docker.network.bridge.name: br-all
      com.docker.network.bridge.enable_icc: "false"
      masquerade: false
      host_binding_ipv4: 127.0.0.1
      com.docker.network.driver.mtu: "1400"
  six: { ipv4: false, ipv6: { subnet: "fd00:2::/64" } }
  m: { driver: macvlan, options: { parent: eth0, macvlan_mode: vepa } }
  p: { driver: someplugin, options: { anything: [1, 2] }, ipam: { driver: someipam, options: { k: v } } }
sandboxes:
  s:
    hostname: s
    domainname: example.test
    dns: { servers: [192.0.2.53, "2001:db8::53"], search: [example.test], options: ["ndots:2"] }
    extra_hosts: ["gw:host-gateway", "db:10.1.0.9", "v6:fd00::9"]
    sysctls: { net.ipv4.ip_forward: 1, net.ipv6.conf.all.disable_ipv6: "0" }
  b: { netns: "pid:42" }
  c: { netns: /run/netns/x }
  d: { netns: "docker:web-1" }
  e: { netns: "podman:db.2" }
  f:
endpoints:
  s-a:
    network: a
    sandbox: s
    address: 10.1.0.5
    ipv6_address: "fd00:1::5"
    mac: "02:42:0a:01:00:05"
    aliases: [web]
    gateway: true
    ports: ["8080:80", "80", 443, "127.0.0.1::81", "[::]:9000:90/udp", "5000-5001:5000-5001/sctp", { target: 82 }, { published: 8443, target: 443, protocol: tcp, host_ip: 0.0.0.0 }]
"#;
    let errors: Vec<String> = v
        .iter_errors(&yaml_value(text))
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The plan of every example (from nothing, converged, and its destroy)
/// is valid against the plan schema.
#[test]
fn plans_of_every_example_match_the_plan_schema() {
    let v = validator(&load_json(&root().join("schema/plan.schema.json")));
    let host = Observed {
        state: Default::default(),
        host: HostFacts {
            nameservers: vec!["192.0.2.53".parse().unwrap()],
            ..Default::default()
        },
    };
    let mut checked = 0;
    for p in examples() {
        let text = std::fs::read_to_string(&p).unwrap();
        let mut t = spec::parse(&p.display().to_string(), &text).unwrap();
        let mut host = host.clone();
        if let Some(h) = t.hosts.keys().next().cloned() {
            t.select_host(Some(&h)).unwrap();
            // The underlay address is on this "machine".
            host.host
                .local_addrs
                .insert(t.hosts[&h].address, ("eth0".into(), 1500));
        }
        // Remote drivers need their plugin to plan: not here.
        let Ok(want) = desired::build(&t, &host) else {
            assert!(
                text.contains("driver: cnmp"),
                "{} does not plan",
                p.display()
            );
            continue;
        };
        let mut converged = host.clone();
        converged.state = want.clone();
        for plan in [
            diff::diff(&t.name, &t.file, &want, &host).unwrap(),
            diff::diff(&t.name, &t.file, &want, &converged).unwrap(),
            diff::diff(&t.name, &t.file, &Default::default(), &converged).unwrap(),
        ] {
            let json: Value = serde_json::from_str(&plan.to_json()).unwrap();
            let errors: Vec<String> = v
                .iter_errors(&json)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", p.display());
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} plans checked");
}
