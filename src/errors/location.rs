//! Errors located in the topology file.

use serde_saphyr::Spanned;
use std::fmt;

/// A position in the topology file (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub col: u64,
}

/// Hashes to nothing: a value's hash (the desired state's reuse keys)
/// names what it means, and an edit above it in the file moves its
/// position, not its meaning. Consistent with `Eq` (equal positions hash
/// equal; so do all others).
impl std::hash::Hash for Loc {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl<T> From<&serde_saphyr::Spanned<T>> for Loc {
    fn from(s: &serde_saphyr::Spanned<T>) -> Self {
        Loc {
            line: s.referenced.line(),
            col: s.referenced.column(),
        }
    }
}

/// What sort of problem a located error is (`kind` in `-o json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Not a topology file at all: not UTF-8, not YAML, empty, several
    /// documents.
    Syntax,
    /// A key the file format does not have.
    UnknownKey,
    /// A value that is not valid where it is, or with the rest.
    #[default]
    Invalid,
    /// The host refuses it: another topology holds it, a port is in use,
    /// a link, a kernel feature or a program is missing.
    Host,
    /// A driver or plugin that cannot be found or reached.
    Driver,
}

impl ErrorKind {
    /// Its name in `-o json` errors.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::UnknownKey => "unknown_key",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Host => "host",
            ErrorKind::Driver => "driver",
        }
    }
}

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Where in the file.
    pub loc: Loc,
    /// What is wrong, naming the object and key (`network front: ...`).
    pub message: String,
    /// The key path of what is wrong (`networks.front.subnet`), when the
    /// problem sits at a key or value of the file.
    pub key: Option<String>,
    /// What sort of problem it is.
    pub kind: ErrorKind,
}

impl Diagnostic {
    /// A problem of `kind` at `loc` (its key path filled in later).
    pub fn new(kind: ErrorKind, loc: Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            loc,
            message: message.into(),
            key: None,
            kind,
        }
    }
}

impl<T> From<&Spanned<T>> for Diagnostic {
    fn from(s: &Spanned<T>) -> Self {
        Diagnostic::new(ErrorKind::Invalid, s.into(), String::new())
    }
}

/// Every problem found in one file, sorted by position.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SpecError {
    /// The file name as given, for messages.
    pub file: String,
    /// The problems, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, d.loc.line, d.loc.col, d.message
            )?;
        }
        Ok(())
    }
}

/// A problem found while planning, located in the file when it can be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, .loc, .message))]
pub struct PlanError {
    pub file: String,
    pub loc: Option<Loc>,
    pub message: String,
    /// The key path of the file's key or value at `loc`, if any.
    pub key: Option<String>,
    /// What sort of problem it is.
    pub kind: ErrorKind,
}

impl PlanError {
    /// A problem of the file as a whole (or of the host).
    pub fn of_file(file: &str, message: impl Into<String>) -> PlanError {
        PlanError {
            file: file.to_string(),
            loc: None,
            message: message.into(),
            key: None,
            kind: ErrorKind::Invalid,
        }
    }

    /// The same problem, of `kind`.
    pub fn of_kind(mut self, kind: ErrorKind) -> PlanError {
        self.kind = kind;
        self
    }
}

fn render(file: &str, loc: &Option<Loc>, message: &str) -> String {
    match loc {
        Some(l) => format!("{file}:{}:{}: {message}", l.line, l.col),
        None => format!("{file}: {message}"),
    }
}
