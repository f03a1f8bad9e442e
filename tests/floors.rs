//! The house's floors (docs/DESIGN.md, "Floors"): every top-level module
//! of `src/` sits on one floor, and a module refers (`crate::…`, `use
//! crate::{…}`, `super::` up to the crate root) only to modules on its
//! own floor or below; modules on one floor form no cycle. Sizes: no file
//! under `src/` over 400 lines, no function over 80.
//!
//! Comments, string literals and `#[cfg(test)]` items are left out: a test
//! may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 400;
const MAX_FN_LINES: usize = 80;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, sorted.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src is readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &mut out);
    out.sort();
    out
}

/// The top-level module a file belongs to (`src/apply/exec/mod.rs` →
/// `apply`, `src/plan.rs` → `plan`).
fn top_module(file: &Path) -> String {
    let rel = file.strip_prefix(root().join("src")).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_string()
}

/// How deep a file's module is below the crate root (`src/plan.rs` and
/// `src/apply/mod.rs`: 1, `src/apply/exec/links.rs`: 3).
fn depth(file: &Path) -> usize {
    let rel = file.strip_prefix(root().join("src")).expect("under src");
    let parts = rel.components().count();
    let named_mod = rel.file_name().is_some_and(|n| n == "mod.rs");
    if named_mod {
        parts - 1
    } else {
        parts
    }
}

/// The floors written in docs/DESIGN.md, top (0) to bottom: module → floor.
fn floors() -> (BTreeMap<String, usize>, Vec<String>) {
    let text = std::fs::read_to_string(root().join("docs/DESIGN.md")).expect("DESIGN.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Floors"))
        .expect("docs/DESIGN.md has a \"## Floors\" section");
    let mut of = BTreeMap::new();
    let mut names = Vec::new();
    for line in section.lines() {
        let Some((num, rest)) = line.split_once(". ") else {
            continue;
        };
        if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let floor = names.len();
        names.push(
            rest.split(':')
                .next()
                .unwrap_or(rest)
                .trim_matches('*')
                .to_string(),
        );
        // `**name**: `a`, `b` — what the floor does`
        let modules = rest.split_once(':').map_or("", |(_, m)| m);
        let modules = modules.split(" — ").next().unwrap_or(modules);
        for m in modules.split('`').skip(1).step_by(2) {
            if let Some(before) = of.insert(m.to_string(), floor) {
                panic!("module {m} is on two floors ({before} and {floor})");
            }
        }
    }
    assert!(names.len() > 3, "the Floors section lists no floors");
    (of, names)
}

/// Source text without comments, string and char literals, and without
/// `#[cfg(test)]` items. Lines are kept (a removed span keeps its line
/// breaks), so line numbers still hold.
fn code_only(text: &str) -> String {
    let stripped = strip_literals(text);
    drop_test_items(&stripped)
}

fn strip_literals(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep_newlines = |s: &[u8], out: &mut String| {
        for c in s {
            if *c == b'\n' {
                out.push('\n');
            }
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let start = i;
            let mut nest = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    nest += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    nest -= 1;
                    i += 2;
                    if nest == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            keep_newlines(&b[start..i.min(b.len())], &mut out);
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // r"…" or r#"…"#
            let start = i;
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|c| **c == b'#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            keep_newlines(&b[start..j.min(b.len())], &mut out);
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            keep_newlines(&b[start..i.min(b.len())], &mut out);
            out.push_str("\"\"");
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime.
            let close = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|c| *c == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                // A multi-byte char: up to 4 bytes.
                (i + 2..(i + 6).min(b.len()))
                    .find(|j| b[*j] == b'\'')
                    .filter(|_| b.get(i + 1).is_some_and(|c| *c >= 0x80))
            };
            match close {
                Some(end) => {
                    out.push_str("' '");
                    i = end + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = text[i..].chars().next().expect("a char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Remove each `#[cfg(test)]` item: through its `;`, or its `{ … }`.
fn drop_test_items(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let semi = item.find(';');
        let brace = item.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (Some(s), None) => s + 1,
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (k, c) in item[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => item.len(),
        };
        out.extend(item[..end].chars().filter(|c| *c == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Test-only files: `tests.rs` and anything under a `tests/` folder.
fn is_test_file(file: &Path) -> bool {
    file.file_name().is_some_and(|n| n == "tests.rs")
        || file.components().any(|c| c.as_os_str() == "tests")
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i);
    (end > 0).then(|| &s[..end])
}

/// The top-level modules a file's code names, with the line of each first
/// reference.
fn references(file: &Path, code: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let line_of = |pos: usize| code[..pos].matches('\n').count() + 1;
    let mut add = |name: &str, pos: usize| {
        out.entry(name.to_string()).or_insert_with(|| line_of(pos));
    };
    for (pos, _) in code.match_indices("crate::") {
        let before = code[..pos].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let after = &code[pos + "crate::".len()..];
        if let Some(name) = ident_at(after) {
            add(name, pos);
        } else if let Some(group) = after.strip_prefix('{') {
            for name in group_heads(group) {
                add(name, pos);
            }
        }
    }
    // `super::` chains that climb to the crate root.
    let d = depth(file);
    let mut k = 0;
    while let Some(found) = code[k..].find("super::") {
        let pos = k + found;
        let mut rest = &code[pos..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        if ups >= d {
            if let Some(name) = ident_at(rest) {
                add(name, pos);
            }
        }
        k = pos + "super::".len() * ups.max(1);
    }
    out
}

/// The first names of a `{a::b, c, d::{e}}` group (its text starts after
/// the opening brace): `a`, `c`, `d`.
fn group_heads(group: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    let mut i = 0;
    while i < group.len() {
        let c = group[i..].chars().next().expect("a char");
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expect_head = true,
            c if expect_head && depth == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                if let Some(name) = ident_at(&group[i..]) {
                    heads.push(name);
                    i += name.len();
                    expect_head = false;
                    continue;
                }
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    heads
}

/// module → module it names → where (`file:line`).
fn edges() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in sources() {
        if is_test_file(&file) {
            continue;
        }
        let from = top_module(&file);
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = code_only(&text);
        let rel = file.strip_prefix(root()).expect("in the repository");
        for (to, line) in references(&file, &code) {
            if to == from || to == "self" || to == "super" {
                continue;
            }
            out.entry(from.clone())
                .or_default()
                .entry(to)
                .or_insert_with(|| format!("{}:{line}", rel.display()));
        }
    }
    out
}

#[test]
fn every_module_is_on_a_floor() {
    let (of, _) = floors();
    let modules: BTreeSet<String> = sources().iter().map(|f| top_module(f)).collect();
    let unplaced: Vec<&String> = modules.iter().filter(|m| !of.contains_key(*m)).collect();
    assert!(
        unplaced.is_empty(),
        "modules on no floor of docs/DESIGN.md: {unplaced:?}"
    );
    let gone: Vec<&String> = of.keys().filter(|m| !modules.contains(*m)).collect();
    assert!(
        gone.is_empty(),
        "docs/DESIGN.md places modules that do not exist: {gone:?}"
    );
}

#[test]
fn no_reference_climbs_a_floor() {
    let (of, names) = floors();
    let mut climbs = Vec::new();
    for (from, tos) in edges() {
        let Some(&f) = of.get(&from) else { continue };
        for (to, at) in tos {
            let Some(&t) = of.get(&to) else { continue };
            if t < f {
                climbs.push(format!(
                    "{at}: {from} ({}) uses {to} ({}), a floor above",
                    names[f], names[t]
                ));
            }
        }
    }
    assert!(
        climbs.is_empty(),
        "references that climb:\n{}",
        climbs.join("\n")
    );
}

/// The engine's modules (SPEC's design: spec, observe, diff, apply, and
/// desired between them) reach drivers only through the trait and the
/// registry: they name no driver's module.
const ENGINE: [&str; 5] = ["spec", "desired", "observe", "diff", "apply"];

/// The drivers' own modules: the folders and files under `src/drivers/`.
fn driver_modules() -> Vec<String> {
    let dir = root().join("src/drivers");
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .expect("src/drivers is readable")
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|n| n != "mod")
        .collect();
    out.sort();
    out
}

/// Where `code` names `drivers::NAME` (or `drivers::{.., NAME, ..}`) for a
/// NAME in `modules`: (line, name).
fn driver_names_in(code: &str, modules: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (pos, _) in code.match_indices("drivers::") {
        let before = code[..pos].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let after = &code[pos + "drivers::".len()..];
        let named: Vec<&str> = match after.strip_prefix('{') {
            Some(group) => group_heads(group),
            None => ident_at(after).into_iter().collect(),
        };
        let line = code[..pos].matches('\n').count() + 1;
        for n in named.into_iter().filter(|n| modules.iter().any(|m| m == n)) {
            out.push((line, n.to_string()));
        }
    }
    out
}

#[test]
fn the_engine_names_no_driver() {
    let modules = driver_modules();
    assert!(
        modules.iter().any(|m| m == "bridge"),
        "drivers found: {modules:?}"
    );
    let mut named = Vec::new();
    for file in sources() {
        if !ENGINE.contains(&top_module(&file).as_str()) || is_test_file(&file) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable");
        for (line, name) in driver_names_in(&code_only(&text), &modules) {
            named.push(format!("{}:{line}: drivers::{name}", file.display()));
        }
    }
    assert!(
        named.is_empty(),
        "the engine names drivers:\n{}",
        named.join("\n")
    );
}

#[test]
fn no_cycle_on_a_floor() {
    let (of, _) = floors();
    let edges = edges();
    // A cycle needs every module in it on one floor (no edge climbs), so
    // a depth-first search over same-floor edges finds it.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        of: &BTreeMap<String, usize>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            found.push(cycle.join(" → "));
            return;
        }
        if !done.insert(m.to_string()) {
            return;
        }
        path.push(m.to_string());
        for to in edges.get(m).into_iter().flat_map(|t| t.keys()) {
            if of.get(to) == of.get(m) {
                visit(to, edges, of, path, done, found);
            }
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for m in of.keys() {
        visit(m, &edges, &of, &mut Vec::new(), &mut done, &mut found);
    }
    assert!(found.is_empty(), "cycles on a floor:\n{}", found.join("\n"));
}

#[test]
fn files_and_functions_are_small() {
    let mut big = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).expect("readable source");
        let rel = file
            .strip_prefix(root())
            .expect("in the repository")
            .display()
            .to_string();
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            big.push(format!("{rel}: {lines} lines (at most {MAX_FILE_LINES})"));
        }
        let code: Vec<String> = strip_literals(&text).lines().map(str::to_string).collect();
        for (start, name, len) in functions(&code) {
            if len > MAX_FN_LINES {
                big.push(format!(
                    "{rel}:{}: fn {name} is {len} lines (at most {MAX_FN_LINES})",
                    start + 1
                ));
            }
        }
    }
    assert!(big.is_empty(), "too large:\n{}", big.join("\n"));
}

/// Each `fn` with a body: (first line index, name, lines from its
/// signature to its closing brace).
fn functions(lines: &[String]) -> Vec<(usize, String, usize)> {
    let mut out = Vec::new();
    let mut k = 0;
    while k < lines.len() {
        let Some(name) = fn_name(&lines[k]) else {
            k += 1;
            continue;
        };
        let mut depth: i64 = 0;
        let mut opened = false;
        let mut j = k;
        while j < lines.len() {
            let l = &lines[j];
            depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
            opened |= l.contains('{');
            if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                break;
            }
            j += 1;
        }
        if opened {
            out.push((k, name, j - k + 1));
            k = j + 1;
        } else {
            k += 1;
        }
    }
    out
}

/// `fn NAME` at the start of a line (after `pub`, `pub(crate)`, `async`,
/// `const`, `unsafe`).
fn fn_name(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("pub(") {
            rest = r.split_once(')')?.1.trim_start();
        } else if let Some(r) = ["pub ", "async ", "const ", "unsafe "]
            .iter()
            .find_map(|k| rest.strip_prefix(k))
        {
            rest = r.trim_start();
        } else {
            break;
        }
    }
    let r = rest.strip_prefix("fn ")?;
    ident_at(r.trim_start()).map(str::to_string)
}

#[test]
fn the_checker_sees_what_it_must() {
    // A reference in a comment, a string or a test item is not an edge;
    // a grouped use, a path and a climbing `super::` are.
    let file = root().join("src/x/y.rs");
    let code = code_only(
        "// crate::a\nlet s = \"crate::b\";\n#[cfg(test)]\nmod tests { use crate::c; }\nuse crate::{d::E, f};\nfn g() { crate::h::i(); super::super::k::l(); let c = '\"'; crate::m::n(); }\n",
    );
    let got: Vec<String> = references(&file, &code).into_keys().collect();
    assert_eq!(got, ["d", "f", "h", "k", "m"]);
    let lines: Vec<String> = strip_literals("pub(crate) async fn long() {\n  let x = \"{\";\n}\n")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(functions(&lines), [(0, "long".to_string(), 3)]);
    let modules = vec!["bridge".to_string(), "overlay".to_string()];
    let code = code_only("use crate::drivers::{Registry, bridge::X};\n// drivers::overlay\nlet a = drivers::overlay::f();\nlet b = crate::drivers::Caps;\n");
    assert_eq!(
        driver_names_in(&code, &modules),
        [(1, "bridge".to_string()), (3, "overlay".to_string())]
    );
}
