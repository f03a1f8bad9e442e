//! Drivers named in the file, checked while planning, before anything
//! else: `validate` accepts any name (it reads nothing but the file); a
//! driver in the registry is checked against the host (its parent link
//! exists, ...); a Linux link kind cnm has no driver for yet is probed in
//! the kernel first, so the message says what is really missing; any
//! other name is looked up as a libnetwork plugin where Docker looks.

use crate::desired::PlanError;
use crate::drivers::Registry;
use crate::model::HostFacts;
use crate::spec::Topology;
use std::collections::BTreeSet;
use std::path::Path;

/// Docker's Linux link kinds behind drivers of the same name.
const LINK_DRIVERS: [&str; 2] = ["ipvlan", "macvlan"];

/// Where Docker finds legacy plugins, for a plugin named `name`.
pub fn plugin_paths(name: &str) -> Vec<String> {
    vec![
        format!("/run/docker/plugins/{name}.sock"),
        format!("/run/docker/plugins/{name}/{name}.sock"),
        format!("/etc/docker/plugins/{name}.spec"),
        format!("/etc/docker/plugins/{name}.json"),
        format!("/usr/lib/docker/plugins/{name}.spec"),
        format!("/usr/lib/docker/plugins/{name}.json"),
    ]
}

/// Every network's driver is one cnm has, once per unknown name.
pub async fn check(reg: &Registry, t: &Topology) -> Result<(), PlanError> {
    let mut seen = BTreeSet::new();
    for net in t.networks.values().filter(|n| reg.get(&n.driver).is_none()) {
        if !seen.insert(net.driver.as_str()) {
            continue;
        }
        let name = net.driver.as_str();
        let err = |message: String| PlanError {
            file: t.file.clone(),
            loc: Some(net.driver_loc),
            message: format!("network {}: {message}", net.name),
        };
        if let Some(kind) = LINK_DRIVERS.iter().find(|k| **k == name) {
            let kinds: BTreeSet<String> = [kind.to_string()].into();
            if let Some(missing) = super::prereq::probe(&kinds).await.first() {
                return Err(err(super::prereq::missing_kind(missing)));
            }
            return Err(err(format!(
                "driver '{name}' is not built into this cnm yet (built in: {})",
                reg.names().join(", ")
            )));
        }
        let paths = plugin_paths(name);
        if paths.iter().any(|p| Path::new(p).exists()) {
            return Err(err(format!(
                "driver '{name}' is a libnetwork plugin; this cnm does not speak the plugin protocol yet"
            )));
        }
        return Err(err(format!(
            "driver '{name}' is neither built in ({}) nor a plugin: looked for {}",
            reg.names().join(", "),
            paths.join(", ")
        )));
    }
    Ok(())
}

/// What each driver needs of the host (a parent link, ...).
pub fn check_host(reg: &Registry, t: &Topology, facts: &HostFacts) -> Result<(), PlanError> {
    for net in t.networks.values() {
        if let Some(d) = reg.get(&net.driver) {
            d.check_host(net, facts)
                .map_err(|(loc, message)| PlanError {
                    file: t.file.clone(),
                    loc: Some(loc),
                    message: format!("network {}: {message}", net.name),
                })?;
        }
    }
    Ok(())
}
