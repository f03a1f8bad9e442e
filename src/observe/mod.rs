//! The kernel → [`Observed`]: netlink dumps of the host namespace and of every
//! namespace the topology owns, the files cnm wrote and its firewall
//! tables. Builds the same model the desired state uses, so the diff can
//! compare them. Reads only; decides ownership (see `namespaces`, `files`
//! and `host`), never changes anything.

pub mod borrowed;
pub mod classify;
mod files;
pub mod kernel;
mod links;
pub mod listeners;
mod read;
mod scoped;
mod system;

use crate::drivers::Registry;
use crate::model::{FileRes, Observed, State};
use crate::naming;
use crate::store::{StoreError, TopologyStore};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::errors::ObserveError;
pub use files::FILE_NAMES;
pub use scoped::observe_scoped;

/// Open netlink connections, reused by `apply` so each namespace gets one.
pub struct Connections {
    pub host: rtnetlink::Handle,
    pub sandboxes: BTreeMap<String, rtnetlink::Handle>,
}

/// Observe everything topology `store.name()` owns. `wanted`: the
/// sandboxes (sandbox → netns) the file asks for, so that paths it would
/// write are checked for things cnm must not touch before any change.
pub async fn observe(
    store: &TopologyStore,
    wanted: &BTreeMap<String, String>,
) -> Result<(Observed, Connections), ObserveError> {
    observe_with(Registry::builtin(), store, wanted).await
}

/// [`observe`], with the drivers of `reg` decoding link settings. Reads
/// the kernel (`read`), classifies what is the topology's (`classify`,
/// pure), then its files, firewall and sysctls.
pub async fn observe_with(
    reg: &Registry,
    store: &TopologyStore,
    wanted: &BTreeMap<String, String>,
) -> Result<(Observed, Connections), ObserveError> {
    observe_scoped(reg, store, wanted, &Scope::All).await
}

/// Whose namespaces (and files) observe reads. The host, firewall and
/// resolver are read as always; the state returned lacks what was not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    All,
    /// Only these sandboxes (verify: those the plan touched).
    Only(BTreeSet<String>),
    /// All but these (sandboxes trusted to be as applied).
    AllBut(BTreeSet<String>),
}

impl Scope {
    pub fn reads(&self, sandbox: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(s) => s.contains(sandbox),
            Scope::AllBut(s) => !s.contains(sandbox),
        }
    }
}

/// Sandbox records of a topology, as (sandbox → netns), for `exec`.
/// The namespaces `t`'s sandboxes borrow (`netns:`), found now, by
/// sandbox; in a multi-host file, those of this machine's sandboxes. A
/// `trusted` sandbox is not entered: its namespace is the one its record
/// names (its links and routes are left unread with it).
pub async fn borrowed(
    t: &crate::topology::Topology,
    trusted: &std::collections::BTreeSet<String>,
    store: &TopologyStore,
) -> BTreeMap<String, Result<crate::model::Target, String>> {
    let recorded = if trusted.is_empty() {
        BTreeMap::new()
    } else {
        store.namespaces().unwrap_or_default()
    };
    let mut out = BTreeMap::new();
    for sb in t.sandboxes.values() {
        let Some(r) = &sb.netns else { continue };
        if t.this_host.is_some() && sb.host != t.this_host {
            continue;
        }
        let as_recorded = recorded
            .get(&sb.name)
            .filter(|_| trusted.contains(&sb.name))
            .filter(|rec| rec.borrowed.as_deref() == Some(r.to_string().as_str()))
            .and_then(|rec| {
                let path = match r {
                    crate::topology::NetnsRef::Path(p) => p.clone(),
                    _ => crate::netns::path(&rec.netns),
                };
                Some(crate::model::Target {
                    path: path.display().to_string(),
                    ino: rec.ino?,
                    ..Default::default()
                })
            });
        let found = match as_recorded {
            Some(target) => Ok(target),
            None => crate::observe::borrowed::resolve(r).await,
        };
        out.insert(sb.name.clone(), found);
    }
    out
}

/// Read the sysctls `desired` sets in its sandboxes that `observed` has
/// not read yet (keys new in the file are not recorded).
pub fn wanted_sysctls(desired: &State, observed: &mut State) {
    let keys: BTreeMap<String, Vec<String>> = desired
        .namespaces
        .values()
        .filter(|n| !n.sysctls.is_empty())
        .map(|n| (n.sandbox.clone(), n.sysctls.keys().cloned().collect()))
        .collect();
    system::observe_sandbox_sysctls(observed, &keys);
}

pub fn sandbox_netns(store: &TopologyStore) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(store
        .namespaces()?
        .into_iter()
        .filter(|(s, r)| r.netns == naming::netns_name(store.name(), s))
        .map(|(s, r)| (s, r.netns))
        .collect())
}

/// The files cnm owns for a sandbox, from an observed state.
pub fn files_of<'a>(state: &'a State, sandbox: &'a str) -> impl Iterator<Item = &'a FileRes> {
    state.files.values().filter(move |f| f.sandbox == sandbox)
}
