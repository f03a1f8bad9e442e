//! `cnm graph`: every example drawn as DOT, Mermaid, SVG and PNG (the last
//! two through Graphviz, which CI installs), and a PNG refused on a
//! terminal. No root: the desired view needs no kernel.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies");
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    all.sort();
    assert!(all.len() >= 5, "examples: {all:?}");
    all
}

fn graph(file: &Path, format: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnm"))
        .args(["graph", file.to_str().unwrap(), "-o", format])
        .output()
        .unwrap()
}

fn ok(o: &Output, what: &str) -> Vec<u8> {
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout.clone()
}

#[test]
fn every_example_is_drawn_in_every_format() {
    for file in examples() {
        let t = cnm::spec::load(&file).unwrap();
        let name = file.display().to_string();
        let dot = String::from_utf8(ok(&graph(&file, "dot"), &name)).unwrap();
        let mermaid = String::from_utf8(ok(&graph(&file, "mermaid"), &name)).unwrap();
        assert!(dot.starts_with("graph "), "{name}: {dot}");
        assert!(mermaid.starts_with("flowchart LR"), "{name}: {mermaid}");
        for s in t.sandboxes.keys() {
            assert!(dot.contains(&format!("\"sandbox:{s}\"")), "{name}: {s}");
            assert!(mermaid.contains(&format!("[\"{s}")), "{name}: {s}");
        }
        for n in t.networks.keys() {
            assert!(dot.contains(&format!("\"network:{n}\"")), "{name}: {n}");
        }
        for (e, ep) in &t.endpoints {
            assert!(
                dot.contains(&format!(
                    "\"sandbox:{}\" -- \"network:{}\" [label=\"{e}",
                    ep.sandbox, ep.network
                )),
                "{name}: {e}"
            );
        }
        for h in t.hosts.keys() {
            assert!(dot.contains(&format!("cluster_{h}")), "{name}: host {h}");
        }
        let svg = String::from_utf8(ok(&graph(&file, "svg"), &name)).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{name}");
        let png = ok(&graph(&file, "png"), &name);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
    }
}

#[test]
fn addresses_cnm_would_allocate_are_drawn() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/two-tier.yaml");
    let dot = String::from_utf8(ok(&graph(&file, "dot"), "two-tier")).unwrap();
    // db-back's address is in the file; api-back's is allocated.
    assert!(dot.contains("db-back\\n10.20.0.5"), "{dot}");
    assert!(dot.contains("api-back\\n10.20.0."), "{dot}");
    assert!(dot.contains("port 8080:80/tcp"), "{dot}");
}

/// `script` gives the command a terminal for standard output.
#[test]
fn a_png_is_never_written_to_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("script (util-linux) is needed for this test");
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/topologies/quickstart.yaml");
    let cmd = format!(
        "{} graph {} -o png",
        env!("CARGO_BIN_EXE_cnm"),
        file.display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("redirect it to a file"), "{text}");
    assert!(
        !text.contains("PNG"),
        "binary data reached the terminal: {text}"
    );
}
