//! The macvlan driver's options, with Docker's names: `parent` (the host
//! interface the endpoints share) and `macvlan_mode`.

use crate::drivers::{parent, DriverOptions, NetworkInput, Options};
use crate::topology::{Diagnostics, Loc, Network};
use netlink_packet_route::link::MacVlanMode;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacvlanOptions {
    /// The parent's name; empty only in a file that failed validation.
    pub parent: String,
    pub parent_loc: Loc,
    pub mode: Mode,
}

/// `macvlan_mode`: how endpoints on one parent reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Endpoints on the parent reach each other directly (Docker's default).
    Bridge,
    /// Endpoints on the parent never reach each other.
    Private,
    /// Traffic between endpoints goes out to the switch and back.
    Vepa,
    /// One endpoint takes over the parent.
    Passthru,
}

impl Mode {
    pub const NAMES: [&'static str; 4] = ["bridge", "private", "vepa", "passthru"];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Bridge => "bridge",
            Mode::Private => "private",
            Mode::Vepa => "vepa",
            Mode::Passthru => "passthru",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "bridge" => Mode::Bridge,
            "private" => Mode::Private,
            "vepa" => Mode::Vepa,
            "passthru" => Mode::Passthru,
            _ => return None,
        })
    }

    pub fn kernel(self) -> MacVlanMode {
        match self {
            Mode::Bridge => MacVlanMode::Bridge,
            Mode::Private => MacVlanMode::Private,
            Mode::Vepa => MacVlanMode::Vepa,
            Mode::Passthru => MacVlanMode::Passthrough,
        }
    }

    /// The name of a mode the kernel reports (`source` has no option).
    pub fn kernel_name(m: &MacVlanMode) -> String {
        match m {
            MacVlanMode::Bridge => "bridge".into(),
            MacVlanMode::Private => "private".into(),
            MacVlanMode::Vepa => "vepa".into(),
            MacVlanMode::Passthrough => "passthru".into(),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

impl DriverOptions for MacvlanOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn to_file(&self) -> BTreeMap<String, serde_json::Value> {
        let mut m = BTreeMap::new();
        m.insert("parent".into(), self.parent.clone().into());
        if self.mode != Mode::Bridge {
            m.insert("macvlan_mode".into(), self.mode.name().into());
        }
        m
    }
}

pub fn check(net: &NetworkInput<'_>, c: &mut Diagnostics) -> Options {
    let name = net.name;
    let mut o = MacvlanOptions {
        parent: String::new(),
        parent_loc: net.loc,
        mode: Mode::Bridge,
    };
    let mut has_parent = false;
    for (key, v) in &net.raw.options {
        match key.as_str() {
            "parent" => {
                has_parent = true;
                if let Some((parent, at)) = parent::parse(name, v, c) {
                    o.parent = parent;
                    o.parent_loc = at;
                }
            }
            "macvlan_mode" => match v.value.as_str().and_then(Mode::parse) {
                Some(m) => o.mode = m,
                None => c.err(
                    v,
                    format!(
                        "network {name}: options.macvlan_mode must be one of {}",
                        Mode::NAMES.join(", ")
                    ),
                ),
            },
            crate::drivers::DOCKER_MTU_OPTION => {}
            other => c.err(
                v,
                format!(
                    "network {name}: unknown macvlan option '{other}' (known: parent, macvlan_mode)"
                ),
            ),
        }
    }
    if !has_parent {
        parent::missing("macvlan", name, net.loc, c);
    }
    Options(Arc::new(o))
}

/// Docker's rule: one macvlan network per parent.
pub fn check_parents(nets: &[&Network], c: &mut Diagnostics) {
    parent::one_network_each(
        "macvlan",
        nets,
        |n| {
            n.options
                .get::<MacvlanOptions>()
                .map(|o| (o.parent.as_str(), o.parent_loc))
        },
        c,
    );
}
