//! Running a CNI plugin as a runtime does: its binary found in the CNI
//! path, the `CNI_*` environment, the configuration on standard input,
//! its result or error object read from standard output.

use super::error::{code, CniError};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where plugins are looked for when `CNI_PATH` is not set: the
/// conventional directory, then Debian's.
pub const DEFAULT_PATH: &str = "/opt/cni/bin:/usr/lib/cni";

/// The longest a plugin may take (the bridge plugin answers in
/// milliseconds; a DHCP one may wait seconds).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Most of a plugin's standard output read (a result is a few KiB).
const MAX_OUTPUT: u64 = 1 << 20;

/// The CNI path: `CNI_PATH` from the environment, else [`DEFAULT_PATH`].
pub fn search_path() -> Vec<PathBuf> {
    let var = std::env::var_os("CNI_PATH").filter(|v| !v.is_empty());
    let path = var.unwrap_or_else(|| DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// Plugin `kind`'s binary in `path`; the error names every directory
/// searched.
pub fn find(kind: &str, path: &[PathBuf]) -> Result<PathBuf, String> {
    let safe = !kind.is_empty()
        && kind.len() <= 64
        && !kind.starts_with('.')
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !safe {
        return Err(format!("'{}' is not a plugin name", kind.escape_debug()));
    }
    for dir in path {
        let p = dir.join(kind);
        if p.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(p);
        }
    }
    let dirs: Vec<String> = path.iter().map(|d| d.display().to_string()).collect();
    Err(format!(
        "CNI plugin '{kind}' is not in the CNI path (searched {})",
        if dirs.is_empty() {
            "nothing".to_string()
        } else {
            dirs.join(", ")
        }
    ))
}

/// One call's environment.
#[derive(Debug, Clone, Default)]
pub struct CallEnv {
    /// `CNI_COMMAND`.
    pub command: &'static str,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` (empty: not set).
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_PATH`.
    pub path: Vec<PathBuf>,
}

/// Run `binary` with `env` and `conf`: its result (`None`: it printed
/// nothing, as DEL does), or its error object.
pub async fn call(binary: &Path, env: &CallEnv, conf: &Value) -> Result<Option<Value>, CniError> {
    let io = |what: &str, e: std::io::Error| {
        CniError::new(
            code::IO_FAILURE,
            format!("{what} {}: {e}", binary.display()),
        )
    };
    let path = std::env::join_paths(&env.path).unwrap_or_default();
    let mut child = tokio::process::Command::new(binary)
        .env("CNI_COMMAND", env.command)
        .env("CNI_CONTAINERID", &env.container_id)
        .env("CNI_NETNS", &env.netns)
        .env("CNI_IFNAME", &env.ifname)
        .env("CNI_PATH", path)
        .env_remove("CNI_ARGS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io("cannot run", e))?;
    let input = serde_json::to_vec(conf).unwrap_or_default();
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let talk = async {
        if let Some(s) = stdin.as_mut() {
            // A plugin may answer without reading (VERSION): its answer,
            // not a closed pipe, tells how it went.
            match s.write_all(&input).await {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(io("cannot write to", e))
                }
                _ => {}
            }
        }
        drop(stdin.take());
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            s.take(MAX_OUTPUT)
                .read_to_end(&mut out)
                .await
                .map_err(|e| io("cannot read", e))?;
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(MAX_OUTPUT).read_to_end(&mut err).await;
        }
        let status = child.wait().await.map_err(|e| io("cannot wait for", e))?;
        Ok::<_, CniError>((status, out, err))
    };
    let (status, out, err) = tokio::time::timeout(TIMEOUT, talk).await.map_err(|_| {
        CniError::new(
            code::TRY_AGAIN_LATER,
            format!("{} did not answer within {TIMEOUT:?}", binary.display()),
        )
    })??;
    let parsed: Option<Value> = serde_json::from_slice(&out).ok();
    if !status.success() {
        let stderr = String::from_utf8_lossy(&err).trim().to_string();
        return Err(parsed
            .as_ref()
            .and_then(CniError::from_json)
            .unwrap_or_else(|| {
                CniError::new(code::CNM_FAILED, format!("exited with {status}"))
                    .with_details(stderr)
            }));
    }
    if out.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    parsed
        .map(Some)
        .ok_or_else(|| CniError::new(code::DECODING_FAILURE, "printed something that is not JSON"))
}

/// The versions a plugin speaks (its answer to `VERSION`).
pub async fn versions(binary: &Path, path: &[PathBuf]) -> Result<Vec<String>, CniError> {
    let env = CallEnv {
        command: "VERSION",
        path: path.to_vec(),
        ..CallEnv::default()
    };
    let answer = call(binary, &env, &serde_json::json!({ "cniVersion": "0.4.0" })).await?;
    Ok(answer
        .as_ref()
        .and_then(|a| a.get("supportedVersions"))
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}
