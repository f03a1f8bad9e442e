//! Namespaces cnm borrows (a sandbox's `netns:`): found from what the file
//! names, checked to be network namespaces, and never written or deleted.
//! cnm gives one its sandbox's name under /run/netns (a bind mount, as
//! `ip netns attach` and Docker's own `/run/docker/netns` do), so it is
//! reached like any sandbox; only that name is removed again.

use crate::model::Target;
use crate::netns::open_checked;
use crate::topology::NetnsRef;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long `docker inspect` / `podman inspect` may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(15);

/// The namespace file `r` names now.
async fn locate(r: &NetnsRef) -> Result<String, String> {
    Ok(match r {
        NetnsRef::Path(p) => p.display().to_string(),
        NetnsRef::Pid(pid) => format!("/proc/{pid}/ns/net"),
        NetnsRef::Docker(name) => container_netns("docker", name).await?,
        NetnsRef::Podman(name) => container_netns("podman", name).await?,
    })
}

/// The identity (nsfs inode) of the namespace `r` names now, checked as
/// [`open_checked`] does: what `cnm watch` compares with the records.
pub async fn identity(r: &NetnsRef) -> Result<u64, String> {
    Ok(open_checked(Path::new(&locate(r).await?))?.1)
}

/// Find the namespace `r` names now, with the links in it.
pub async fn resolve(r: &NetnsRef) -> Result<Target, String> {
    let path = locate(r).await?;
    let (file, ino) = open_checked(Path::new(&path))?;
    let handle = crate::netlink::connect_in(&file)
        .map_err(|e| format!("cannot enter namespace {path}: {e}"))?;
    let mut links = BTreeMap::new();
    let msgs: Vec<_> = futures::TryStreamExt::try_collect(crate::netlink::links(&handle))
        .await
        .map_err(|e| format!("cannot list the links of namespace {path}: {e}"))?;
    for m in msgs {
        use netlink_packet_route::link::LinkAttribute;
        let mut name = None;
        let mut alias = None;
        for a in m.attributes {
            match a {
                LinkAttribute::IfName(n) => name = Some(n),
                LinkAttribute::IfAlias(a) => alias = Some(a),
                _ => {}
            }
        }
        if let Some(n) = name {
            links.insert(n, alias);
        }
    }
    let foreign_default = foreign_defaults(&handle, &links).await?;
    let (dns_sockets, dns_nat) = crate::netns::inside(&file, dns_served)
        .map_err(|e| format!("cannot enter namespace {path}: {e}"))?;
    Ok(Target {
        path,
        ino,
        links,
        dns_sockets,
        dns_nat,
        foreign_default,
    })
}

/// Run inside the namespace: the ports of sockets on 127.0.0.11, and
/// whether a table other than cnm's has a rule for 127.0.0.11.
fn dns_served() -> (std::collections::BTreeSet<u16>, bool) {
    let sockets = super::listeners::dump()
        .into_iter()
        .filter(|l| l.addr == std::net::IpAddr::from(crate::model::RESOLVER_ADDRESS))
        .map(|l| l.port)
        .collect();
    let nat = crate::netlink::nft::rules_matching(
        crate::resolver::redirect::LOCAL_HEX,
        crate::resolver::redirect::TABLE,
    )
    .unwrap_or(false);
    (sockets, nat)
}

/// Families whose default route goes through a link not marked by cnm.
async fn foreign_defaults(
    handle: &rtnetlink::Handle,
    links: &BTreeMap<String, Option<String>>,
) -> Result<std::collections::BTreeSet<u8>, String> {
    use netlink_packet_route::route::{RouteAttribute, RouteMessage};
    let mut out = std::collections::BTreeSet::new();
    let index_names: BTreeMap<u32, String> = {
        let msgs: Vec<_> = futures::TryStreamExt::try_collect(crate::netlink::links(handle))
            .await
            .map_err(|e| format!("cannot list links: {e}"))?;
        msgs.into_iter()
            .filter_map(|m| {
                let name = m.attributes.into_iter().find_map(|a| match a {
                    netlink_packet_route::link::LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                })?;
                Some((m.header.index, name))
            })
            .collect()
    };
    for v6 in [false, true] {
        let routes: Vec<RouteMessage> =
            futures::TryStreamExt::try_collect(crate::netlink::routes(handle, v6))
                .await
                .map_err(|e| format!("cannot list routes: {e}"))?;
        for r in routes
            .iter()
            .filter(|r| r.header.destination_prefix_length == 0)
        {
            let oif = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            let name = oif.and_then(|i| index_names.get(&i));
            let ours = name
                .and_then(|n| links.get(n))
                .and_then(|a| a.as_deref())
                .is_some_and(|a| a.starts_with("cnm:"));
            if name.is_some() && !ours {
                out.insert(if v6 { 6 } else { 4 });
            }
        }
    }
    Ok(out)
}

/// The namespace file of a running container, from `CLI inspect`: its
/// process's (`/proc/PID/ns/net`). Accepts the formatted pid it asks for,
/// or the JSON `inspect` prints without a format (`[{"State": {"Pid": N},
/// "NetworkSettings": {"SandboxKey": PATH}}]`; the pid first, the sandbox
/// key when there is no pid).
async fn container_netns(cli: &str, name: &str) -> Result<String, String> {
    let what = format!("{cli}:{name}");
    let run = tokio::process::Command::new(cli)
        .args(["inspect", "--format", "{{.State.Pid}}", name])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(CLI_TIMEOUT, run).await {
        Err(_) => {
            return Err(format!(
                "{what}: `{cli} inspect` did not answer within {CLI_TIMEOUT:?}"
            ))
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{what}: the {cli} command is not installed (not on PATH)"
            ))
        }
        Ok(Err(e)) => return Err(format!("{what}: cannot run {cli}: {e}")),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        return Err(format!(
            "{what}: no such container ({cli} inspect: {first})"
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    match pid_of(text.trim()) {
        Some(0) => Err(format!("{what}: the container is not running")),
        Some(pid) => Ok(format!("/proc/{pid}/ns/net")),
        None => sandbox_key(text.trim())
            .ok_or_else(|| format!("{what}: cannot read a pid from `{cli} inspect`")),
    }
}

/// `NetworkSettings.SandboxKey` from `inspect`'s JSON: Docker's own bind
/// mount of the container's namespace.
fn sandbox_key(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let one = match &v {
        serde_json::Value::Array(a) => a.first()?,
        other => other,
    };
    let key = one.pointer("/NetworkSettings/SandboxKey")?.as_str()?;
    key.starts_with('/').then(|| key.to_string())
}

/// A pid from `inspect` output: a bare number, or JSON with `State.Pid`
/// (an array of containers or one container).
fn pid_of(text: &str) -> Option<u32> {
    if let Ok(n) = text.parse::<u32>() {
        return Some(n);
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let one = match &v {
        serde_json::Value::Array(a) => a.first()?,
        other => other,
    };
    let pid = one.pointer("/State/Pid").or_else(|| one.get("Pid"))?;
    if pid.is_null() {
        return None;
    }
    u32::try_from(pid.as_u64()?).ok()
}

#[cfg(test)]
mod tests {
    use super::pid_of;

    #[test]
    fn pids_from_inspect() {
        assert_eq!(pid_of("1234"), Some(1234));
        assert_eq!(pid_of(r#"[{"State":{"Pid":77,"Running":true}}]"#), Some(77));
        assert_eq!(pid_of(r#"{"State":{"Pid":0}}"#), Some(0));
        assert_eq!(pid_of("<no value>"), None);
    }

    #[test]
    fn sandbox_key_without_pid() {
        let j = r#"[{"NetworkSettings":{"SandboxKey":"/var/run/docker/netns/1a2b"}}]"#;
        assert_eq!(pid_of(j), None);
        assert_eq!(
            super::sandbox_key(j).as_deref(),
            Some("/var/run/docker/netns/1a2b")
        );
        assert_eq!(
            super::sandbox_key(r#"{"NetworkSettings":{"SandboxKey":""}}"#),
            None
        );
    }
}
