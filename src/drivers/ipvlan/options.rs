//! The ipvlan driver's options, with Docker's names: `parent` (the host
//! interface the endpoints share), `ipvlan_mode` and `ipvlan_flag`.

use crate::drivers::{parent, DriverOptions, NetworkInput, Options};
use crate::topology::{Diagnostics, Loc, Network};
use netlink_packet_route::link::{IpVlanFlags, IpVlanMode};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvlanOptions {
    /// The parent's name; empty only in a file that failed validation.
    pub parent: String,
    pub parent_loc: Loc,
    pub mode: Mode,
    pub flag: Flag,
}

/// `ipvlan_mode`: at which layer the parent passes endpoints' traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Switched: endpoints are on the parent's segment (Docker's default).
    L2,
    /// Routed by the parent: no broadcast, no gateway.
    L3,
    /// As l3, with the host's netfilter seeing the traffic.
    L3s,
}

/// `ipvlan_flag`: whether endpoints on one parent reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// They do, inside the parent (Docker's default).
    Bridge,
    /// They never do.
    Private,
    /// Through the switch only.
    Vepa,
}

impl Mode {
    pub const NAMES: [&'static str; 3] = ["l2", "l3", "l3s"];

    pub fn name(self) -> &'static str {
        match self {
            Mode::L2 => "l2",
            Mode::L3 => "l3",
            Mode::L3s => "l3s",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "l2" => Mode::L2,
            "l3" => Mode::L3,
            "l3s" => Mode::L3s,
            _ => return None,
        })
    }

    pub fn kernel(self) -> IpVlanMode {
        match self {
            Mode::L2 => IpVlanMode::L2,
            Mode::L3 => IpVlanMode::L3,
            Mode::L3s => IpVlanMode::L3S,
        }
    }

    /// The name of a mode the kernel reports.
    pub fn kernel_name(m: &IpVlanMode) -> String {
        match m {
            IpVlanMode::L2 => "l2".into(),
            IpVlanMode::L3 => "l3".into(),
            IpVlanMode::L3S => "l3s".into(),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

impl Flag {
    pub const NAMES: [&'static str; 3] = ["bridge", "private", "vepa"];

    pub fn name(self) -> &'static str {
        match self {
            Flag::Bridge => "bridge",
            Flag::Private => "private",
            Flag::Vepa => "vepa",
        }
    }

    pub fn parse(s: &str) -> Option<Flag> {
        Some(match s {
            "bridge" => Flag::Bridge,
            "private" => Flag::Private,
            "vepa" => Flag::Vepa,
            _ => return None,
        })
    }

    pub fn kernel(self) -> IpVlanFlags {
        match self {
            Flag::Bridge => IpVlanFlags::empty(),
            Flag::Private => IpVlanFlags::Private,
            Flag::Vepa => IpVlanFlags::Vepa,
        }
    }

    /// The name of the flags the kernel reports (no flag: bridge).
    pub fn kernel_name(f: &IpVlanFlags) -> &'static str {
        if f.contains(IpVlanFlags::Private) {
            "private"
        } else if f.contains(IpVlanFlags::Vepa) {
            "vepa"
        } else {
            "bridge"
        }
    }
}

impl DriverOptions for IpvlanOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn to_file(&self) -> BTreeMap<String, serde_json::Value> {
        let mut m = BTreeMap::new();
        m.insert("parent".into(), self.parent.clone().into());
        if self.mode != Mode::L2 {
            m.insert("ipvlan_mode".into(), self.mode.name().into());
        }
        if self.flag != Flag::Bridge {
            m.insert("ipvlan_flag".into(), self.flag.name().into());
        }
        m
    }
}

pub fn check(net: &NetworkInput<'_>, c: &mut Diagnostics) -> Options {
    let name = net.name;
    let mut o = IpvlanOptions {
        parent: String::new(),
        parent_loc: net.loc,
        mode: Mode::L2,
        flag: Flag::Bridge,
    };
    let mut has_parent = false;
    for (key, v) in &net.raw.options {
        let text = v.value.as_str();
        match key.as_str() {
            "parent" => {
                has_parent = true;
                if let Some((parent, at)) = parent::parse(name, v, c) {
                    o.parent = parent;
                    o.parent_loc = at;
                }
            }
            "ipvlan_mode" => match text.and_then(Mode::parse) {
                Some(m) => o.mode = m,
                None => c.err(v, one_of(name, key, &Mode::NAMES)),
            },
            "ipvlan_flag" => match text.and_then(Flag::parse) {
                Some(f) => o.flag = f,
                None => c.err(v, one_of(name, key, &Flag::NAMES)),
            },
            crate::drivers::DOCKER_MTU_OPTION => {}
            other => c.err(
                v,
                format!(
                    "network {name}: unknown ipvlan option '{other}' (known: parent, ipvlan_mode, ipvlan_flag)"
                ),
            ),
        }
    }
    if !has_parent {
        parent::missing("ipvlan", name, net.loc, c);
    }
    Options(Arc::new(o))
}

fn one_of(network: &str, key: &str, names: &[&str]) -> String {
    format!(
        "network {network}: options.{key} must be one of {}",
        names.join(", ")
    )
}

/// Docker's rule: one ipvlan network per parent.
pub fn check_parents(nets: &[&Network], c: &mut Diagnostics) {
    parent::one_network_each(
        "ipvlan",
        nets,
        |n| {
            n.options
                .get::<IpvlanOptions>()
                .map(|o| (o.parent.as_str(), o.parent_loc))
        },
        c,
    );
}
