//! cnm as a CNI plugin: a runtime (containerd, CRI-O, podman, a kubelet's)
//! runs `cnm` with `CNI_COMMAND` set. Each CNI network is the topology
//! `cni-<name>` in cnm's records; ADD, DEL and GC edit it through
//! [`Engine::apply_edited`] (one hold of cnm's lock per call, so parallel
//! ADDs all land), CHECK plans it, STATUS says whether cnm can serve.

mod attachments;
mod check;
mod conf;
mod result;

pub use attachments::{Attachment, TOPOLOGY_PREFIX};

use crate::apply::{Edited, Engine};
use crate::cni::{code, CniError, Command, Env, Version, SUPPORTED};
use crate::errors::ApplyError;
use conf::NetConf;
use serde_json::{json, Value};

/// The version errors are written in: the configuration's, when cnm
/// speaks it, else the newest cnm speaks.
pub fn error_version(config: &[u8]) -> String {
    serde_json::from_slice::<Value>(config)
        .ok()
        .and_then(|v| conf::version_of(&v).map(str::to_string))
        .filter(|v| crate::cni::supports(v))
        .unwrap_or_else(|| SUPPORTED[SUPPORTED.len() - 1].to_string())
}

/// Answer one call: what goes on standard output (`None`: nothing).
pub async fn serve(env: &Env, config: &[u8]) -> Result<Option<Value>, CniError> {
    if env.command == Command::Version {
        let newest = SUPPORTED[SUPPORTED.len() - 1];
        return Ok(Some(
            json!({ "cniVersion": newest, "supportedVersions": SUPPORTED }),
        ));
    }
    let value: Value = serde_json::from_slice(config).map_err(|e| {
        CniError::new(
            code::DECODING_FAILURE,
            format!("the configuration is not JSON: {e}"),
        )
    })?;
    let conf = NetConf::read(&value)?;
    match env.command {
        Command::Status => check::status().map(|()| None),
        Command::Gc => gc(&conf).await.map(|()| None),
        _ => {
            let version = Version::parse(&conf.version)
                .filter(|_| crate::cni::supports(&conf.version))
                .ok_or_else(|| {
                    CniError::new(
                        code::INCOMPATIBLE_VERSION,
                        format!(
                            "cniVersion {} is not one cnm speaks ({})",
                            conf.version,
                            SUPPORTED.join(", ")
                        ),
                    )
                })?;
            let a = attachment(env);
            match env.command {
                Command::Add => add(env, &conf, &a, version).await.map(Some),
                Command::Del => del(&conf, &a).await.map(|()| None),
                _ => check::check(&conf, &a).await.map(|()| None),
            }
        }
    }
}

/// The call's attachment (the environment is checked: both are set).
fn attachment(env: &Env) -> Attachment {
    Attachment {
        container_id: env.container_id.clone().unwrap_or_default(),
        ifname: env.ifname.clone().unwrap_or_default(),
    }
}

async fn add(env: &Env, conf: &NetConf, a: &Attachment, v: Version) -> Result<Value, CniError> {
    let definition = conf.network()?;
    let netns = env.netns.clone().unwrap_or_default();
    let edit = |before| {
        Ok(Some(attachments::add(
            before,
            &attachments::Add {
                topology: &conf.topology,
                network: &conf.name,
                definition: &definition,
                attachment: a,
                netns: &netns,
            },
        )))
    };
    engine()
        .apply_edited(&conf.topology, &edit, |_| Ok(()))
        .await
        .map_err(|e| {
            failed(
                &format!("ADD of {}/{} to {}", a.container_id, a.ifname, conf.name),
                e,
            )
        })?;
    let result = result::read(&conf.topology, &netns, &a.ifname)
        .await
        .map_err(|e| CniError::new(code::CNM_FAILED, format!("ADD applied, but {e}")))?;
    serde_json::to_value(result.in_version(v))
        .map_err(|e| CniError::new(code::CNM_FAILED, e.to_string()))
}

/// DEL: idempotent; the namespace may be gone already.
async fn del(conf: &NetConf, a: &Attachment) -> Result<(), CniError> {
    let edit = |before| Ok(attachments::del(before, a));
    edit_or_fail(
        conf,
        &edit,
        &format!("DEL of {}/{}", a.container_id, a.ifname),
    )
    .await
}

/// GC: every attachment not among the valid ones goes.
async fn gc(conf: &NetConf) -> Result<(), CniError> {
    let valid = conf.valid_attachments.clone().ok_or_else(|| {
        CniError::new(
            code::INVALID_NETWORK_CONFIG,
            "cni.dev/valid-attachments is missing: GC needs the attachments to keep",
        )
    })?;
    let edit = |before| Ok(attachments::keep_only(before, &valid));
    edit_or_fail(conf, &edit, "GC").await
}

async fn edit_or_fail(
    conf: &NetConf,
    edit: &crate::apply::Edit<'_>,
    what: &str,
) -> Result<(), CniError> {
    match engine()
        .apply_edited(&conf.topology, edit, |_| Ok(()))
        .await
    {
        Ok(Edited::Applied(..) | Edited::Destroyed(_) | Edited::Absent) => Ok(()),
        Err(e) => Err(failed(&format!("{what} on {}", conf.name), e)),
    }
}

/// The engine of an edit: the other attachments' namespaces are left
/// unread (the runtime calls when they change), so an ADD costs what it
/// adds, not what the network holds.
fn engine() -> Engine {
    Engine::default().trusting(crate::apply::Trust::UnchangedBorrowed)
}

/// An engine error as a CNI error: a plan error is the configuration's
/// (code 7: an overlapping subnet, a clash); the rest are cnm's (100).
fn failed(what: &str, e: ApplyError) -> CniError {
    match e {
        // Its position is in text cnm generated: the message alone.
        ApplyError::Plan(p) => CniError::new(
            code::INVALID_NETWORK_CONFIG,
            format!("{what}: {}", p.message),
        ),
        e => CniError::new(code::CNM_FAILED, format!("{what}: {e}")),
    }
}
