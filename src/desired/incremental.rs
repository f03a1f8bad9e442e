//! A desired state built again after an edit reuses what the edit did not
//! touch (`cnm watch`, which plans the same topology over and over): each
//! sandbox's default routes and files are kept with the inputs they were
//! computed from, and reused while those inputs compare equal. Networks'
//! objects and the firewall are computed whole each time (one network's
//! objects depend on all of its endpoints).
//!
//! The inputs are compared by digest (of their `Hash`, or of their `Debug`
//! form for the few shared ones; file positions left out either way: an
//! edit above a sandbox moves its lines, not its meaning), so a field added
//! to any of them later is compared without anyone having to remember to. `tests/incremental.rs` checks over random edit sequences
//! that the state built this way equals the one built from scratch.

use crate::model::{FileRes, RouteRes};
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, BTreeSet};

/// What a previous build left to reuse. One per topology (a new name
/// starts over).
#[derive(Debug, Default)]
pub struct Incremental {
    /// The inputs every sandbox's part shares (see [`global_key`]).
    global: Key,
    parts: BTreeMap<String, Part>,
    /// Sandboxes whose part the last build reused and computed.
    pub(super) reused: usize,
    pub(super) computed: usize,
}

/// One sandbox's part of the desired state, with the inputs it came from.
#[derive(Debug)]
pub(super) struct Part {
    key: Key,
    pub(super) routes: Vec<((String, IpNetwork), RouteRes)>,
    pub(super) files: Vec<(String, FileRes)>,
}

impl Incremental {
    /// A build starts: parts computed under other shared inputs are dropped.
    pub(super) fn start(&mut self, global: Key) {
        if self.global != global {
            self.parts.clear();
            self.global = global;
        }
        self.reused = 0;
        self.computed = 0;
    }

    /// The part of `sandbox` if it was computed from `key`.
    pub(super) fn reuse(&mut self, sandbox: &str, key: Key) -> Option<&Part> {
        let hit = self.parts.get(sandbox).filter(|p| p.key == key);
        if hit.is_some() {
            self.reused += 1;
        }
        hit
    }

    pub(super) fn keep(
        &mut self,
        sandbox: &str,
        key: Key,
        routes: Vec<((String, IpNetwork), RouteRes)>,
        files: Vec<(String, FileRes)>,
    ) {
        self.computed += 1;
        self.parts
            .insert(sandbox.to_string(), Part { key, routes, files });
    }

    /// A build ended: sandboxes it did not see are forgotten.
    pub(super) fn finish(&mut self, seen: &BTreeSet<&str>) {
        self.parts.retain(|s, _| seen.contains(s.as_str()));
        tracing::debug!(
            reused = self.reused,
            computed = self.computed,
            "desired state: sandboxes' routes and files"
        );
    }

    /// How many sandboxes the last build reused and computed.
    pub fn counts(&self) -> (usize, usize) {
        (self.reused, self.computed)
    }
}

/// A digest of `value`'s `Debug` form without file positions (`Loc {
/// line: …, col: … }`), hashed as it is written (no text is kept: keys
/// are built for every sandbox of every build). 128 bits: two SipHash
/// states with different keys.
pub(super) fn unlocated(value: &impl std::fmt::Debug) -> Key {
    use std::fmt::Write;
    use std::hash::Hasher;
    let mut w = KeyWriter::default();
    // Writing into a hasher cannot fail.
    let _ = write!(w, "{value:?}");
    if matches!(w.state, Piece::SawLoc) {
        w.feed("Loc");
    }
    Key(w.a.finish(), w.b.finish())
}

/// A digest of `value`'s `Hash` (positions hash to nothing, see `Loc`):
/// the per-sandbox key, built for every sandbox of every build, where
/// formatting would cost as much as the part it saves.
pub(super) fn hashed(value: &impl std::hash::Hash) -> Key {
    use std::hash::Hasher;
    let mut w = KeyWriter::default();
    value.hash(&mut w.a);
    value.hash(&mut w.b.0);
    Key(w.a.finish(), w.b.finish())
}

/// See [`unlocated`] and [`hashed`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Key(u64, u64);

#[derive(Default)]
struct KeyWriter {
    a: std::collections::hash_map::DefaultHasher,
    b: Salted,
    state: Piece,
}

/// A second, independent hasher: the same one, fed a different prefix.
struct Salted(std::collections::hash_map::DefaultHasher);

impl Default for Salted {
    fn default() -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hasher::write(&mut h, b"cnm desired-state key");
        Salted(h)
    }
}

impl Salted {
    fn finish(&self) -> u64 {
        std::hash::Hasher::finish(&self.0)
    }
}

impl KeyWriter {
    fn feed(&mut self, s: &str) {
        use std::hash::Hasher;
        self.a.write(s.as_bytes());
        self.b.0.write(s.as_bytes());
    }
}

impl std::fmt::Write for KeyWriter {
    /// Derived `Debug` writes a struct as pieces: its name, then ` { `,
    /// fields, ` }`. A piece `Loc` followed by ` {` starts a position
    /// (its fields are numbers: no brace inside); a piece `Loc` followed
    /// by anything else was text (a name spelled `Loc`) and is kept.
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        match self.state {
            Piece::Skipping => {
                if let Some(end) = s.find('}') {
                    self.state = Piece::Text;
                    self.feed(&s[end + 1..]);
                }
            }
            Piece::SawLoc if s.starts_with(" {") => {
                self.state = Piece::Skipping;
                return self.write_str(&s[2..]);
            }
            Piece::SawLoc => {
                self.state = Piece::Text;
                self.feed("Loc");
                return self.write_str(s);
            }
            Piece::Text if s == "Loc" => self.state = Piece::SawLoc,
            Piece::Text => self.feed(s),
        }
        Ok(())
    }
}

/// Where [`KeyWriter`] is in a `Debug` text.
#[derive(Default)]
enum Piece {
    #[default]
    Text,
    /// A piece `Loc` was held back: a position, if ` {` follows.
    SawLoc,
    /// Inside a position, until its `}`.
    Skipping,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Loc;

    #[test]
    fn positions_are_left_out() {
        let a = unlocated(&(Loc { line: 3, col: 5 }, "x", Loc { line: 9, col: 1 }));
        let b = unlocated(&(Loc { line: 4, col: 7 }, "x", Loc::default()));
        assert_eq!(a, b);
        assert_ne!(a, unlocated(&(Loc::default(), "y", Loc::default())));
    }

    #[test]
    fn text_spelled_loc_is_kept() {
        // A network or host named `Loc` is content, not a position.
        assert_ne!(unlocated(&("Loc", 1)), unlocated(&("Loc", 2)));
        assert_ne!(unlocated(&["Loc", "a"]), unlocated(&["Loc", "b"]));
        assert_ne!(unlocated(&"Loc"), unlocated(&"Lo"));
    }
}
