//! cnm as Docker's network driver (`docker network create -d cnm`): the
//! libnetwork remote-driver protocol served, each call an edit of the
//! topology `docker` through [`Engine::apply_edited`] (cnm's lock held per
//! call only; nothing kept in memory that the records lack).
//!
//! Networks are CreateNetwork's pool, gateway and options; endpoints are
//! handed to Docker at Join and adopted once Docker has placed them (see
//! `endpoints`).

mod container;
mod endpoints;
mod networks;
mod pending;

pub use endpoints::resume;
pub use networks::TOPOLOGY;

use crate::apply::{Edited, Engine};
use serde_json::{json, Value};

/// Answer one call of libnetwork's remote-driver protocol: the reply, or
/// the message for `{"Err": …}`.
pub async fn call(method: &str, req: &Value) -> Result<Value, String> {
    match method {
        "Plugin.Activate" => Ok(json!({ "Implements": ["NetworkDriver"] })),
        "NetworkDriver.GetCapabilities" => {
            Ok(json!({ "Scope": "local", "ConnectivityScope": "local" }))
        }
        "NetworkDriver.CreateNetwork" => create_network(req).await,
        "NetworkDriver.DeleteNetwork" => delete_network(req).await,
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => Ok(json!({})),
        "NetworkDriver.CreateEndpoint" => endpoints::create(req).await,
        "NetworkDriver.Join" => endpoints::join(req).await,
        "NetworkDriver.ProgramExternalConnectivity" => endpoints::program(req).await,
        "NetworkDriver.EndpointOperInfo" => Ok(json!({ "Value": {} })),
        "NetworkDriver.RevokeExternalConnectivity" => endpoints::revoke(req).await,
        "NetworkDriver.Leave" | "NetworkDriver.DeleteEndpoint" => endpoints::remove(req).await,
        other => Err(format!("cnm: unknown method {other}")),
    }
}

async fn create_network(req: &Value) -> Result<Value, String> {
    let name = networks::name_of(req["NetworkID"].as_str().unwrap_or_default())?;
    let net = networks::from_request(req)?;
    let edit = |before| Ok(Some(networks::add(before, &name, &net)));
    apply(&edit, &format!("network {name}")).await
}

/// Idempotent: an unknown network is already gone.
async fn delete_network(req: &Value) -> Result<Value, String> {
    let name = networks::name_of(req["NetworkID"].as_str().unwrap_or_default())?;
    let edit = |before| Ok(networks::remove(before, &name));
    apply(&edit, &format!("network {name}")).await
}

pub(super) async fn apply(edit: &crate::apply::Edit<'_>, what: &str) -> Result<Value, String> {
    let engine = Engine::default().trusting(crate::apply::Trust::UnchangedBorrowed);
    match engine.apply_edited(TOPOLOGY, edit, |_| Ok(())).await {
        Ok(Edited::Applied(..) | Edited::Destroyed(_) | Edited::Absent) => Ok(json!({})),
        // Its position is in text cnm generated: the message alone.
        Err(crate::errors::ApplyError::Plan(p)) => Err(format!("cnm: {what}: {}", p.message)),
        Err(e) => Err(format!("cnm: {what}: {e}")),
    }
}
