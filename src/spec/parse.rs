//! Topology text to a validated topology: the YAML parser's budget, one
//! topology per file, and the parser's errors in the file's own terms.

use super::{keys, raw, validate, Diagnostic, Loc, SpecError, Topology, MAX_FILE_BYTES};
use crate::drivers::Registry;
use crate::errors::ErrorKind;

/// The parser's budget: generous for 10,000 endpoints and more, bounded
/// against documents that expand (aliases) or nest without end.
fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    if let Some(b) = o.budget.as_mut() {
        b.max_nodes = 2_000_000;
        b.max_events = 8_000_000;
        b.max_reader_input_bytes = Some(MAX_FILE_BYTES as usize);
    }
    o
}

/// Validate topology text with cnm's own drivers; `file` only names it in
/// messages.
pub fn parse(file: &str, text: &str) -> Result<Topology, SpecError> {
    parse_with(Registry::builtin(), file, text)
}

/// Validate topology text, the options of each network checked by its
/// driver in `reg`.
pub fn parse_with(reg: &Registry, file: &str, text: &str) -> Result<Topology, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError {
            file: file.to_string(),
            diagnostics: vec![Diagnostic::new(
                ErrorKind::Syntax,
                Loc { line: 1, col: 1 },
                "the file is empty; a topology starts with version: 1 and name:",
            )],
        });
    }
    if let Some(d) = several_topologies(text) {
        return Err(SpecError {
            file: file.to_string(),
            diagnostics: vec![d],
        });
    }
    // Every unknown key at once (serde stops at the first), and the key
    // path of every position, for the diagnostics below.
    let walked = keys::walk(text, &super::schema::schema(reg));
    let fail = |mut diagnostics: Vec<Diagnostic>| {
        for d in &mut diagnostics {
            if d.key.is_none() {
                d.key = walked.path_at(d.loc).map(str::to_string);
            }
        }
        SpecError {
            file: file.to_string(),
            diagnostics,
        }
    };
    if !walked.unknown.is_empty() {
        return Err(fail(walked.unknown.clone()));
    }
    let raw: raw::RawTopology =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
            let mut d = yaml_diagnostic(&e, text);
            // A syntax error: the key path of where the parser stopped.
            if let Some((loc, path)) = &walked.syntax {
                if *loc == d.loc {
                    d.key = path.clone();
                }
            }
            fail(vec![d])
        })?;
    let mut t = validate::validate(file, raw, reg).map_err(|e| fail(e.diagnostics))?;
    t.key_paths = std::sync::Arc::new(walked.paths);
    Ok(t)
}

/// A list of topologies (`cnm show -o json` without `--topology`) or
/// several YAML documents (`cnm show` without it): one file is one
/// topology.
fn several_topologies(text: &str) -> Option<Diagnostic> {
    let hint =
        "; cnm plans one topology per file: save one with cnm show --topology NAME (-o json)";
    let mut lines = text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let (first_no, first) = lines.next()?;
    if first.trim_start().starts_with('[') {
        return Some(Diagnostic::new(
            ErrorKind::Syntax,
            Loc {
                line: first_no as u64 + 1,
                col: 1,
            },
            format!("this file holds a list of topologies{hint}"),
        ));
    }
    let starts_with_marker = first.trim_end() == "---";
    lines
        .filter(|(_, l)| l.trim_end() == "---" || l.starts_with("--- "))
        .nth(usize::from(starts_with_marker).saturating_sub(1))
        .map(|(no, _)| {
            Diagnostic::new(
                ErrorKind::Syntax,
                Loc {
                    line: no as u64 + 1,
                    col: 1,
                },
                format!("this file holds several YAML documents{hint}"),
            )
        })
}

/// serde-saphyr renders "error: line L column C: MESSAGE" plus a snippet; keep
/// the message, in words a user of the file understands, with the key it
/// is about, and put the location in our own `file:line:col:` form.
fn yaml_diagnostic(e: &serde_saphyr::Error, text: &str) -> Diagnostic {
    let loc = e
        .location()
        .map(|l| Loc {
            line: l.line(),
            col: l.column(),
        })
        .unwrap_or(Loc { line: 1, col: 1 });
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML");
    let message = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("line "))
        .map(|(_, msg)| msg)
        .unwrap_or(first);
    let message = message.trim_end_matches(", set DuplicateKeyPolicy in Options if acceptable");
    let plain = plain_words(message);
    // A value of the wrong type: say which key it belongs to.
    let message = match key_at(text, loc) {
        Some(k) if plain != message => format!("{k}: {plain}"),
        _ => plain,
    };
    Diagnostic::new(ErrorKind::Syntax, loc, message)
}

/// The parser's messages about Rust types, said in the file's terms.
fn plain_words(m: &str) -> String {
    if m.starts_with("cannot deserialize null into") {
        return "a value is required here, not null (~)".into();
    }
    if let Some(t) = m.strip_prefix("invalid ") {
        match t {
            "u8" | "u16" | "u32" | "u64" | "usize" => {
                return "expected a whole number".into();
            }
            "i8" | "i16" | "i32" | "i64" => return "expected a number".into(),
            "bool" | "boolean" => return "expected true or false".into(),
            _ => {}
        }
    }
    m.replace("Option<String>", "a value")
        .replace("a string", "text")
        .replace("u32", "a whole number")
        .replace("u16", "a whole number")
}

/// The mapping key on the error's line, before its column (`name` in
/// `name: ~`), when there is one.
fn key_at(text: &str, loc: Loc) -> Option<String> {
    let line = text.lines().nth(loc.line.checked_sub(1)? as usize)?;
    let head: String = line
        .chars()
        .take(loc.col.saturating_sub(1) as usize)
        .collect();
    let key = head.rsplit([',', '{', '-']).next()?.trim();
    let key = key.strip_suffix(':')?.trim();
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)))
    .then(|| key.to_string())
}
