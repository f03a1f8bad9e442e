//! The plugin transport (M `pkg/plugins/client.go`): HTTP/1.1 POST of a
//! JSON body to `/<Subsystem>.<Method>` over a unix socket or TCP, with
//! Docker's Accept header; a reply is JSON whose `Err` (network drivers)
//! or `Error` (IPAM) field, when set, is a failure. Only failures to
//! connect are retried, with Docker's backoff; every request has a
//! deadline (Docker has none, a reconciler must not hang on a plugin).

use super::{Addr, PluginError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;

/// Docker's plugin media type (M `pkg/plugins/transport/mimetype.go`).
pub const MIME: &str = "application/vnd.docker.plugins.v1.2+json";
/// The Host header Docker sends over unix sockets.
const HOST: &str = "plugin.moby.localhost";
/// Replies larger than this are refused (a reply is a few fields).
const MAX_REPLY: usize = 1 << 20;

/// How long to wait for a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// `plan` and `destroy`: one attempt, a short deadline; a plan does
    /// not wait, and a destroy completes without a plugin that is gone.
    Plan,
    /// `apply`: retry connecting with libnetwork's backoff (1, 2, 4, 8,
    /// 16 s) for up to 30 s while a plugin starts.
    Apply,
}

impl Patience {
    fn deadline(self) -> Duration {
        match self {
            Patience::Plan => Duration::from_secs(3),
            Patience::Apply => Duration::from_secs(60),
        }
    }
}

/// A connection-level failure (worth retrying) or a reply.
enum Attempt {
    Connect(String),
    /// Sent, then the connection failed: the plugin may have acted on it,
    /// so it is not sent again.
    Lost(String),
    Reply(hyper::StatusCode, Bytes),
}

/// One plugin's client.
#[derive(Debug, Clone)]
pub struct Client {
    pub plugin: String,
    pub addr: Addr,
    pub patience: Patience,
}

impl Client {
    /// Call `method` (`NetworkDriver.CreateEndpoint`) with `body` (`None`:
    /// an empty body, as Docker sends for calls without arguments). `what`
    /// names the object for messages (`endpoint web-front`).
    pub async fn call(
        &self,
        method: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, PluginError> {
        let bytes = match body {
            Some(v) => Bytes::from(serde_json::to_vec(v).map_err(|e| self.protocol(method, e))?),
            None => Bytes::new(),
        };
        let started = std::time::Instant::now();
        let mut wait = Duration::from_secs(1);
        let (status, reply) = loop {
            match tokio::time::timeout(self.patience.deadline(), self.once(method, bytes.clone()))
                .await
            {
                Err(_) => {
                    return Err(PluginError::Unreachable {
                        plugin: self.plugin.clone(),
                        addr: self.addr.to_string(),
                        call: method.to_string(),
                        message: format!(
                            "no answer within {} s",
                            self.patience.deadline().as_secs()
                        ),
                    })
                }
                Ok(Attempt::Reply(s, b)) => break (s, b),
                Ok(Attempt::Lost(message)) => {
                    return Err(PluginError::Unreachable {
                        plugin: self.plugin.clone(),
                        addr: self.addr.to_string(),
                        call: method.to_string(),
                        message,
                    })
                }
                Ok(Attempt::Connect(message)) => {
                    let give_up = self.patience == Patience::Plan
                        || started.elapsed() + wait > Duration::from_secs(30);
                    if give_up {
                        return Err(PluginError::Unreachable {
                            plugin: self.plugin.clone(),
                            addr: self.addr.to_string(),
                            call: method.to_string(),
                            message,
                        });
                    }
                    tracing::info!(plugin = %self.plugin, retry_in = ?wait, "{message}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        };
        tracing::debug!(
            plugin = %self.plugin,
            call = method,
            us = started.elapsed().as_micros() as u64,
            "plugin call"
        );
        self.decode(method, what, status, &reply)
    }

    /// One request on a fresh connection.
    async fn once(&self, method: &str, body: Bytes) -> Attempt {
        let req = match Request::post(format!("/{method}"))
            .header(hyper::header::HOST, HOST)
            .header(hyper::header::ACCEPT, MIME)
            .body(Full::new(body))
        {
            Ok(r) => r,
            Err(e) => return Attempt::Connect(e.to_string()),
        };
        let sent = match &self.addr {
            Addr::Unix(p) => match tokio::net::UnixStream::connect(p).await {
                Ok(s) => send(s, req).await,
                Err(e) => return Attempt::Connect(format!("cannot connect: {e}")),
            },
            Addr::Tcp(a) => match tokio::net::TcpStream::connect(a.as_str()).await {
                Ok(s) => send(s, req).await,
                Err(e) => return Attempt::Connect(format!("cannot connect: {e}")),
            },
        };
        match sent {
            Ok((status, b)) => Attempt::Reply(status, b),
            Err(Sent::Before(e)) => Attempt::Connect(e),
            Err(Sent::After(e)) => Attempt::Lost(e),
        }
    }

    /// A reply: non-200 is a failure (404: not implemented); on 200, `Err`
    /// or `Error` set is a failure; else the JSON value.
    fn decode(
        &self,
        method: &str,
        what: &str,
        status: hyper::StatusCode,
        reply: &[u8],
    ) -> Result<Value, PluginError> {
        let parsed: Option<Value> = if reply.iter().all(u8::is_ascii_whitespace) {
            Some(Value::Object(Default::default()))
        } else {
            serde_json::from_slice(reply).ok()
        };
        let err_field = parsed.as_ref().and_then(|v| {
            ["Err", "Error"]
                .iter()
                .find_map(|k| v.get(k).and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        });
        if status == hyper::StatusCode::NOT_FOUND {
            return Err(PluginError::NotImplemented {
                plugin: self.plugin.clone(),
                call: method.to_string(),
            });
        }
        if !status.is_success() {
            let message = err_field.unwrap_or_else(|| {
                format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    String::from_utf8_lossy(&reply[..reply.len().min(512)]).trim()
                )
            });
            return Err(self.failed(method, what, message));
        }
        if let Some(message) = err_field {
            return Err(self.failed(method, what, message));
        }
        match parsed {
            Some(v @ Value::Object(_)) => Ok(v),
            _ => Err(PluginError::Protocol {
                plugin: self.plugin.clone(),
                call: method.to_string(),
                message: "the reply is not a JSON object".into(),
            }),
        }
    }

    fn failed(&self, method: &str, what: &str, message: String) -> PluginError {
        PluginError::Failed {
            plugin: self.plugin.clone(),
            call: method.to_string(),
            what: what.to_string(),
            message,
        }
    }

    fn protocol(&self, method: &str, e: impl std::fmt::Display) -> PluginError {
        PluginError::Protocol {
            plugin: self.plugin.clone(),
            call: method.to_string(),
            message: e.to_string(),
        }
    }
}

/// Where a request failed: before it was sent, or after.
enum Sent {
    Before(String),
    After(String),
}

/// Send one request over `stream` and read the whole (bounded) reply.
async fn send<S>(stream: S, req: Request<Full<Bytes>>) -> Result<(hyper::StatusCode, Bytes), Sent>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Sent::Before(format!("HTTP handshake failed: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Sent::After(format!("request failed: {e}")))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_REPLY)
            .collect()
            .await
            .map_err(|e| Sent::After(format!("cannot read the reply: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use serde_json::json;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A plugin answering each path with a fixed status and body, and
    /// sending back what it received under `"got"` for 200 `{}` answers.
    async fn serve(dir: &std::path::Path) -> Result<Addr, Box<dyn std::error::Error>> {
        let path = dir.join("p.sock");
        let listener = tokio::net::UnixListener::bind(&path)?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_string();
                        let accept = req
                            .headers()
                            .get(hyper::header::ACCEPT)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let body = req.into_body().collect().await?.to_bytes();
                        let (status, reply) = match path.as_str() {
                            "/NetworkDriver.Join" => (200, json!({ "Err": "no sandbox" })),
                            "/IpamDriver.RequestPool" => (200, json!({ "Error": "pool taken" })),
                            "/NetworkDriver.ProgramExternalConnectivity" => (404, json!({})),
                            "/NetworkDriver.Leave" => (500, json!({ "Err": "broken" })),
                            _ => (
                                200,
                                json!({ "got": String::from_utf8_lossy(&body), "accept": accept }),
                            ),
                        };
                        let mut resp =
                            hyper::Response::new(Full::new(Bytes::from(reply.to_string())));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status)
                            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
                        Ok::<_, hyper::Error>(resp)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Addr::Unix(path))
    }

    fn client(addr: Addr) -> Client {
        Client {
            plugin: "p".into(),
            addr,
            patience: Patience::Plan,
        }
    }

    #[tokio::test]
    async fn bodies_headers_and_error_fields() -> TestResult {
        let dir = tempfile::tempdir()?;
        let c = client(serve(dir.path()).await?);
        // No arguments: an empty body, with Docker's Accept header.
        let r = c.call("Plugin.Activate", None, "activation").await?;
        assert_eq!(r["got"], "");
        assert_eq!(r["accept"], MIME);
        let r = c
            .call(
                "NetworkDriver.CreateNetwork",
                Some(&json!({"A": 1})),
                "network n",
            )
            .await?;
        assert_eq!(r["got"], r#"{"A":1}"#);
        let e = c
            .call("NetworkDriver.Join", Some(&json!({})), "endpoint e")
            .await
            .err()
            .ok_or("Err on 200 is a failure")?;
        assert_eq!(
            e.to_string(),
            "plugin p: NetworkDriver.Join for endpoint e failed: no sandbox"
        );
        let e = c
            .call(
                "IpamDriver.RequestPool",
                Some(&json!({})),
                "the pool of network n",
            )
            .await
            .err()
            .ok_or("Error on 200 is a failure")?;
        assert!(e.to_string().ends_with("failed: pool taken"), "{e}");
        let e = c
            .call(
                "NetworkDriver.ProgramExternalConnectivity",
                Some(&json!({})),
                "e",
            )
            .await
            .err()
            .ok_or("404 is a failure")?;
        assert!(matches!(e, PluginError::NotImplemented { .. }));
        let e = c
            .call("NetworkDriver.Leave", Some(&json!({})), "endpoint e")
            .await
            .err()
            .ok_or("500 is a failure")?;
        assert!(e.to_string().ends_with("failed: broken"), "{e}");
        Ok(())
    }

    #[tokio::test]
    async fn a_plan_does_not_wait_for_a_missing_plugin() -> TestResult {
        let dir = tempfile::tempdir()?;
        let c = client(Addr::Unix(dir.path().join("none.sock")));
        let started = std::time::Instant::now();
        let e = c
            .call("Plugin.Activate", None, "activation")
            .await
            .err()
            .ok_or("no plugin, no answer")?;
        assert!(e.unreachable(), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
        Ok(())
    }
}
