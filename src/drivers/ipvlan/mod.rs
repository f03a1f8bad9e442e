//! ipvlan, Docker's driver of that name: not built into cnm yet. Its name
//! is known, so a file that names it is told why it cannot be planned:
//! the kernel's ipvlan support first (this machine kind has none), then
//! that cnm lacks the driver. Building it means a `Driver` here and its
//! line in [`super::Registry::builtin`] moving from `not_built` to
//! `drivers`.

use super::NotBuilt;

/// The driver's name and the Linux link kind its networks need.
pub(super) const IPVLAN: NotBuilt = NotBuilt {
    name: "ipvlan",
    link_kind: "ipvlan",
};
