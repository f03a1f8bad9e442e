//! The file's keys, walked with their positions before serde reads it:
//!
//! - every key the topology format does not have is reported in one run,
//!   with "did you mean" when a known key is close (serde stops at the
//!   first one);
//! - every position of a key or value gets its key path
//!   (`networks.front.subnet`), so a diagnostic carries its key as data;
//! - a syntax error gets the key path of where the parser was.
//!
//! Which keys exist is read from the topology's own JSON Schema
//! (`spec::schema`): objects there with `additionalProperties: false` list
//! every key they accept, so the schema and this check cannot disagree.
//! The walk uses the YAML parser serde-saphyr itself runs on
//! (granit-parser's events, with spans).

use super::{Diagnostic, Loc};
use granit_parser::{Event, Parser, Span};
use serde_json::Value;
use std::collections::BTreeMap;

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Position of each key and each value → its key path.
    pub paths: BTreeMap<Loc, String>,
    /// Keys the format does not have, each located, with a suggestion.
    pub unknown: Vec<Diagnostic>,
    /// Where the parser stopped on a syntax error, and the key path it
    /// was in there.
    pub syntax: Option<(Loc, Option<String>)>,
}

impl Walked {
    /// The key path of the key or value at `loc`.
    pub fn path_at(&self, loc: Loc) -> Option<&str> {
        self.paths.get(&loc).map(String::as_str)
    }
}

/// One open collection on the way down.
struct Frame<'s> {
    path: String,
    schema: Option<&'s Value>,
    kind: FrameKind,
}

enum FrameKind {
    /// A mapping; `key` is the key whose value comes next, if one was read.
    Map { key: Option<String> },
    /// A sequence, at its `n`th item.
    Seq { n: usize },
    /// Inside a key that is itself a collection (not in this format).
    Skip,
}

/// Walk `text` against `schema` (the topology's JSON Schema).
pub fn walk(text: &str, schema: &Value) -> Walked {
    let mut out = Walked::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    // The whole document's root is the schema's root.
    let root = Frame {
        path: String::new(),
        schema: Some(schema),
        kind: FrameKind::Seq { n: 0 },
    };
    let mut at_root = true;
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(e) => e,
            Err(e) => {
                let m = e.marker();
                let loc = Loc {
                    line: m.line() as u64,
                    col: m.col() as u64 + 1,
                };
                let path = stack
                    .last()
                    .map(|f| f.path.clone())
                    .filter(|p| !p.is_empty());
                out.syntax = Some((loc, path));
                break;
            }
        };
        let loc = loc_of(&span);
        match event {
            Event::MappingStart(..)
            | Event::SequenceStart(..)
            | Event::Scalar(..)
            | Event::Alias(_) => {
                let node = if at_root && stack.is_empty() {
                    at_root = false;
                    Some((root.path.clone(), root.schema))
                } else {
                    place(&mut stack, &event, loc, &mut out)
                };
                let open = matches!(event, Event::MappingStart(..) | Event::SequenceStart(..));
                if !open {
                    continue;
                }
                let frame = match node {
                    Some((path, schema)) => Frame {
                        path,
                        schema,
                        kind: if matches!(event, Event::MappingStart(..)) {
                            FrameKind::Map { key: None }
                        } else {
                            FrameKind::Seq { n: 0 }
                        },
                    },
                    None => Frame {
                        path: stack.last().map(|f| f.path.clone()).unwrap_or_default(),
                        schema: None,
                        kind: FrameKind::Skip,
                    },
                };
                stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    out
}

/// A node (a key, or a value) inside the innermost open collection:
/// record its path and, for a key, whether the format has it. Returns the
/// path and schema of a value; `None` for a key (or anything in a skipped
/// part).
fn place<'s>(
    stack: &mut [Frame<'s>],
    event: &Event,
    loc: Loc,
    out: &mut Walked,
) -> Option<(String, Option<&'s Value>)> {
    let frame = stack.last_mut()?;
    match &mut frame.kind {
        FrameKind::Skip => None,
        FrameKind::Seq { n } => {
            let path = format!("{}[{n}]", frame.path);
            *n += 1;
            out.paths.insert(loc, path.clone());
            Some((path, frame.schema.and_then(items)))
        }
        FrameKind::Map { key } => match key.take() {
            None => {
                let name = match event {
                    Event::Scalar(v, ..) => v.to_string(),
                    // A collection as a key: nothing of this format.
                    _ => "?".to_string(),
                };
                let path = join(&frame.path, &name);
                out.paths.insert(loc, path.clone());
                if let Some(known) = frame.schema.and_then(known_keys) {
                    if !known.contains(&name.as_str()) {
                        out.unknown
                            .push(unknown_key(loc, &frame.path, &name, &known));
                    }
                }
                *key = Some(name);
                None
            }
            Some(name) => {
                let path = join(&frame.path, &name);
                out.paths.insert(loc, path.clone());
                Some((path, frame.schema.and_then(|s| child(s, &name))))
            }
        },
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn loc_of(span: &Span) -> Loc {
    Loc {
        line: span.start.line() as u64,
        col: span.start.col() as u64 + 1,
    }
}

/// `path: unknown key 'subnett'; did you mean 'subnet'?`
fn unknown_key(loc: Loc, path: &str, name: &str, known: &[&str]) -> Diagnostic {
    let whose = if path.is_empty() {
        "the topology".to_string()
    } else {
        path.to_string()
    };
    let mut message = format!("{whose}: unknown key '{name}'");
    match closest(name, known) {
        Some(k) => message.push_str(&format!("; did you mean '{k}'?")),
        None => message.push_str(&format!("; known keys: {}", known.join(", "))),
    }
    Diagnostic {
        key: Some(join(path, name)),
        ..Diagnostic::new(crate::errors::ErrorKind::UnknownKey, loc, message)
    }
}

/// The known word nearest to `word`, when it is near enough to be the one
/// meant (a typo: a few letters off, or swapped).
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).clamp(1, 3))
        .min()
        .map(|(_, k)| k)
}

/// The alternatives a schema stands for (`anyOf`, `oneOf`, `allOf` and
/// the `then` of a conditional, flattened), itself first.
fn alternatives(schema: &Value) -> Vec<&Value> {
    let mut out = vec![schema];
    let mut i = 0;
    while i < out.len() {
        let s = out[i];
        for k in ["anyOf", "oneOf", "allOf"] {
            if let Some(list) = s.get(k).and_then(Value::as_array) {
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

/// Every key an object of this schema may have, when it says it accepts
/// no other (`additionalProperties: false`).
fn known_keys(schema: &Value) -> Option<Vec<&str>> {
    let alts = alternatives(schema);
    let closed = alts
        .iter()
        .any(|a| a.get("additionalProperties") == Some(&Value::Bool(false)));
    if !closed {
        return None;
    }
    let mut keys: Vec<&str> = alts
        .iter()
        .filter_map(|a| a.get("properties").and_then(Value::as_object))
        .flat_map(|p| p.keys().map(String::as_str))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    Some(keys)
}

/// The schema of the value at `key` of an object of this schema.
fn child<'s>(schema: &'s Value, key: &str) -> Option<&'s Value> {
    let alts = alternatives(schema);
    alts.iter()
        .find_map(|a| a.get("properties").and_then(|p| p.get(key)))
        .or_else(|| {
            alts.iter()
                .find_map(|a| a.get("additionalProperties").filter(|v| v.is_object()))
        })
}

/// The schema of a sequence's items.
fn items(schema: &Value) -> Option<&Value> {
    alternatives(schema)
        .into_iter()
        .find_map(|a| a.get("items"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        crate::spec::schema::schema(crate::drivers::Registry::builtin())
    }

    #[test]
    fn every_unknown_key_is_reported_with_a_suggestion() {
        let text = "version: 1\nname: t\nnetworks:\n  n: { subnett: 10.1.0.0/24, drivr: bridge }\nsandboxes:\n  s: { hostnme: x }\nendpoints:\n  e: { netwrok: n, sandbox: s }\nzzz: 1\n";
        let w = walk(text, &schema());
        let got: Vec<(u64, u64, &str)> = w
            .unknown
            .iter()
            .map(|d| (d.loc.line, d.loc.col, d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (4, 8, "networks.n: unknown key 'subnett'; did you mean 'subnet'?"),
                (4, 30, "networks.n: unknown key 'drivr'; did you mean 'driver'?"),
                (6, 8, "sandboxes.s: unknown key 'hostnme'; did you mean 'hostname'?"),
                (8, 8, "endpoints.e: unknown key 'netwrok'; did you mean 'network'?"),
                (
                    9,
                    1,
                    "the topology: unknown key 'zzz'; known keys: dns, endpoints, hosts, name, networks, sandboxes, version"
                ),
            ]
        );
        assert_eq!(
            w.path_at(Loc { line: 8, col: 29 }),
            Some("endpoints.e.sandbox")
        );
    }

    #[test]
    fn paths_of_values_and_syntax_errors() {
        let text =
            "version: 1\nname: t\nnetworks:\n  n:\n    subnet: 10.1.0.0/24\n   driver: bridge\n";
        let w = walk(text, &schema());
        assert_eq!(
            w.path_at(Loc { line: 5, col: 13 }),
            Some("networks.n.subnet")
        );
        let (loc, path) = w.syntax.expect("a syntax error");
        assert_eq!(loc, Loc { line: 6, col: 4 });
        // `driver` is not indented as n's keys are: the parser is back in
        // the networks when it finds it.
        assert_eq!(path.as_deref(), Some("networks"));
        assert!(w.unknown.is_empty());
    }

    #[test]
    fn options_and_ports_are_left_to_their_checks() {
        let text = "version: 1\nname: t\nnetworks:\n  n: { options: { whatever: 1 } }\nendpoints:\n  e: { network: n, sandbox: s, ports: [{ target: 80, publishd: 8080 }] }\n";
        let w = walk(text, &schema());
        assert_eq!(w.unknown.len(), 1, "{:?}", w.unknown);
        assert!(w.unknown[0].message.contains("did you mean 'published'"));
        let col = text
            .lines()
            .nth(5)
            .and_then(|l| l.find("{ target"))
            .unwrap_or(0) as u64
            + 1;
        assert_eq!(
            w.path_at(Loc { line: 6, col }),
            Some("endpoints.e.ports[0]")
        );
    }
}
