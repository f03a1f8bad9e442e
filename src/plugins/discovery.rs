//! Where a libnetwork plugin named N is found, the way Docker looks
//! (first match wins): `/run/docker/plugins/N.sock`, `…/N/N.sock`, then in
//! `/etc/docker/plugins` and `/usr/lib/docker/plugins`: `N.spec`,
//! `N/N.spec`, `N.json`, `N/N.json`. A `.spec` holds one URL
//! (`unix:///path`, `tcp://host:port`); a `.json` holds `Name`, `Addr` and
//! `TLSConfig`.

use super::PluginError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The largest `.spec` or `.json` file read (they hold one address).
const MAX_SPEC_BYTES: u64 = 64 * 1024;

/// How to reach a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix://{}", p.display()),
            Addr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// A plugin found on disk: its address and the file that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub addr: Addr,
    pub via: PathBuf,
}

/// Every path looked at for plugin `name`, in order.
pub fn paths(name: &str) -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from(format!("/run/docker/plugins/{name}.sock")),
        PathBuf::from(format!("/run/docker/plugins/{name}/{name}.sock")),
    ];
    for dir in ["/etc/docker/plugins", "/usr/lib/docker/plugins"] {
        for ext in ["spec", "json"] {
            out.push(PathBuf::from(format!("{dir}/{name}.{ext}")));
            out.push(PathBuf::from(format!("{dir}/{name}/{name}.{ext}")));
        }
    }
    out
}

/// Names of the plugins present where Docker looks (for "did you mean").
pub fn present() -> Vec<String> {
    let mut out = Vec::new();
    for (dir, exts) in [
        ("/run/docker/plugins", &["sock"][..]),
        ("/etc/docker/plugins", &["spec", "json"][..]),
        ("/usr/lib/docker/plugins", &["spec", "json"][..]),
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().to_string();
            let stem = match name.rsplit_once('.') {
                Some((stem, ext)) if exts.contains(&ext) => stem.to_string(),
                // `N/N.sock`: a directory named after its plugin.
                _ if e.path().is_dir() => name,
                _ => continue,
            };
            if crate::naming::valid_identifier(&stem, 64).is_ok() {
                out.push(stem);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Find plugin `name`. `Ok(None)`: none of [`paths`] exists. The name
/// becomes part of paths: it passes the identifier check first.
pub fn find(name: &str) -> Result<Option<Found>, PluginError> {
    crate::naming::valid_identifier(name, 64).map_err(|why| PluginError::Discovery {
        plugin: name.to_string(),
        message: format!("the plugin name {why}"),
    })?;
    for p in paths(name) {
        // Sockets are not followed through symlinks here: a socket path is
        // only used to connect, and connect() cannot write through it.
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        // As Docker: a .sock path counts when it is a socket; a spec only
        // when it is a regular file (a FIFO would block the read).
        use std::os::unix::fs::FileTypeExt;
        let kind_ok = match ext {
            "sock" => meta.file_type().is_socket(),
            _ => meta.is_file(),
        };
        if !kind_ok {
            continue;
        }
        let addr = match ext {
            "sock" => Addr::Unix(p.clone()),
            "spec" => parse_spec(name, &p, &read_small(name, &p, meta.len())?)?,
            _ => parse_json(name, &p, &read_small(name, &p, meta.len())?)?,
        };
        return Ok(Some(Found { addr, via: p }));
    }
    Ok(None)
}

fn read_small(name: &str, p: &Path, len: u64) -> Result<String, PluginError> {
    let bad = |message: String| PluginError::Discovery {
        plugin: name.to_string(),
        message: format!("{}: {message}", p.display()),
    };
    if len > MAX_SPEC_BYTES {
        return Err(bad(format!(
            "is {len} bytes; a plugin spec has at most {MAX_SPEC_BYTES}"
        )));
    }
    std::fs::read_to_string(p).map_err(|e| bad(e.to_string()))
}

/// A `.spec` file: one URL.
pub fn parse_spec(name: &str, p: &Path, text: &str) -> Result<Addr, PluginError> {
    parse_url(text.trim()).map_err(|message| PluginError::Discovery {
        plugin: name.to_string(),
        message: format!("{}: {message}", p.display()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonSpec {
    #[serde(default)]
    addr: String,
    #[serde(default, rename = "TLSConfig")]
    tls_config: Option<serde_json::Value>,
}

/// A `.json` file: `Addr`, and `TLSConfig`, which this cnm refuses rather
/// than ignoring (talking in clear to a plugin meant to be reached over
/// TLS would be a surprise).
pub fn parse_json(name: &str, p: &Path, text: &str) -> Result<Addr, PluginError> {
    let bad = |message: String| PluginError::Discovery {
        plugin: name.to_string(),
        message: format!("{}: {message}", p.display()),
    };
    let spec: JsonSpec = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let tls = spec
        .tls_config
        .as_ref()
        .is_some_and(|t| t.as_object().is_some_and(|o| !o.is_empty()));
    if tls {
        return Err(bad(
            "TLSConfig is set, and this cnm speaks to plugins over unix sockets and plain TCP only"
                .into(),
        ));
    }
    parse_url(&spec.addr).map_err(bad)
}

fn parse_url(url: &str) -> Result<Addr, String> {
    if let Some(path) = url.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(format!("'{url}': a unix address needs an absolute path"));
        }
        return Ok(Addr::Unix(PathBuf::from(path)));
    }
    if let Some(hostport) = url.strip_prefix("tcp://") {
        let hostport = hostport.trim_end_matches('/');
        if hostport.is_empty() || !hostport.contains(':') || hostport.contains('/') {
            return Err(format!("'{url}': a tcp address is tcp://HOST:PORT"));
        }
        return Ok(Addr::Tcp(hostport.to_string()));
    }
    if url.starts_with("https://") {
        return Err(format!(
            "'{url}': https plugins need TLS, which this cnm does not speak"
        ));
    }
    Err(format!(
        "'{url}' is not a plugin address (unix:///PATH or tcp://HOST:PORT)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_and_json_addresses() {
        let p = Path::new("/x");
        assert_eq!(
            parse_spec("n", p, "tcp://127.0.0.1:9000\n").ok(),
            Some(Addr::Tcp("127.0.0.1:9000".into()))
        );
        assert_eq!(
            parse_spec("n", p, "unix:///run/n.sock").ok(),
            Some(Addr::Unix("/run/n.sock".into()))
        );
        assert!(parse_spec("n", p, "n.sock").is_err());
        assert_eq!(
            parse_json("n", p, r#"{"Name":"n","Addr":"tcp://h:1"}"#).ok(),
            Some(Addr::Tcp("h:1".into()))
        );
        let tls = parse_json("n", p, r#"{"Addr":"tcp://h:1","TLSConfig":{"CAFile":"c"}}"#);
        assert!(tls.is_err_and(|e| e.to_string().contains("TLSConfig")));
    }

    #[test]
    fn paths_in_docker_order() {
        let p = paths("weave");
        assert_eq!(p[0], PathBuf::from("/run/docker/plugins/weave.sock"));
        assert_eq!(p[2], PathBuf::from("/etc/docker/plugins/weave.spec"));
        assert_eq!(p.len(), 10);
    }

    #[test]
    fn names_that_escape_are_refused() {
        assert!(find("../x").is_err());
        assert!(find("a/b").is_err());
    }
}
