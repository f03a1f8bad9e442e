//! The configuration built from a topology, and the answers it gives.

use super::*;
use crate::resolver::config::{build, Addresses};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const FILE: &str = "version: 1
name: t
networks:
  front: { subnet: 10.1.0.0/24, ipv6: { subnet: 'fd00:1::/64' } }
  back: { subnet: 10.2.0.0/24, internal: true }
  other: { subnet: 10.3.0.0/24 }
sandboxes:
  web: { hostname: www }
  db: {}
  db2: { dns: { servers: [192.0.2.9] } }
  lone: {}
  idle: {}
endpoints:
  web-front: { network: front, sandbox: web }
  web-back: { network: back, sandbox: web }
  db-back: { network: back, sandbox: db, aliases: [store] }
  db2-back: { network: back, sandbox: db2, aliases: [store] }
  db2-front: { network: front, sandbox: db2 }
  lone-other: { network: other, sandbox: lone }
";

fn setup() -> Result<Config, Box<dyn std::error::Error>> {
    let t = crate::spec::parse("t.yaml", FILE)?;
    let mut a = Addresses::new();
    for (e, ip, ip6) in [
        ("web-front", "10.1.0.2/24", Some("fd00:1::2/64")),
        ("web-back", "10.2.0.2/24", None),
        ("db-back", "10.2.0.3/24", None),
        ("db2-back", "10.2.0.4/24", None),
        ("db2-front", "10.1.0.3/24", None),
        ("lone-other", "10.3.0.2/24", None),
    ] {
        a.insert(
            e.to_string(),
            (Some(ip.parse()?), ip6.map(|s| s.parse()).transpose()?),
        );
    }
    let up: IpAddr = "198.51.100.1".parse()?;
    build(&t, &t, &a, &[up, up], &|_| Some(61000)).ok_or_else(|| "no config".into())
}

fn view(cfg: &Config, sandbox: &str) -> SandboxView {
    let t = TopologyNames::new(cfg);
    let s = cfg
        .sandboxes
        .values()
        .find(|s| s.sandbox == sandbox)
        .cloned()
        .unwrap_or_default();
    SandboxView::new(t, &s)
}

fn ips(list: &[&str]) -> Answer {
    Answer::Addrs(list.iter().filter_map(|s| s.parse().ok()).collect())
}

#[test]
fn peers_by_name_hostname_alias_and_network_form() -> TestResult {
    let cfg = setup()?;
    let web = view(&cfg, "web");
    assert_eq!(web.answer("db", Kind::A), ips(&["10.2.0.3"]));
    assert_eq!(web.answer("DB.back.", Kind::A), ips(&["10.2.0.3"]));
    assert_eq!(web.answer("www", Kind::A), ips(&["10.1.0.2", "10.2.0.2"]));
    assert_eq!(web.answer("web.front", Kind::A), ips(&["10.1.0.2"]));
    assert_eq!(web.answer("web", Kind::Aaaa), ips(&["fd00:1::2"]));
    // Every holder of a shared alias.
    assert_eq!(web.answer("store", Kind::A), ips(&["10.2.0.3", "10.2.0.4"]));
    Ok(())
}

#[test]
fn known_name_without_the_family_is_an_empty_answer() -> TestResult {
    let cfg = setup()?;
    let web = view(&cfg, "web");
    assert_eq!(web.answer("db", Kind::Aaaa), ips(&[]));
    assert_eq!(web.answer("db", Kind::Other), ips(&[]));
    Ok(())
}

#[test]
fn names_of_networks_not_shared_are_nxdomain_not_forwarded() -> TestResult {
    let cfg = setup()?;
    let web = view(&cfg, "web");
    assert_eq!(web.answer("lone", Kind::A), Answer::NxDomain);
    assert_eq!(web.answer("lone.other", Kind::A), Answer::NxDomain);
    // Not a name of the topology: upstream's to answer (a network named
    // like a top-level domain hides nothing).
    assert_eq!(web.answer("nothing.front", Kind::A), Answer::Forward);
    assert_eq!(web.answer("example.com", Kind::A), Answer::Forward);
    let lone = view(&cfg, "lone");
    assert_eq!(lone.answer("web", Kind::A), Answer::NxDomain);
    assert_eq!(lone.answer("lone", Kind::A), ips(&["10.3.0.2"]));
    Ok(())
}

#[test]
fn internal_only_sandboxes_do_not_forward() -> TestResult {
    let cfg = setup()?;
    let db = view(&cfg, "db");
    assert!(!db.forward);
    assert_eq!(db.answer("example.com", Kind::A), Answer::Refused);
    assert_eq!(db.answer("web", Kind::A), ips(&["10.2.0.2"]));
    Ok(())
}

#[test]
fn reverse_lookups_name_the_sandbox_on_its_network() -> TestResult {
    let cfg = setup()?;
    let web = view(&cfg, "web");
    assert_eq!(
        web.answer("3.0.2.10.in-addr.arpa.", Kind::Ptr),
        Answer::Ptr("db.back".into())
    );
    let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa";
    assert_eq!(web.answer(v6, Kind::Ptr), Answer::Ptr("web.front".into()));
    assert_eq!(
        web.answer("2.0.3.10.in-addr.arpa", Kind::Ptr),
        Answer::NxDomain
    );
    assert_eq!(
        web.answer("1.2.0.192.in-addr.arpa", Kind::Ptr),
        Answer::Forward
    );
    Ok(())
}

#[test]
fn upstreams_served_sandboxes_and_their_networks() -> TestResult {
    let cfg = setup()?;
    // idle has no endpoint: nothing to serve.
    let served: Vec<&str> = cfg.sandboxes.values().map(|s| s.sandbox.as_str()).collect();
    assert_eq!(served, ["db", "db2", "lone", "web"]);
    let db2 = &cfg.sandboxes["t-db2"];
    assert_eq!(db2.upstreams, vec!["192.0.2.9".parse::<IpAddr>()?]);
    assert!(db2.forward);
    assert_eq!(cfg.sandboxes["t-web"].upstreams.len(), 1);
    Ok(())
}

#[test]
fn off_when_the_file_says_so() -> TestResult {
    let file = FILE.replace("name: t\n", "name: t\ndns: { embedded: false }\n");
    let t = crate::spec::parse("t.yaml", &file)?;
    assert!(build(&t, &t, &Addresses::new(), &[], &|_| Some(61000)).is_none());
    Ok(())
}

#[test]
fn reverse_names_parse_strictly() {
    assert_eq!(
        reverse_ip("4.3.2.1.in-addr.arpa"),
        "1.2.3.4".parse::<IpAddr>().ok()
    );
    for bad in [
        "3.2.1.in-addr.arpa",
        "04.3.2.1.in-addr.arpa",
        "x.3.2.1.in-addr.arpa",
        "1.ip6.arpa",
    ] {
        assert_eq!(reverse_ip(bad), None, "{bad}");
    }
}
