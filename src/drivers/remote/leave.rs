//! Taking an endpoint away from its plugin: Revoke, Leave,
//! DeleteEndpoint, its interface back to the host in between.

use super::join::{ids, Ids};
use super::moves::move_out;
use super::{PORTS, SRC_NAME, STATE};
use crate::drivers::{Kernel, Learned};
use crate::model::{EndpointRes, Link};
use crate::naming::{self, MarkKind};
use crate::netlink::{dump_links, index_of};
use crate::plugins::{Plugin, PluginError, NETWORK_DRIVER};
use serde_json::json;

/// Take endpoint `e` away from `plugin`: Revoke (if ports were
/// programmed), its interface back to the host under its own name, Leave,
/// DeleteEndpoint. The plugin's answers are warnings: destroy completes.
/// Returns false when the plugin could not be reached for DeleteEndpoint
/// (it may still hold the endpoint).
pub(super) async fn delete(
    plugin: &Plugin,
    e: &EndpointRes,
    k: &dyn Kernel,
    learned: &Learned,
) -> bool {
    let id = ids(k, e);
    let back = async {
        if let Some(src) = learned.get(SRC_NAME) {
            if let Err(err) = move_out(e, k, src).await {
                tracing::debug!(endpoint = %e.endpoint, "interface left in its sandbox: {err}");
            }
        }
    };
    let released = release_then(plugin, &id, learned, false, back).await;
    // A plugin that left the interface behind: it carries cnm's mark.
    if let Some(src) = learned.get(SRC_NAME) {
        let mark = naming::mark(k.topology(), MarkKind::Endpoint, &e.endpoint);
        if let Ok(idx) = index_of(k.host(), src).await {
            let marked = dump_links(k.host()).await.ok().and_then(|all| {
                all.iter()
                    .map(Link::from_msg)
                    .find(|l| l.index == idx && l.alias.as_deref() == Some(mark.as_str()))
            });
            if marked.is_some() {
                let _ = k.host().link().del(idx).execute().await;
            }
        }
    }
    released
}

/// Revoke (when programmed), Leave, DeleteEndpoint; failures are
/// warnings (`quiet`: debug only, for cleaning up an earlier incarnation).
/// Between Leave and DeleteEndpoint the interface goes back to the host
/// under its own name, as Docker does.
pub(super) async fn release(plugin: &Plugin, id: &Ids, learned: &Learned, quiet: bool) {
    release_then(plugin, id, learned, quiet, async {}).await;
}

async fn release_then(
    plugin: &Plugin,
    id: &Ids,
    learned: &Learned,
    quiet: bool,
    after_leave: impl std::future::Future<Output = ()>,
) -> bool {
    let ids = json!({ "NetworkID": id.network, "EndpointID": id.endpoint });
    let mut calls = Vec::new();
    if learned.contains_key(PORTS) {
        calls.push("RevokeExternalConnectivity");
    }
    // Noted before CreateEndpoint and recorded after Join: an endpoint
    // still "creating" after a crash may have been joined too.
    if learned.get(STATE).is_some_and(|s| s != "created") || !quiet {
        calls.push("Leave");
    }
    let mut after_leave = Some(after_leave);
    for call in calls {
        match plugin
            .call(NETWORK_DRIVER, call, Some(&ids), &id.what)
            .await
        {
            Ok(_) | Err(PluginError::NotImplemented { .. }) => {}
            Err(err) if quiet => tracing::debug!("{err}"),
            Err(err) => tracing::warn!("{err}"),
        }
        if call == "Leave" {
            if let Some(f) = after_leave.take() {
                f.await;
            }
        }
    }
    if let Some(f) = after_leave.take() {
        f.await;
    }
    match plugin
        .call(NETWORK_DRIVER, "DeleteEndpoint", Some(&ids), &id.what)
        .await
    {
        Ok(_) | Err(PluginError::NotImplemented { .. }) => true,
        Err(err) if err.unreachable() => {
            tracing::warn!("{err}");
            false
        }
        Err(err) if quiet => {
            tracing::debug!("{err}");
            true
        }
        Err(err) => {
            tracing::warn!("{err}");
            true
        }
    }
}
