//! Drivers named in the file that are not built in: `validate` accepts any
//! name (it reads nothing but the file); `plan` decides, once per driver,
//! before anything else. A Linux link kind this cnm has no driver for yet
//! (ipvlan, macvlan) is probed in the kernel first, so the message says
//! what is really missing; any other name is looked up as a libnetwork
//! plugin where Docker looks.

use crate::desired::PlanError;
use crate::spec::{DriverKind, Topology};
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

pub async fn check(t: &Topology) -> Result<(), PlanError> {
    let mut seen = BTreeSet::new();
    for net in t
        .networks
        .values()
        .filter(|n| n.driver == DriverKind::Plugin)
    {
        if !seen.insert(net.driver_name.as_str()) {
            continue;
        }
        let name = net.driver_name.as_str();
        let err = |message: String| PlanError {
            file: t.file.clone(),
            loc: Some(net.driver_loc),
            message: format!("network {}: {message}", net.name),
        };
        if let Some(kind) = LINK_DRIVERS.iter().find(|k| **k == name) {
            let kinds: BTreeSet<&'static str> = [*kind].into();
            if let Some(missing) = super::prereq::probe(&kinds).await.first() {
                return Err(err(super::prereq::missing_kind(missing)));
            }
            return Err(err(format!(
                "driver '{name}' is not built into this cnm yet (built in: {})",
                DriverKind::BUILT_IN.join(", ")
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
            DriverKind::BUILT_IN.join(", "),
            paths.join(", ")
        )));
    }
    Ok(())
}
