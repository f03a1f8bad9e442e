//! The documentation holds what it says:
//! - README.md is at most 300 lines, and nothing in the repository refers
//!   to a file outside it; every relative link in the Markdown resolves;
//! - `docs/topology.md` and `cnm schema` list the same keys;
//! - every shell command shown in README.md and `docs/` parses, and runs
//!   as written on a private host (root; one host per page, in the page's
//!   order), except those marked `<!-- not run: why -->` before their
//!   block and the ones that install, build or run the tests, which are
//!   only parsed; a block marked `<!-- output checked -->` must print what
//!   it shows (`...` stands for any lines).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// One shell command of a page.
#[derive(Debug, Clone)]
struct Cmd {
    /// `README.md:42`.
    at: String,
    text: String,
    /// Only parsed (why).
    not_run: Option<String>,
    /// What it must print (`console` blocks marked "output checked").
    output: Option<Vec<String>>,
}

/// Commands that install, build or run the tests: parsed only.
fn builds(cmd: &str) -> bool {
    let first = cmd.split_whitespace().find(|w| !w.contains('='));
    matches!(first, Some("apt-get" | "apt" | "cargo" | ".ci/run"))
}

fn commands(page: &Path) -> Vec<Cmd> {
    let text = std::fs::read_to_string(page).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let info = lines[i].strip_prefix("```").map(str::trim);
        let Some(info) = info else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && !lines[end].starts_with("```") {
            end += 1;
        }
        let before = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
        let mark = before
            .and_then(|l| l.trim().strip_prefix("<!--"))
            .map(str::trim);
        let not_run = mark
            .and_then(|m| m.strip_prefix("not run:"))
            .map(|m| m.trim_end_matches("-->").trim().to_string());
        let checked = mark.is_some_and(|m| m.starts_with("output checked"));
        let body = &lines[start..end.min(lines.len())];
        match info {
            "sh" | "bash" => out.extend(sh_block(page, start, body, &not_run)),
            "console" => out.extend(console_block(page, start, body, &not_run, checked)),
            _ => {}
        }
        i = end + 1;
    }
    out
}

fn sh_block(page: &Path, start: usize, body: &[&str], not_run: &Option<String>) -> Vec<Cmd> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut at = 0;
    for (n, line) in body.iter().enumerate() {
        if pending.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        if pending.is_empty() {
            at = start + n + 1;
        }
        pending.push_str(line);
        if let Some(cont) = pending.strip_suffix('\\') {
            pending = format!("{cont}\n");
            continue;
        }
        out.push(cmd(page, at, std::mem::take(&mut pending), not_run, None));
    }
    out
}

fn console_block(
    page: &Path,
    start: usize,
    body: &[&str],
    not_run: &Option<String>,
    checked: bool,
) -> Vec<Cmd> {
    let mut out: Vec<Cmd> = Vec::new();
    for (n, line) in body.iter().enumerate() {
        if let Some(c) = line.strip_prefix("$ ") {
            let output = checked.then(Vec::new);
            out.push(cmd(page, start + n + 1, c.to_string(), not_run, output));
        } else if let Some(last) = out.last_mut().and_then(|c| c.output.as_mut()) {
            last.push(line.to_string());
        }
    }
    out
}

fn cmd(
    page: &Path,
    line: usize,
    text: String,
    not_run: &Option<String>,
    output: Option<Vec<String>>,
) -> Cmd {
    let not_run = not_run
        .clone()
        .or_else(|| builds(&text).then(|| "it installs, builds or runs the tests".to_string()));
    Cmd {
        at: format!("{}:{line}", rel(page)),
        text,
        not_run,
        output,
    }
}

#[test]
fn readme_is_short_and_nothing_points_outside_the_repository() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let n = readme.lines().count();
    assert!(
        n <= 300,
        "README.md has {n} lines; the rest belongs in docs/"
    );
    // Text files of the repository that a user reads or runs.
    let mut files = pages();
    for dir in ["src", "tests", "examples", "bench", "schema", ".ci"] {
        let mut stack = vec![root().join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
    }
    // Spelled in two halves so that this file does not name it either.
    let outside = format!("../{}/", "shared");
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        assert!(
            !text.contains(&outside) && !text.contains(&format!("{}.md", "SPEC")),
            "{} refers to a file outside the repository",
            rel(&f)
        );
    }
}

#[test]
fn markdown_links_resolve() {
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for (i, piece) in text.split("](").enumerate().skip(1) {
            let target = piece.split(')').next().unwrap_or_default();
            let path = target.split('#').next().unwrap_or_default();
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            let resolved = page.parent().unwrap().join(path);
            assert!(
                resolved.exists(),
                "{}: link {i} to {target} does not resolve",
                rel(&page)
            );
        }
    }
}

/// Key paths of the schema, as the reference writes them
/// (`networks.NAME.subnet`, `endpoints.NAME.ports[].target`).
fn schema_keys() -> BTreeSet<String> {
    fn alternatives(v: &serde_json::Value) -> Vec<&serde_json::Value> {
        let mut out = vec![v];
        let mut i = 0;
        while i < out.len() {
            let s = out[i];
            for k in ["anyOf", "oneOf", "allOf"] {
                if let Some(list) = s.get(k).and_then(|l| l.as_array()) {
                    out.extend(list.iter());
                }
            }
            if let Some(t) = s.get("then") {
                out.push(t);
            }
            i += 1;
        }
        out
    }
    fn walk(v: &serde_json::Value, path: &str, out: &mut BTreeSet<String>) {
        for a in alternatives(v) {
            if let Some(props) = a.get("properties").and_then(|p| p.as_object()) {
                for (k, child) in props {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    out.insert(p.clone());
                    walk(child, &p, out);
                }
            }
            if let Some(ap) = a.get("additionalProperties").filter(|x| x.is_object()) {
                walk(ap, &format!("{path}.NAME"), out);
            }
            if let Some(items) = a.get("items").filter(|x| x.is_object()) {
                walk(items, &format!("{path}[]"), out);
            }
        }
    }
    let o = Command::new(env!("CARGO_BIN_EXE_cnm"))
        .arg("schema")
        .output()
        .unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut out = BTreeSet::new();
    walk(&schema, "", &mut out);
    out
}

#[test]
fn the_reference_lists_every_key_of_the_schema() {
    let text = std::fs::read_to_string(root().join("docs/topology.md")).unwrap();
    let documented: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let schema = schema_keys();
    let missing: Vec<&String> = schema.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&schema).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/topology.md lacks {missing:?} and documents keys the schema does not have: {unknown:?}"
    );
}

#[test]
fn every_shell_command_parses() {
    let all: Vec<Cmd> = pages().iter().flat_map(|p| commands(p)).collect();
    assert!(all.len() > 30, "only {} commands found", all.len());
    for c in all {
        let o = Command::new("bash")
            .args(["-n", "-c", &c.text])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: `{}` does not parse: {}",
            c.at,
            c.text,
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The script that runs a page's commands on a private host: each must
/// exit 0 (and print what a checked block shows). Its files are in `$D`.
fn script(cmds: &[Cmd], dir: &Path) -> String {
    let mut s = String::from(
        "set -u\n\
         export NO_COLOR=1 PATH=\"$D-bin:$PATH\"\n\
         cd \"$REPO\"\n\
         fail() { echo \"FAIL: $*\" >&2; exit 1; }\n",
    );
    for (i, c) in cmds.iter().enumerate() {
        if c.not_run.is_some() {
            continue;
        }
        std::fs::write(dir.join(format!("cmd{i}")), &c.text).unwrap();
        s.push_str(&format!(
            "echo '--- {at}'\neval \"$(cat \"$D/cmd{i}\")\" >\"$D/cmd{i}.out\" 2>\"$D/cmd{i}.err\" </dev/null; rc=$?\n\
             [ \"$rc\" = 0 ] || {{ cat \"$D/cmd{i}.out\" \"$D/cmd{i}.err\" >&2; fail \"{at}: exit $rc: $(cat \"$D/cmd{i}\")\"; }}\n",
            at = c.at,
        ));
        if let Some(want) = &c.output {
            std::fs::write(dir.join(format!("cmd{i}.want")), want.join("\n") + "\n").unwrap();
            s.push_str(&format!(
                "python3 - \"$D/cmd{i}.want\" \"$D/cmd{i}.out\" <<'PY' || fail \"{at}: output differs\"\n{PY}PY\n",
                at = c.at,
                PY = MATCH_OUTPUT
            ));
        }
    }
    s.push_str("wait\necho PASS\n");
    s
}

/// Run on the private host first: the page's files and cnm are bound at
/// /mnt (a bind mount keeps them reachable when /tmp, where they may be,
/// is covered), then /tmp becomes the host's own (pages write to /tmp).
const BOOT: &str = "set -eu\n\
    mount -t tmpfs tmpfs /mnt\n\
    mkdir /mnt/page /mnt/page-bin\n\
    mount --bind \"$PAGE_DIR\" /mnt/page\n\
    mount --bind \"$BIN_DIR\" /mnt/page-bin\n\
    mount -t tmpfs tmpfs /tmp\n\
    export D=/mnt/page\n\
    exec bash /mnt/page/run.sh\n";

/// Does the output (argv[2]) match what the page shows (argv[1]), where a
/// `...` line stands for any lines?
const MATCH_OUTPUT: &str = r#"import re, sys
want = open(sys.argv[1]).read().rstrip("\n").split("\n")
got = open(sys.argv[2]).read().rstrip("\n").split("\n")
pattern = "\n".join(".*?" if l.strip() == "..." else re.escape(l) for l in want)
if not re.fullmatch(pattern, "\n".join(got), re.S):
    import difflib
    sys.stderr.write("\n".join(difflib.unified_diff(want, got, "page", "real", lineterm="")) + "\n")
    sys.exit(1)
"#;

#[test]
fn every_shell_command_runs_as_written() {
    if !nix::unistd::geteuid().is_root() {
        let msg = "docs: SKIPPED: running the pages' commands needs root";
        if std::env::var("CNM_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
            panic!("{msg}, and CNM_REQUIRE_PRIVILEGED=1");
        }
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_cnm"));
    let bin_dir = bin.parent().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut ran = Vec::new();
    for page in pages() {
        let cmds = commands(&page);
        if cmds.iter().all(|c| c.not_run.is_some()) {
            continue;
        }
        let dir = work.path().join(rel(&page).replace('/', "_"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("run.sh"), script(&cmds, &dir)).unwrap();
        let out = Command::new(root().join("tests/support/private-host.sh"))
            .args(["bash", "-c", BOOT])
            .env("PAGE_DIR", &dir)
            .env("BIN_DIR", bin_dir)
            .env("REPO", root())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("PASS"),
            "{}: a command failed\n--- stdout\n{stdout}\n--- stderr\n{}",
            rel(&page),
            String::from_utf8_lossy(&out.stderr)
        );
        ran.extend(
            cmds.iter()
                .filter(|c| c.not_run.is_none())
                .map(|c| c.at.clone()),
        );
    }
    eprintln!("ran {} commands: {}", ran.len(), ran.join(", "));
    assert!(ran.len() > 20, "only {} commands ran", ran.len());
}
