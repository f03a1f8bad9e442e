//! CHECK (is the attachment as applied?) and STATUS (can cnm serve?).

use super::attachments::{self, Attachment};
use super::conf::NetConf;
use crate::apply::Engine;
use crate::cni::{code, CniError};
use crate::plan::{Action, Resource};

/// STATUS: cnm can serve ADDs when it runs as root (it makes links and
/// writes /run/cnm) and can read its records.
pub fn status() -> Result<(), CniError> {
    let unavailable = |why: String| CniError::new(code::NOT_AVAILABLE, why);
    if !nix::unistd::geteuid().is_root() {
        return Err(unavailable(
            "cnm must run as root to wire containers".into(),
        ));
    }
    crate::store::Store::system()
        .topologies()
        .map_err(|e| unavailable(format!("cnm cannot read its records: {e}")))?;
    Ok(())
}

/// CHECK: the attachment is recorded, and planning its topology again
/// finds nothing to change for it (its namespace, interface, addresses,
/// routes) or for its network (the bridge, the firewall).
pub async fn check(conf: &NetConf, a: &Attachment) -> Result<(), CniError> {
    let unknown = || {
        CniError::new(
            code::UNKNOWN_CONTAINER,
            format!(
                "{}/{} is not attached to {}",
                a.container_id, a.ifname, conf.name
            ),
        )
    };
    let failed =
        |e: crate::errors::ApplyError| CniError::new(code::CNM_FAILED, format!("CHECK: {e}"));
    let store = crate::store::Store::system()
        .topology(&conf.topology)
        .map_err(|e| failed(e.into()))?;
    let Some(rec) = store.applied().map_err(|e| failed(e.into()))? else {
        return Err(unknown());
    };
    let file: crate::topology::file::FileTopology = serde_json::from_value(rec.topology)
        .map_err(|e| CniError::new(code::CNM_FAILED, e.to_string()))?;
    let endpoint = attachments::find(&file, a).ok_or_else(unknown)?.to_string();
    let sandbox = file.endpoints[&endpoint].sandbox.clone();
    let t = crate::apply::recorded_topology(&conf.topology)
        .map_err(failed)?
        .ok_or_else(unknown)?;
    let planned = Engine::default().plan(&t).await.map_err(failed)?;
    let drift: Vec<String> = planned
        .plan
        .actions
        .iter()
        .filter(|x| concerns(x, &sandbox, &endpoint))
        .map(|x| format!("{:?} {}", x.op, x.resource.label()).to_lowercase())
        .collect();
    if drift.is_empty() {
        return Ok(());
    }
    Err(CniError::new(
        code::CNM_DRIFT,
        format!(
            "{}/{} on {} has drifted: {}",
            a.container_id,
            a.ifname,
            conf.name,
            drift.join("; ")
        ),
    ))
}

/// Whether an action touches the attachment, or the network under it.
fn concerns(x: &Action, sandbox: &str, endpoint: &str) -> bool {
    match &x.resource {
        Resource::Namespace(n) => n.sandbox == sandbox,
        Resource::Endpoint(e) => e.endpoint == endpoint,
        Resource::Route(r) => r.sandbox == sandbox,
        Resource::Link(_) | Resource::Firewall(_) | Resource::Sysctl(_) => true,
        _ => false,
    }
}
