//! Problems found while reading a file, collected so that all of them are
//! reported at once, each located.

use super::{Diagnostic, Loc};
use serde_saphyr::Spanned;

/// Every problem found so far, each with its location.
#[derive(Debug, Default)]
pub struct Diagnostics {
    diags: Vec<Diagnostic>,
    /// Networks whose addressing (a subnet) was refused: what depends on
    /// it (an endpoint's address in that subnet) is not judged against it,
    /// so one mistake gives one error, not a cascade.
    broken: std::collections::BTreeSet<String>,
    /// Objects the file declares that were refused (kind → names): a
    /// reference to one is not "not defined", its own error says why.
    refused: std::collections::BTreeMap<&'static str, std::collections::BTreeSet<String>>,
}

impl Diagnostics {
    /// Every problem recorded, in file order, each once.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.diags.sort();
        self.diags.dedup();
        self.diags
    }

    /// Record a problem at `loc`.
    pub fn err(&mut self, loc: impl Into<Loc>, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(
            crate::errors::ErrorKind::Invalid,
            loc.into(),
            message,
        ));
    }

    /// Network `name`'s addressing was refused (see `broken`).
    pub fn addressing_broken(&mut self, name: &str) {
        self.broken.insert(name.to_string());
    }

    /// Whether network `name`'s addressing was refused.
    pub fn is_addressing_broken(&self, name: &str) -> bool {
        self.broken.contains(name)
    }

    /// Note which of the `declared` objects of `kind` were refused (not
    /// among `valid`).
    pub fn note_refused<'a, V>(
        &mut self,
        kind: &'static str,
        declared: impl IntoIterator<Item = &'a String>,
        valid: &std::collections::BTreeMap<String, V>,
    ) {
        let refused = self.refused.entry(kind).or_default();
        refused.extend(
            declared
                .into_iter()
                .filter(|n| !valid.contains_key(*n))
                .cloned(),
        );
    }

    /// Whether object `name` of `kind` is declared but was refused.
    pub fn is_refused(&self, kind: &str, name: &str) -> bool {
        self.refused.get(kind).is_some_and(|r| r.contains(name))
    }

    /// Whether any object of `kind` was refused.
    pub fn any_refused(&self, kind: &str) -> bool {
        self.refused.get(kind).is_some_and(|r| !r.is_empty())
    }

    /// Parse a located string, or record that it is not valid.
    pub fn parse<T: std::str::FromStr>(&mut self, s: &Spanned<String>, what: &str) -> Option<T> {
        match s.value.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(s, format!("{what}: '{}' is not valid", s.value));
                None
            }
        }
    }
}
