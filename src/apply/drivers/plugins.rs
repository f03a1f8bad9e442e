//! Finding plugins: where Docker looks, waiting for one that starts or
//! restarts, activating it for what it is needed as, and the plugins a
//! topology's records name.

use super::Role;
use crate::drivers::Registry;
use crate::plugins::{self, Patience, Plugin, PluginError, IPAM_DRIVER, NETWORK_DRIVER};
use crate::store::TopologyStore;
use serde_json::Value;
use std::collections::BTreeSet;

/// Where Docker finds legacy plugins, for a plugin named `name`.
pub fn plugin_paths(name: &str) -> Vec<String> {
    plugins::discovery::paths(name)
        .into_iter()
        .map(|p| p.display().to_string())
        .collect()
}

/// How long an apply waits for a plugin to appear, as Docker's lookup
/// does while a plugin starts (`CNM_PLUGIN_WAIT`, in seconds, changes it).
pub(super) fn plugin_wait() -> std::time::Duration {
    std::env::var("CNM_PLUGIN_WAIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs,
        )
}

/// Find and activate plugin `name`. An apply waits for it to appear, with
/// libnetwork's backoff, for up to [`plugin_wait`], first saying so on
/// standard error (`notice`); a plan does not wait. Returns what was
/// found and how long it waited.
pub(super) async fn find(
    name: &str,
    patience: Patience,
    notice: impl FnOnce(std::time::Duration),
) -> Result<(Option<Plugin>, std::time::Duration), PluginError> {
    let started = std::time::Instant::now();
    let deadline = started + plugin_wait();
    let mut notice = Some(notice);
    let mut backoff = std::time::Duration::from_secs(1);
    loop {
        let found = plugins::connect(name, patience).await?;
        let now = std::time::Instant::now();
        if found.is_some() || patience == Patience::Plan || now >= deadline {
            return Ok((found, started.elapsed()));
        }
        if let Some(say) = notice.take() {
            say(deadline - now);
        }
        tracing::info!(plugin = name, retry_in = ?backoff, "plugin not found yet");
        tokio::time::sleep(backoff.min(deadline - now)).await;
        backoff *= 2;
    }
}

/// " (did you mean 'bridge'?)" when `name` is close to a built-in driver
/// or to a plugin present where Docker looks (nothing otherwise).
pub(super) fn did_you_mean(reg: &Registry, name: &str, role: Role) -> String {
    let mut known: Vec<String> = match role {
        Role::Driver => reg.names().into_iter().map(str::to_string).collect(),
        Role::Ipam => vec!["default".to_string()],
    };
    known.extend(plugins::discovery::present());
    let known: Vec<&str> = known
        .iter()
        .map(String::as_str)
        .filter(|k| *k != name)
        .collect();
    crate::spec::closest(name, &known)
        .map(|k| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

/// The plugin implements what it is needed as; an IPAM plugin's default
/// local address space is asked once.
pub(super) async fn ready(mut p: Plugin, role: Role) -> Result<Plugin, PluginError> {
    let sub = role.subsystem();
    if !p.implements(sub) {
        return Err(PluginError::Discovery {
            plugin: p.name.clone(),
            message: format!(
                "found at {} but it does not implement {sub} (it implements: {})",
                p.via.display(),
                p.implements.join(", ")
            ),
        });
    }
    if role == Role::Ipam && !p.ipam_ready {
        // Docker registers an IPAM plugin that has no capabilities to tell.
        match p
            .call(IPAM_DRIVER, "GetCapabilities", None, "capabilities")
            .await
        {
            Ok(_) | Err(PluginError::NotImplemented { .. }) => {}
            Err(e) => return Err(e),
        }
        let spaces = p
            .call(
                IPAM_DRIVER,
                "GetDefaultAddressSpaces",
                None,
                "address spaces",
            )
            .await?;
        p.address_space = spaces
            .get("LocalDefaultAddressSpace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        p.ipam_ready = true;
    }
    Ok(p)
}

/// A network driver's scope (`GetCapabilities`): local or global.
pub(super) async fn scope(p: &Plugin) -> Result<String, PluginError> {
    let caps = p
        .call(NETWORK_DRIVER, "GetCapabilities", None, "capabilities")
        .await?;
    let scope = caps.get("Scope").and_then(Value::as_str).unwrap_or("");
    match scope {
        "local" | "global" => Ok(scope.to_string()),
        other => Err(PluginError::Protocol {
            plugin: p.name.clone(),
            call: "NetworkDriver.GetCapabilities".into(),
            message: format!("Scope '{other}' is neither local nor global"),
        }),
    }
}

/// Plugins the records of this topology mention (objects held, or
/// drivers of the applied file).
pub(super) fn recorded_plugins(store: &TopologyStore) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = store
        .plugin_objects()
        .unwrap_or_default()
        .into_values()
        .map(|o| o.plugin)
        .collect();
    out.extend(recorded_drivers(store));
    out.extend(recorded_network_values(store, |n| {
        n.get("ipam")?.get("driver")?.as_str().map(str::to_string)
    }));
    out
}

/// What `pick` finds in each network of the applied record's topology,
/// read in place (the record is neither copied nor decoded whole: it
/// lists every sandbox and endpoint too).
fn recorded_network_values(
    store: &TopologyStore,
    pick: impl Fn(&serde_json::Value) -> Option<String>,
) -> BTreeSet<String> {
    store
        .with_applied(|rec| {
            rec.topology
                .get("networks")
                .and_then(|n| n.as_object())
                .map(|nets| nets.values().filter_map(&pick).collect::<BTreeSet<_>>())
                .unwrap_or_default()
        })
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Network drivers the records say made this topology's networks and
/// endpoints (the applied file, and what endpoints noted, which survives a
/// first apply that failed before its record).
pub(super) fn recorded_drivers(store: &TopologyStore) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = store
        .learned()
        .unwrap_or_default()
        .into_values()
        .filter_map(|l| l.get(crate::drivers::LEARNED_DRIVER).cloned())
        .collect();
    out.extend(recorded_network_values(store, |n| {
        n.get("driver")?.as_str().map(str::to_string)
    }));
    out
}

/// The registry to destroy topology `store.name()` with: the plugins its
/// records name, reached if they can be. A plugin whose socket or spec
/// file is there but refuses (restarting) is waited for with libnetwork's
/// backoff, up to `plugin_wait`; one still unreachable then (or with no
/// file at all) is left out: what it holds is kept in the records (see
/// `exec`). Called without cnm's lock: waiting never holds it.
pub async fn for_destroy(reg: &Registry, store: &TopologyStore) -> Registry {
    let drivers = recorded_drivers(store);
    let mut out = reg.clone();
    for name in recorded_plugins(store)
        .into_iter()
        .filter(|n| reg.get(n).is_none() && reg.plugin(n).is_none())
        .filter(|n| crate::naming::valid_identifier(n, 64).is_ok())
    {
        let plugin = reach_restarting(&name).await;
        if drivers.contains(&name) {
            out = out.with_plugin_driver(&name, plugin.clone(), "local");
        }
        out = out.with_plugin(&name, plugin);
    }
    out
}

/// Plugin `name`, activated; waited for while its socket or spec file is
/// there but refuses.
async fn reach_restarting(name: &str) -> Option<Plugin> {
    let started = std::time::Instant::now();
    let deadline = started + plugin_wait();
    let mut backoff = std::time::Duration::from_secs(1);
    let mut said = false;
    loop {
        match plugins::connect(name, Patience::Plan).await {
            Ok(found) => return found,
            Err(e) => {
                let now = std::time::Instant::now();
                if !e.unreachable() || now >= deadline {
                    tracing::warn!("{e}");
                    return None;
                }
                if !said {
                    use std::io::Write as _;
                    let _ = writeln!(
                        std::io::stderr(),
                        "cnm: plugin {name} does not answer (restarting?); waiting up to {} s for it, as Docker does",
                        (deadline - now).as_secs_f64().round()
                    );
                    said = true;
                }
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(8));
            }
        }
    }
}

/// `reg` plus the plugins `names` (recorded, not in the file). Destroy
/// (`Patience::Plan`) reaches them if it can, else forgets what they hold
/// with a warning; an apply waits for them and stops before any change
/// without them (it would forget what they hold for good).
pub(super) async fn with_recorded(
    reg: &Registry,
    names: Vec<String>,
    drivers: &BTreeSet<String>,
    patience: Patience,
) -> Result<Registry, PluginError> {
    let mut out = reg.clone();
    for name in names {
        if crate::naming::valid_identifier(&name, 64).is_err() {
            continue;
        }
        let found = match patience {
            Patience::Apply => find(&name, patience, |left| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "cnm: plugin {name} holds objects of this topology and is not running yet; waiting up to {} s for it to start",
                    left.as_secs_f64().round()
                );
            })
            .await
            .map(|(p, _)| p),
            Patience::Plan => plugins::connect(&name, patience).await,
        };
        let plugin = match found {
            Ok(p) => p,
            Err(e) if patience == Patience::Plan => {
                tracing::warn!("{e}");
                None
            }
            Err(e) => return Err(e),
        };
        if plugin.is_none() && patience == Patience::Apply {
            return Err(PluginError::Discovery {
                plugin: name.clone(),
                message: "holds objects of this topology and is not running; start it (or `cnm destroy` forgets what it holds)".into(),
            });
        }
        if drivers.contains(&name) {
            out = out.with_plugin_driver(&name, plugin.clone(), "local");
        }
        out = out.with_plugin(&name, plugin);
    }
    Ok(out)
}
