//! `cnm docker-plugin`: libnetwork's remote NetworkDriver protocol served
//! on a unix socket where Docker finds plugins (HTTP POST `/<Method>`, a
//! JSON body, a JSON reply; `{"Err": …}` for a failure), until SIGTERM.
//! The calls themselves are `cnm::docker_plugin`'s.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use tokio::net::UnixListener;

/// Where Docker looks for a plugin named `cnm`.
pub const DEFAULT_SOCKET: &str = "/run/docker/plugins/cnm.sock";
/// The largest request read (Docker's are a few KiB).
const MAX_BODY: usize = 1 << 20;

pub async fn run(socket: &Path) -> Result<()> {
    let listener = bind(socket)?;
    tracing::info!("serving Docker's NetworkDriver on {}", socket.display());
    // Docker's networks as recorded (bridges made again), and containers
    // that started while no plugin ran adopted.
    cnm::docker_plugin::resume().await;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accept")?;
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req| async {
                        Ok::<_, std::convert::Infallible>(handle(req).await)
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    if let Err(e) = conn.await {
                        tracing::warn!("connection: {e}");
                    }
                });
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Only the socket this process bound: never a file or link put there since.
    if std::fs::symlink_metadata(socket).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(socket);
    }
    Ok(())
}

/// One call: the method from the path, the body as JSON (empty: `{}`).
async fn handle(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.uri().path().trim_start_matches('/').to_string();
    let raw = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                &json!({ "Err": format!("cnm: {e}") }),
            )
        }
    };
    let body = if raw.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        serde_json::from_slice::<Value>(&raw)
    };
    let answer = match body {
        Ok(b) => cnm::docker_plugin::call(&method, &b).await,
        Err(e) => Err(format!("cnm: {method}: the body is not JSON: {e}")),
    };
    tracing::info!(method, ok = answer.is_ok(), "call");
    match answer {
        Ok(v) => reply(StatusCode::OK, &v),
        Err(e) => {
            tracing::warn!("{e}");
            reply(StatusCode::OK, &json!({ "Err": e }))
        }
    }
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/vnd.docker.plugins.v1.2+json"),
    );
    resp
}

/// Listen at `path`: a socket left by a plugin that died is replaced;
/// anything else there (a file, a link) is refused.
fn bind(path: &Path) -> Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("remove stale socket {}", path.display()))?,
        Ok(_) => bail!("{} exists and is not a socket", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(l)
}
