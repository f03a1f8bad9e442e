//! Drivers and IPAM plugins named in the file, found while planning,
//! before anything else: `validate` accepts any name (it reads nothing but
//! the file); a driver in the registry is checked against the host (its
//! parent link exists, ...); any other name is a libnetwork plugin, found
//! where Docker looks and activated. A plugin that cannot be reached is fatal to
//! `apply` (before any change) but not to `plan` or `destroy` when the
//! records know it: they work from the records, with a warning.

mod plugins;

use super::ApplyError;
use crate::drivers::Registry;
use crate::errors::{ErrorKind, PlanError};
use crate::model::HostFacts;
use crate::plugins::{Patience, Plugin, IPAM_DRIVER, NETWORK_DRIVER};
use crate::spec::{Loc, Topology};
use crate::store::TopologyStore;
use plugins::{did_you_mean, find, ready, recorded_plugins, scope, with_recorded};
use std::collections::BTreeSet;
use std::time::Duration;

pub use plugins::{for_destroy, plugin_paths};

/// What a plugin is needed as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Driver,
    Ipam,
}

impl Role {
    fn subsystem(self) -> &'static str {
        match self {
            Role::Driver => NETWORK_DRIVER,
            Role::Ipam => IPAM_DRIVER,
        }
    }
}

/// `reg` plus every plugin `t` names (drivers and IPAM), found and
/// activated; errors located at the name in the file.
pub async fn resolve(
    reg: &Registry,
    t: &Topology,
    store: &TopologyStore,
    patience: Patience,
) -> Result<Registry, ApplyError> {
    let recorded = recorded_plugins(store);
    let mut out = reg.clone();
    let mut seen = BTreeSet::new();
    for (name, role, loc, network) in wanted(reg, t) {
        if !seen.insert((name, role == Role::Driver)) {
            continue;
        }
        let err = |message: String| {
            PlanError::at(t, loc, format!("network {network}: {message}"))
                .of_kind(ErrorKind::Driver)
        };
        let known = recorded.contains(name);
        let plugin = found(&out, reg, (name, role, network), known, patience)
            .await
            .map_err(err)?;
        out = register(out, name, role, plugin).await.map_err(err)?;
    }
    // Plugins the records name and the file no longer does: what they hold
    // is to be given back.
    let rest: Vec<String> = recorded
        .iter()
        .filter(|n| out.get(n).is_none() && out.plugin(n).is_none())
        .cloned()
        .collect();
    // A plan (`Patience::Plan`) goes on from the records without them.
    with_recorded(&out, rest, &plugins::recorded_drivers(store), patience)
        .await
        .map_err(|e| ApplyError::Plan(PlanError::of_file(&t.file, e.to_string())))
}

/// The names `t` gives that are not built-in drivers: (name, role, where,
/// network).
fn wanted<'a>(reg: &Registry, t: &'a Topology) -> Vec<(&'a str, Role, Loc, &'a str)> {
    let mut wanted = Vec::new();
    for net in t.networks.values() {
        if reg.get(&net.driver).is_none() {
            wanted.push((
                net.driver.as_str(),
                Role::Driver,
                net.driver_loc,
                net.name.as_str(),
            ));
        }
        if let Some(i) = &net.ipam {
            wanted.push((i.driver.as_str(), Role::Ipam, i.loc, net.name.as_str()));
        }
    }
    wanted
}

/// Plugin `name`, needed as `role` by `network`: found (one plugin may be
/// both a driver and an IPAM: found once) and ready for that role; `None`
/// when a plan may go on from the records (`known`) without it. An apply
/// waits for it to appear, as Docker's lookup does, and says so at once.
async fn found(
    out: &Registry,
    reg: &Registry,
    (name, role, network): (&str, Role, &str),
    known: bool,
    patience: Patience,
) -> Result<Option<Plugin>, String> {
    let hint = did_you_mean(reg, name, role);
    let found = match out.plugin(name).flatten() {
        Some(p) => Ok((Some(p.clone()), Duration::ZERO)),
        None => {
            find(name, patience, |left| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "cnm: network {network}: no driver or plugin named '{name}' yet{hint}; waiting up to {} s for plugin {name} to start, as Docker does",
                    left.as_secs_f64().round(),
                );
            })
            .await
        }
    };
    let waited = |d: Duration| match d.as_secs_f64().round() as u64 {
        0 => String::new(),
        s => format!("; waited {s} s"),
    };
    let looked = || plugin_paths(name).join(", ");
    let plugin = match found {
        Ok((Some(p), _)) => p,
        Ok((None, _)) if known && patience == Patience::Plan => return Ok(unreachable(name)),
        Err(e) if e.unreachable() && known && patience == Patience::Plan => {
            tracing::debug!("{e}");
            return Ok(unreachable(name));
        }
        Ok((None, d)) if known => {
            return Err(format!(
                "plugin {name}, which the records of this topology name, is not running{}; looked for {}",
                waited(d),
                looked()
            ));
        }
        Ok((None, d)) => {
            let what = match role {
                Role::Driver => format!(
                    "driver '{name}' is neither built in ({}) nor a plugin",
                    reg.names().join(", ")
                ),
                Role::Ipam => format!("ipam driver '{name}' is not a plugin"),
            };
            return Err(format!(
                "{what}{hint}{}; looked for {}",
                waited(d),
                looked()
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    ready(plugin, role)
        .await
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A plugin a plan goes on without, from what the records say of it.
fn unreachable(name: &str) -> Option<Plugin> {
    tracing::warn!("plugin {name} is not reachable; planning from what cnm recorded of it");
    None
}

/// `out` with plugin `name` as `role` (a network driver with its scope).
async fn register(
    mut out: Registry,
    name: &str,
    role: Role,
    plugin: Option<Plugin>,
) -> Result<Registry, String> {
    if role == Role::Driver {
        let scope = match &plugin {
            Some(p) => scope(p).await.map_err(|e| e.to_string())?,
            None => "local".to_string(),
        };
        out = out.with_plugin_driver(name, plugin.clone(), &scope);
    }
    let merged = match (out.plugin(name).flatten(), plugin) {
        (Some(old), Some(mut new)) => {
            new.address_space = new.address_space.or(old.address_space.clone());
            Some(new)
        }
        (old, new) => new.or(old.cloned()),
    };
    Ok(out.with_plugin(name, merged))
}

/// What each driver wants a user to know about the host (a parent link
/// that is down), as warnings.
pub fn host_warnings(reg: &Registry, t: &Topology, facts: &HostFacts) -> Vec<String> {
    t.networks
        .values()
        .filter_map(|net| Some(reg.get(&net.driver)?.host_warnings(net, facts)))
        .flatten()
        .collect()
}

/// What each driver needs of the host (a parent link, ...).
pub fn check_host(reg: &Registry, t: &Topology, facts: &HostFacts) -> Result<(), PlanError> {
    for net in t.networks.values() {
        if let Some(d) = reg.get(&net.driver) {
            d.check_host(net, facts).map_err(|(loc, message)| {
                PlanError::at(t, loc, format!("network {}: {message}", net.name))
                    .of_kind(ErrorKind::Host)
            })?;
        }
    }
    Ok(())
}
