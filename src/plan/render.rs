//! A plan as Terraform-like text.

use super::{Action, Op, Plan, Resource};
use std::fmt::Write as _;

impl Plan {
    /// Terraform-like text. `color` adds ANSI colours to the markers.
    pub fn render_text(&self, file: &str, color: bool) -> String {
        if self.actions.is_empty() {
            return format!("No changes. The kernel matches {file}.\n");
        }
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cnm will perform the following actions for topology {}:\n",
            self.topology
        );
        for a in &self.actions {
            let (sym, code) = match a.op {
                Op::Create => ("+", "32"),
                Op::Update => ("~", "33"),
                Op::Delete => ("-", "31"),
                Op::Replace => ("!", "35"),
            };
            let label = match (a.op, &a.before) {
                (Op::Delete, _) | (_, None) => a.resource.label(),
                (_, Some(b)) if b.label() != a.resource.label() && a.op == Op::Replace => {
                    format!("{} → {}", b.label(), a.resource.label())
                }
                _ => a.resource.label(),
            };
            let _ = write!(out, "  {} {}", paint(code, sym), label);
            let summary = a.resource.summary();
            if a.op == Op::Create && !summary.is_empty() {
                let _ = write!(out, ": {summary}");
            }
            if let Some(r) = &a.reason {
                let _ = write!(out, " ({r})");
            }
            out.push('\n');
            for c in &a.changes {
                let _ = writeln!(out, "      {}: {} → {}", c.field, c.old, c.new);
            }
            out.push_str(&details(a, &paint));
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "\nPlan: {} to add, {} to change, {} to destroy.",
            s.add, s.change, s.destroy
        );
        out
    }
}

/// What an update or create shows under its line: a file's changed lines,
/// a firewall's rules and elements.
fn details(a: &Action, paint: &dyn Fn(&str, &str) -> String) -> String {
    let mut out = String::new();
    match (a.op, &a.resource, &a.before) {
        (Op::Update, Resource::File(new), Some(Resource::File(old))) => {
            out.push_str(&content_diff(&old.content, &new.content, paint));
        }
        (Op::Update, Resource::Firewall(new), Some(Resource::Firewall(old))) => {
            for r in old.rules.iter().filter(|r| !new.rules.contains(r)) {
                let _ = writeln!(out, "        {}", paint("31", &format!("- {}", r.label)));
            }
            for r in new.rules.iter().filter(|r| !old.rules.contains(r)) {
                let _ = writeln!(out, "        {}", paint("32", &format!("+ {}", r.label)));
            }
            for (sign, color, line) in element_changes(old, new) {
                let _ = writeln!(out, "        {}", paint(color, &format!("{sign} {line}")));
            }
        }
        (Op::Create, Resource::Firewall(new), _) => {
            for r in &new.rules {
                let _ = writeln!(out, "        {}", paint("32", &format!("+ {}", r.label)));
            }
            let empty = crate::model::FirewallRes {
                maps: Vec::new(),
                ..new.clone()
            };
            for (sign, color, line) in element_changes(&empty, new) {
                let _ = writeln!(out, "        {}", paint(color, &format!("{sign} {line}")));
            }
        }
        _ => {}
    }
    out
}

/// Changed lines of a file, indented under its action.
fn content_diff(old: &str, new: &str, paint: &dyn Fn(&str, &str) -> String) -> String {
    let mut out = String::new();
    let diff = similar::TextDiff::from_lines(old, new);
    for change in diff.iter_all_changes() {
        let line = change.value().trim_end_matches('\n');
        match change.tag() {
            similar::ChangeTag::Delete => {
                let _ = writeln!(out, "        {}", paint("31", &format!("- {line}")));
            }
            similar::ChangeTag::Insert => {
                let _ = writeln!(out, "        {}", paint("32", &format!("+ {line}")));
            }
            similar::ChangeTag::Equal => {}
        }
    }
    out
}

/// Map elements `old` has and `new` does not ("-"), then the reverse
/// ("+"), by label; elements of one label (a port's address and port in two
/// maps) make one line.
fn element_changes(
    old: &crate::model::FirewallRes,
    new: &crate::model::FirewallRes,
) -> Vec<(&'static str, &'static str, String)> {
    let mut out: Vec<(&'static str, &'static str, String)> = Vec::new();
    let mut shown = std::collections::BTreeSet::new();
    let find =
        |f: &crate::model::FirewallRes, name: &str| f.maps.iter().find(|m| m.name == name).cloned();
    for (sign, color, from, to) in [("-", "31", old, new), ("+", "32", new, old)] {
        for m in &from.maps {
            let other = find(to, &m.name);
            for (k, v) in &m.elements {
                let line = m.describe(k, v);
                if other.as_ref().and_then(|o| o.elements.get(k)) != Some(v)
                    && shown.insert((sign, line.clone()))
                {
                    out.push((sign, color, line));
                }
            }
        }
    }
    out
}
