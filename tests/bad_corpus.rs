//! tests/bad/*.yaml: every malformed topology is refused with a located
//! error (file:line:col) that contains the text its `# expect:` line names.
//! (tests/e2e/bad_input.sh proves the same files leave the kernel unchanged.)
//! Plus a property test: the parser never panics, whatever the input.

use cnm::spec;
use proptest::prelude::*;
use std::path::Path;

#[test]
fn every_bad_file_is_refused_with_its_location() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be '# expect: ...'", path.display()));
        let err = match spec::load(&path) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        };
        let first = err.lines().next().unwrap();
        let loc = first
            .strip_prefix(&format!("{}:", path.display()))
            .unwrap_or_else(|| panic!("{}: no file prefix in {first:?}", path.display()));
        let mut parts = loc.splitn(3, ':');
        let (line, col) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(
            line.parse::<u32>().is_ok_and(|l| l > 0) && col.parse::<u32>().is_ok_and(|c| c > 0),
            "{}: no line:col in {first:?}",
            path.display()
        );
        assert!(
            err.contains(expect),
            "{}: expected {expect:?} in {err:?}",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 30, "the corpus has {n} files; keep at least 30");
}

/// Arbitrary YAML-ish text built from the topology vocabulary, so inputs get
/// past the syntax check and into validation.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("version: 1\n".to_string()),
        Just("name: t\n".to_string()),
        Just("networks:\n".to_string()),
        Just("sandboxes:\n".to_string()),
        Just("endpoints:\n".to_string()),
        Just("  n: { subnet: 10.0.0.0/24 }\n".to_string()),
        Just("  s: {}\n".to_string()),
        Just("  e: { network: n, sandbox: s }\n".to_string()),
        Just(
            "  e: { network: n, sandbox: s, address: 10.0.0.5, ports: [\"80:80\"] }\n".to_string()
        ),
        Just("  x: { driver: host }\n".to_string()),
        Just("  y: { ipv6: { subnet: \"fd00::/64\" } }\n".to_string()),
        "[ -~]{0,20}\n",
        "[:{}\\[\\],\"'&*!|>-]{1,4}",
    ];
    prop::collection::vec(token, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(text in yamlish()) {
        let _ = spec::parse("fuzz.yaml", &text);
    }

    #[test]
    fn parser_never_panics_on_bytes(text in "\\PC{0,200}") {
        let _ = spec::parse("fuzz.yaml", &text);
    }
}
