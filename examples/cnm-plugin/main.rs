//! A small libnetwork remote plugin: a network driver (one Linux bridge per
//! network, one veth pair per joined endpoint) and an IPAM driver in one
//! process, speaking the plugin protocol (JSON over HTTP/1.1) on a unix or
//! TCP socket. cnm's tests run it; it is also a starting point for writing
//! your own plugin.
//!
//! ```text
//! cnm-plugin --listen unix:/run/docker/plugins/cnm-plugin.sock --state /var/lib/cnm-plugin
//! cnm-plugin --listen tcp:127.0.0.1:9000 --state DIR --fail NetworkDriver.Join
//! ```
//!
//! It keeps its state in `DIR/state.json` and logs every request to
//! `DIR/calls.log` as `<Subsystem.Method> <request JSON, keys sorted>`.

mod ipam;
mod links;
mod netdrv;
mod state;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use state::State;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Mutex;

const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";
/// Plugin requests are small; this only bounds a misbehaving client.
const MAX_BODY: usize = 1 << 20;

#[derive(Parser)]
#[command(about = "An example libnetwork remote plugin: network driver and IPAM driver")]
struct Cli {
    /// Where to listen: unix:PATH or tcp:HOST:PORT.
    #[arg(long, value_parser = parse_listen)]
    listen: Listen,
    /// Directory for state.json and calls.log (created if missing).
    #[arg(long)]
    state: PathBuf,
    /// Make Subsystem.Method answer with an error, changing nothing
    /// (repeatable; for tests).
    #[arg(long = "fail", value_name = "SUBSYSTEM.METHOD")]
    fail: Vec<String>,
    /// A hostile plugin, for tests: Join names this interface as SrcName
    /// instead of the one it made.
    #[arg(long = "src-name", value_name = "IFNAME")]
    src_name: Option<String>,
}

#[derive(Clone)]
enum Listen {
    Unix(PathBuf),
    Tcp(String),
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    match s.split_once(':') {
        Some(("unix", p)) if !p.is_empty() => Ok(Listen::Unix(p.into())),
        Some(("tcp", a)) if !a.is_empty() => Ok(Listen::Tcp(a.into())),
        _ => Err(format!("{s:?}: want unix:PATH or tcp:HOST:PORT")),
    }
}

/// Treat an explicit JSON `null` like a missing field: Go encodes nil maps
/// and slices as `null`.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

struct App {
    /// One request at a time: every call runs under this lock.
    state: Mutex<State>,
    dir: PathBuf,
    fail: BTreeSet<String>,
    src_name: Option<String>,
    nl: rtnetlink::Handle,
}

impl App {
    /// One line per request, appended before the request is handled.
    fn log_call(&self, name: &str, body: &str) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("calls.log"))?;
        // One write per line: O_APPEND keeps lines whole.
        f.write_all(format!("{name} {body}\n").as_bytes())
    }
}

/// Sort object keys at every level, so the log does not depend on the
/// order the client sent them in (whatever serde_json's map type is).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        v => v,
    }
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    resp
}

/// libnetwork reads IPAM errors from `Error`, all others from `Err`.
fn error(name: &str, msg: &str) -> Value {
    let field = match name.split('.').next() {
        Some("IpamDriver") => "Error",
        _ => "Err",
    };
    json!({ field: msg })
}

/// Run one method; None if the plugin does not implement it.
async fn dispatch(
    st: &mut State,
    nl: &rtnetlink::Handle,
    name: &str,
    body: Value,
) -> Option<Result<Value>> {
    Some(match name {
        "Plugin.Activate" => Ok(json!({"Implements": ["NetworkDriver", "IpamDriver"]})),
        "NetworkDriver.GetCapabilities" => Ok(netdrv::get_capabilities()),
        "NetworkDriver.CreateNetwork" => netdrv::create_network(st, nl, body).await,
        "NetworkDriver.DeleteNetwork" => netdrv::delete_network(st, nl, body).await,
        "NetworkDriver.CreateEndpoint" => netdrv::create_endpoint(st, body),
        "NetworkDriver.EndpointOperInfo" => netdrv::endpoint_oper_info(st, body),
        "NetworkDriver.DeleteEndpoint" => netdrv::delete_endpoint(st, nl, body).await,
        "NetworkDriver.Join" => netdrv::join(st, nl, body).await,
        "NetworkDriver.Leave" => netdrv::leave(st, nl, body).await,
        "NetworkDriver.ProgramExternalConnectivity" => {
            netdrv::program_external_connectivity(st, body)
        }
        "NetworkDriver.RevokeExternalConnectivity" => {
            netdrv::revoke_external_connectivity(st, body)
        }
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => Ok(json!({})),
        "IpamDriver.GetCapabilities" => Ok(ipam::get_capabilities()),
        "IpamDriver.GetDefaultAddressSpaces" => Ok(ipam::get_default_address_spaces()),
        "IpamDriver.RequestPool" => ipam::request_pool(st, body),
        "IpamDriver.ReleasePool" => ipam::release_pool(st, body),
        "IpamDriver.RequestAddress" => ipam::request_address(st, body),
        "IpamDriver.ReleaseAddress" => ipam::release_address(st, body),
        _ => return None,
    })
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let name = req.uri().path().trim_start_matches('/').to_string();
    let post = req.method() == Method::POST;
    let raw = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let msg = format!("reading request body: {e}");
            return reply(StatusCode::BAD_REQUEST, &error(&name, &msg));
        }
    };
    let mut st = app.state.lock().await;

    // An empty body (Plugin.Activate, GetCapabilities...) means `{}`.
    let body = if raw.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        serde_json::from_slice::<Value>(&raw).map(sorted)
    };
    let logged = match &body {
        Ok(v) => v.to_string(),
        // Unparsable: log it as a JSON string, still on one line.
        Err(_) => Value::String(String::from_utf8_lossy(&raw).into_owned()).to_string(),
    };
    if let Err(e) = app.log_call(&name, &logged) {
        let msg = format!("cnm-plugin: writing calls.log: {e}");
        return reply(StatusCode::OK, &error(&name, &msg));
    }
    if !post {
        let msg = format!("{name}: only POST is supported");
        return reply(StatusCode::METHOD_NOT_ALLOWED, &error(&name, &msg));
    }
    let body = match body {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("invalid JSON body: {e}");
            return reply(StatusCode::OK, &error(&name, &msg));
        }
    };
    if app.fail.contains(&name) {
        let msg = format!("cnm-plugin: injected failure of {name}");
        return reply(StatusCode::OK, &error(&name, &msg));
    }

    let before = st.clone();
    let Some(result) = dispatch(&mut st, &app.nl, &name, body).await else {
        let msg = format!("{name} not implemented");
        return reply(StatusCode::NOT_FOUND, &json!({ "Err": msg }));
    };
    let result = match (result, &app.src_name) {
        (Ok(mut v), Some(src)) if name == "NetworkDriver.Join" => {
            v["InterfaceName"]["SrcName"] = json!(src);
            Ok(v)
        }
        (r, _) => r,
    };
    let result = match result {
        Ok(v) if *st != before => st.save(&app.dir).map(|()| v),
        Ok(v) => Ok(v),
        Err(e) => {
            // A failed call changes nothing, whatever a handler did before failing.
            *st = before;
            Err(e)
        }
    };
    match result {
        Ok(v) => reply(StatusCode::OK, &v),
        Err(e) => reply(StatusCode::OK, &error(&name, &format!("{e:#}"))),
    }
}

fn serve<S>(app: Arc<App>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(app, req).await) }
        });
        if let Err(e) = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await
        {
            eprintln!("cnm-plugin: connection: {e}");
        }
    });
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl Listener {
    async fn bind(listen: &Listen) -> Result<Listener> {
        match listen {
            Listen::Unix(path) => bind_unix(path),
            Listen::Tcp(addr) => Ok(Listener::Tcp(
                TcpListener::bind(addr.as_str())
                    .await
                    .with_context(|| format!("listen on tcp:{addr}"))?,
            )),
        }
    }

    /// What the plugin listens on; with tcp:HOST:0, the port it was given.
    fn describe(&self) -> String {
        match self {
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp:{a}"),
                Err(_) => "tcp:?".into(),
            },
        }
    }

    /// Accept one connection and serve it on its own task.
    async fn accept(&self, app: &Arc<App>) -> std::io::Result<()> {
        match self {
            Listener::Unix(l, _) => serve(app.clone(), l.accept().await?.0),
            Listener::Tcp(l) => serve(app.clone(), l.accept().await?.0),
        }
        Ok(())
    }
}

fn bind_unix(path: &Path) -> Result<Listener> {
    match std::fs::symlink_metadata(path) {
        // Left behind by a plugin that died: take its place.
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("remove stale socket {}", path.display()))?,
        Ok(_) => bail!("{} exists and is not a socket", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .with_context(|| format!("create {}", parent.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(Listener::Unix(l, path.to_path_buf()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("cnm-plugin: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    std::fs::create_dir_all(&cli.state)
        .with_context(|| format!("create {}", cli.state.display()))?;
    let state = State::load(&cli.state)?;
    let (conn, nl, _) = rtnetlink::new_connection().context("open rtnetlink socket")?;
    tokio::spawn(conn);
    let app = Arc::new(App {
        state: Mutex::new(state),
        dir: cli.state,
        fail: cli.fail.into_iter().collect(),
        src_name: cli.src_name,
        nl,
    });
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;

    let listener = Listener::bind(&cli.listen).await?;
    eprintln!("listening on {}", listener.describe());
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            r = listener.accept(&app) => if let Err(e) = r {
                eprintln!("cnm-plugin: accept: {e}");
                // E.g. out of file descriptors: don't spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            },
        }
    }
    // Wait for a call in progress to finish, so none stops half done.
    let _done = app.state.lock().await;
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
