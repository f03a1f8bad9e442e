//! One attachment's ADD and DEL through its chain, as a runtime runs them:
//! noted before the first call (a crash in between is cleaned up by the
//! next apply, which finds the note), a failed ADD undone by DEL, the
//! result cached where libcni caches it and recorded as learned.

use super::chain::Chain;
use super::{AttachPlan, ADDRS, CHAIN, CONTAINER_ID, IFNAME, KIND, MAC, MTU, NAME, RESULT, ROUTES};
use crate::cni::exec::{self, CallEnv};
use crate::cni::{CniError, CniResult};
use crate::drivers::{Kernel, Learned, LEARNED_DRIVER, LEARNED_MADE_WITH, LEARNED_NETWORK};
use crate::errors::ApplyError;
use crate::model::EndpointRes;
use serde_json::Value;
use std::os::fd::AsRawFd;

/// Where libcni caches results: `<name>-<containerID>-<ifname>`.
const CACHE_DIR: &str = "/var/lib/cni/results";

/// `CNI_CONTAINERID` of an endpoint: stable, a digest of both names.
fn container_id(topology: &str, endpoint: &str) -> String {
    format!(
        "cnm{}",
        crate::naming::short_hash(&[topology, endpoint], 24)
    )
}

pub async fn add(
    e: &EndpointRes,
    k: &dyn Kernel,
    plan: &AttachPlan,
) -> Result<Learned, ApplyError> {
    let path = exec::search_path();
    let failed = |plugin: &str, why: String| {
        ApplyError::Cni(format!(
            "network {}, endpoint {}, plugin {plugin}: {why}",
            e.network, e.endpoint
        ))
    };
    let version = plan
        .chain
        .negotiate(&path)
        .await
        .map_err(|w| failed("(chain)", w))?;
    let configs = plan.chain.configs(version, &plan.addresses, &plan.ports);
    let cid = container_id(k.topology(), &e.endpoint);
    let mut learned = Learned::from([
        (LEARNED_DRIVER.to_string(), "cni".to_string()),
        (LEARNED_NETWORK.to_string(), e.network.clone()),
        (LEARNED_MADE_WITH.to_string(), e.made_with.clone()),
        (NAME.to_string(), plan.chain.name.clone()),
        (CONTAINER_ID.to_string(), cid.clone()),
        (IFNAME.to_string(), e.ifname.clone()),
        (CHAIN.to_string(), Value::Array(configs.clone()).to_string()),
    ]);
    k.note(&e.endpoint, &learned)?;
    let ns = k.netns_file(&e.netns)?;
    let env = CallEnv {
        command: "ADD",
        container_id: cid,
        netns: netns_path(&e.netns, &ns),
        ifname: e.ifname.clone(),
        path: path.clone(),
    };
    let mut prev: Option<Value> = None;
    for conf in &configs {
        let kind = conf["type"].as_str().unwrap_or_default().to_string();
        match run(&kind, &path, &env, conf, prev.as_ref()).await {
            Ok(r) => prev = r.or(prev),
            Err(err) => {
                // Nothing half made: DEL what the chain did so far.
                let (missing, _) = del_chain(&configs, &env, prev.as_ref(), &path).await;
                if missing.is_empty() {
                    k.note(&e.endpoint, &Learned::new())?;
                }
                return Err(failed(&kind, one_line(&err)));
            }
        }
    }
    let result = prev.unwrap_or(Value::Null);
    learned.insert(RESULT.into(), result.to_string());
    cache(&plan.chain, &env, &result);
    learned.extend(mark_and_read(e, k, &result).await?);
    Ok(learned)
}

/// DEL through the chain recorded at ADD, in reverse, with its result:
/// never fails for want of a plugin (a destroy must complete), but keeps
/// the note of what could not be let go when the engine says to.
pub async fn del(e: &EndpointRes, k: &dyn Kernel) -> Result<(), ApplyError> {
    let learned = k.learned(&e.endpoint);
    let Some(configs) = learned
        .get(CHAIN)
        .and_then(|c| serde_json::from_str::<Vec<Value>>(c).ok())
    else {
        return Ok(());
    };
    let path = exec::search_path();
    let ns = (!e.netns.is_empty())
        .then(|| k.netns_file(&e.netns).ok())
        .flatten();
    let env = CallEnv {
        command: "DEL",
        container_id: learned.get(CONTAINER_ID).cloned().unwrap_or_default(),
        netns: ns
            .as_ref()
            .map(|f| netns_path(&e.netns, f))
            .unwrap_or_default(),
        ifname: learned
            .get(IFNAME)
            .cloned()
            .unwrap_or_else(|| e.ifname.clone()),
        path: path.clone(),
    };
    let result: Option<Value> = learned
        .get(RESULT)
        .and_then(|r| serde_json::from_str(r).ok());
    let (missing, failures) = del_chain(&configs, &env, result.as_ref(), &path).await;
    if let Some(name) = learned.get(NAME) {
        uncache(name, &env);
    }
    // A plugin that ran and failed keeps failing (the bridge plugin cannot
    // undo its masquerade for an interface deleted by hand): its objects
    // are its own, said, and forgotten. A plugin not installed may be
    // later: what it holds is kept for a destroy then.
    for f in &failures {
        tracing::warn!(
            "DEL of endpoint {} on network {}: {f}",
            e.endpoint,
            e.network
        );
    }
    if !missing.is_empty() {
        let what = format!("endpoint {} ({})", e.endpoint, missing.join("; "));
        if k.keep_unreleased("cni", &what) {
            return Ok(());
        }
    }
    k.note(&e.endpoint, &Learned::new())
}

/// CHECK of an attachment the kernel shows, through the chain recorded
/// at ADD with its result (where the version has CHECK): why it is
/// broken, if a plugin says so. A plugin not found is not a verdict (plan
/// names it missing elsewhere).
pub async fn check(e: &EndpointRes, learned: &Learned) -> Option<String> {
    let configs: Vec<Value> = serde_json::from_str(learned.get(CHAIN)?).ok()?;
    let version = configs.first()?["cniVersion"]
        .as_str()
        .and_then(crate::cni::Version::parse)?;
    if !version.has_check() || e.netns.is_empty() {
        return None;
    }
    let result: Value = serde_json::from_str(learned.get(RESULT)?).ok()?;
    let path = exec::search_path();
    let env = CallEnv {
        command: "CHECK",
        container_id: learned.get(CONTAINER_ID)?.clone(),
        netns: crate::netns::path(&e.netns).display().to_string(),
        ifname: learned
            .get(IFNAME)
            .cloned()
            .unwrap_or_else(|| e.ifname.clone()),
        path: path.clone(),
    };
    for conf in &configs {
        let kind = conf["type"].as_str().unwrap_or_default();
        exec::find(kind, &path).ok()?;
        if let Err(err) = run(kind, &path, &env, conf, Some(&result)).await {
            return Some(format!("CHECK of plugin {kind}: {}", one_line(&err)));
        }
    }
    None
}

/// `CNI_NETNS` of a sandbox: its name under /run/netns (cnm binds a
/// borrowed namespace there too), stable across calls, so that CHECK and
/// DEL name the namespace as ADD did (plugins compare the result's
/// `sandbox`); else this process's handle on it.
fn netns_path(netns: &str, file: &std::fs::File) -> String {
    let named = crate::netns::path(netns);
    let same = |p: &std::path::Path| {
        let a = std::fs::metadata(p).ok()?;
        let b = file.metadata().ok()?;
        Some(std::os::unix::fs::MetadataExt::ino(&a) == std::os::unix::fs::MetadataExt::ino(&b))
    };
    if same(&named) == Some(true) {
        return named.display().to_string();
    }
    format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd())
}

/// Run one plugin of the chain.
async fn run(
    kind: &str,
    path: &[std::path::PathBuf],
    env: &CallEnv,
    conf: &Value,
    prev: Option<&Value>,
) -> Result<Option<Value>, CniError> {
    let binary =
        exec::find(kind, path).map_err(|e| CniError::new(crate::cni::code::CNM_FAILED, e))?;
    let mut conf = conf.clone();
    if let Some(p) = prev {
        conf["prevResult"] = p.clone();
    }
    exec::call(&binary, env, &conf).await
}

/// DEL through `configs` in reverse: the plugins not found, and the
/// plugins that failed, one line each.
async fn del_chain(
    configs: &[Value],
    env: &CallEnv,
    result: Option<&Value>,
    path: &[std::path::PathBuf],
) -> (Vec<String>, Vec<String>) {
    let env = CallEnv {
        command: "DEL",
        ..env.clone()
    };
    let (mut missing, mut failures) = (Vec::new(), Vec::new());
    for conf in configs.iter().rev() {
        let kind = conf["type"].as_str().unwrap_or_default();
        if let Err(e) = exec::find(kind, path) {
            missing.push(e);
            continue;
        }
        if let Err(e) = run(kind, path, &env, conf, result).await {
            failures.push(format!("plugin {kind}: {}", one_line(&e)));
        }
    }
    (missing, failures)
}

/// A plugin's error object in one line.
pub fn one_line(e: &CniError) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Mark the interface the chain made in the sandbox as cnm's, and read
/// what the chain decided of it.
async fn mark_and_read(
    e: &EndpointRes,
    k: &dyn Kernel,
    result: &Value,
) -> Result<Learned, ApplyError> {
    use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
    let h = k.sandbox(&e.netns)?;
    let err = |what: &str| {
        ApplyError::Cni(format!(
            "network {}, endpoint {}: {what}",
            e.network, e.endpoint
        ))
    };
    let index = crate::netlink::index_of(&h, &e.ifname)
        .await
        .map_err(|x| err(&format!("the chain made no interface {} ({x})", e.ifname)))?;
    let mark = crate::naming::mark(k.topology(), crate::naming::MarkKind::Endpoint, &e.endpoint);
    h.link()
        .set(
            rtnetlink::LinkUnspec::new_with_index(index)
                .alias(mark)
                .build(),
        )
        .execute()
        .await
        .map_err(ApplyError::kernel(&format!(
            "mark {} of endpoint {}",
            e.ifname, e.endpoint
        )))?;
    let mut learned = Learned::new();
    let mut links = h.link().get().match_index(index).execute();
    if let Ok(Some(m)) = futures::TryStreamExt::try_next(&mut links).await {
        for a in &m.attributes {
            match a {
                LinkAttribute::Address(mac) if mac.len() == 6 => {
                    let b: [u8; 6] = mac.as_slice().try_into().unwrap_or_default();
                    learned.insert(MAC.into(), crate::model::fmt_mac(&b));
                }
                LinkAttribute::Mtu(m) => {
                    learned.insert(MTU.into(), m.to_string());
                }
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(kind) = i {
                            let name = match kind {
                                InfoKind::Other(s) => s.clone(),
                                other => format!("{other:?}").to_lowercase(),
                            };
                            learned.insert(KIND.into(), name);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let r: CniResult = serde_json::from_value(result.clone()).unwrap_or_default();
    let addrs: Vec<String> = r.ips.iter().map(|i| i.address.clone()).collect();
    learned.insert(ADDRS.into(), addrs.join(","));
    let routes: Vec<(ipnetwork::IpNetwork, Option<std::net::IpAddr>)> = r
        .routes
        .iter()
        .filter_map(|x| Some((x.dst.parse().ok()?, x.gw)))
        .collect();
    learned.insert(
        ROUTES.into(),
        serde_json::to_string(&routes).unwrap_or_default(),
    );
    Ok(learned)
}

/// libcni's cache entry of the attachment (`cniCacheV1`), so that a
/// runtime's tools find it where they look. Best effort: the record of
/// the result is cnm's own.
fn cache(chain: &Chain, env: &CallEnv, result: &Value) {
    let entry = serde_json::json!({
        "kind": "cniCacheV1",
        "containerId": env.container_id,
        "ifName": env.ifname,
        "networkName": chain.name,
        "result": result,
    });
    let name = format!("{}-{}-{}", chain.name, env.container_id, env.ifname);
    let written = crate::safe::Dir::create_all(std::path::Path::new(CACHE_DIR), 0o700)
        .and_then(|d| d.write(&name, entry.to_string().as_bytes(), 0o600, None, false));
    if let Err(e) = written {
        tracing::warn!("cannot cache the CNI result of {name}: {e}");
    }
}

fn uncache(network: &str, env: &CallEnv) {
    let name = format!("{network}-{}-{}", env.container_id, env.ifname);
    if let Ok(Some(d)) = crate::safe::Dir::open(std::path::Path::new(CACHE_DIR)) {
        let _ = d.remove_file(&name, None);
    }
}
