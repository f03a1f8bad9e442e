//! cni, networks delegated to CNI plugins: not built into cnm yet. Its
//! name is known, so a file that names it is told so by plan (it is not
//! looked for as a libnetwork plugin). Building it means a `Driver` here
//! and its line in [`super::Registry::builtin`] moving from `not_built`
//! to `drivers`.

use super::NotBuilt;

/// The driver's name; no link kind of its own (its plugins make links).
pub(super) const CNI: NotBuilt = NotBuilt {
    name: "cni",
    link_kind: None,
};
