//! A network's chain of CNI plugins, as the runtime half of CNI sees it:
//! loaded (inline or from a conflist), its plugins found in the CNI path,
//! its version negotiated, and each plugin's configuration built as libcni
//! builds it (`name`, `cniVersion`, `runtimeConfig` for the capabilities a
//! plugin declares, `prevResult` added at call time).

use super::options::{CniOptions, Source, MAX_PLUGINS};
use crate::cni::{exec, Version, SUPPORTED};
use crate::topology::PortMapping;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Where runtimes keep network configuration lists.
pub const CONF_DIR: &str = "/etc/cni/net.d";
/// Most configuration files read from [`CONF_DIR`], and most bytes each.
const MAX_CONF_FILES: usize = 256;
const MAX_CONF_BYTES: u64 = 1 << 20;

/// A chain, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The network's CNI name: `<topology>-<network>` inline, the
    /// conflist's own otherwise.
    pub name: String,
    /// Each plugin's configuration as written.
    pub plugins: Vec<Value>,
}

impl Chain {
    /// The chain of a network's options (a conflist is read now).
    pub fn load(topology: &str, network: &str, o: &CniOptions) -> Result<Chain, String> {
        match &o.source {
            Source::Inline(plugins) => Ok(Chain {
                name: format!("{topology}-{network}"),
                plugins: plugins.clone(),
            }),
            Source::Conflist(name) => conflist(Path::new(CONF_DIR), name),
        }
    }

    /// Whether a plugin of the chain gives addresses (an `ipam` section):
    /// then plan shows them as known after apply. Otherwise cnm gives
    /// them, through a `static` IPAM section.
    pub fn own_ipam(&self) -> bool {
        self.plugins.iter().any(|p| p.get("ipam").is_some())
    }

    /// Whether a plugin declares capability `cap` (`portMappings`).
    pub fn has_capability(&self, cap: &str) -> bool {
        self.plugins.iter().any(|p| declares(p, cap))
    }

    /// Every binary the chain runs: the plugins, their IPAM plugins, and
    /// `static` when cnm gives the addresses.
    pub fn binaries(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.plugins {
            let kind = p.get("type").and_then(Value::as_str).unwrap_or_default();
            let ipam = p.pointer("/ipam/type").and_then(Value::as_str);
            out.extend([Some(kind), ipam].into_iter().flatten().map(str::to_string));
        }
        if !self.own_ipam() {
            out.push("static".into());
        }
        out.sort();
        out.dedup();
        out
    }

    /// Every binary found, or the first missing one named with the
    /// directories searched.
    pub fn find_all(&self, path: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, String> {
        self.binaries()
            .into_iter()
            .map(|b| exec::find(&b, path).map(|p| (b, p)))
            .collect()
    }

    /// The newest version cnm and every binary of the chain speak.
    pub async fn negotiate(&self, path: &[PathBuf]) -> Result<Version, String> {
        let mut common: Vec<&str> = SUPPORTED.to_vec();
        for (kind, binary) in self.find_all(path)? {
            let theirs = exec::versions(&binary, path)
                .await
                .map_err(|e| format!("plugin {kind}: VERSION failed: {e}"))?;
            common.retain(|v| theirs.iter().any(|t| t == v));
        }
        common
            .iter()
            .filter_map(|v| Version::parse(v))
            .max()
            .ok_or_else(|| {
                format!(
                    "no CNI version is spoken by cnm ({}) and every plugin of the chain",
                    SUPPORTED.join(", ")
                )
            })
    }

    /// Each plugin's configuration for version `v`: `addresses` (cnm's,
    /// as a `static` IPAM section of the first plugin) and the
    /// endpoint's `ports` for the plugins declaring `portMappings`.
    pub fn configs(&self, v: Version, addresses: &[Value], ports: &[PortMapping]) -> Vec<Value> {
        let mut out = Vec::new();
        for (i, p) in self.plugins.iter().enumerate() {
            let mut c = p.clone();
            c["name"] = json!(self.name);
            c["cniVersion"] = json!(v.to_string());
            if i == 0 && !self.own_ipam() && !addresses.is_empty() {
                c["ipam"] = json!({ "type": "static", "addresses": addresses });
            }
            if declares(p, "portMappings") && !ports.is_empty() {
                c["runtimeConfig"] = json!({ "portMappings": port_mappings(ports) });
            }
            out.push(c);
        }
        out
    }
}

fn declares(p: &Value, cap: &str) -> bool {
    p.pointer(&format!("/capabilities/{cap}"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// An endpoint's ports as portmap's `portMappings`, one per port of a
/// range.
fn port_mappings(ports: &[PortMapping]) -> Vec<Value> {
    let mut out = Vec::new();
    for p in ports {
        for (host, container) in (p.published.0..=p.published.1).zip(p.target.0..=p.target.1) {
            let mut m = json!({ "hostPort": host, "containerPort": container, "protocol": p.protocol.as_str() });
            if let Some(ip) = p.host_ip {
                m["hostIP"] = json!(ip.to_string());
            }
            out.push(m);
        }
    }
    out
}

/// The configuration list named `name` in `dir` (`*.conflist`, or a
/// single plugin's `*.conf` / `*.json`, as libcni reads them).
fn conflist(dir: &Path, name: &str) -> Result<Chain, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("conflist {name}: cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "conflist" || x == "conf" || x == "json")
        })
        .take(MAX_CONF_FILES)
        .collect();
    files.sort();
    for f in files {
        let Ok(file) = std::fs::File::open(&f) else {
            continue;
        };
        let mut text = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CONF_BYTES), &mut text)
            .is_err()
        {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&text) else {
            continue;
        };
        if v.get("name").and_then(Value::as_str) != Some(name) {
            continue;
        }
        let plugins = match v.get("plugins").and_then(Value::as_array) {
            Some(list) => list.clone(),
            None => vec![v.clone()],
        };
        if plugins.is_empty()
            || plugins.len() > MAX_PLUGINS
            || plugins
                .iter()
                .any(|p| p.get("type").and_then(Value::as_str).is_none())
        {
            return Err(format!(
                "conflist {name} ({}): its plugins must be 1 to {MAX_PLUGINS} objects with a type",
                f.display()
            ));
        }
        let plugins = plugins
            .into_iter()
            .map(|mut p| {
                if let Some(o) = p.as_object_mut() {
                    o.remove("name");
                    o.remove("cniVersion");
                }
                p
            })
            .collect();
        return Ok(Chain {
            name: name.to_string(),
            plugins,
        });
    }
    Err(format!(
        "conflist {name}: no network configuration list of that name in {}",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(plugins: Value) -> Chain {
        Chain {
            name: "lab-pods".into(),
            plugins: plugins.as_array().unwrap().clone(),
        }
    }

    #[test]
    fn cnm_gives_addresses_through_static_when_the_chain_has_no_ipam() {
        let c = chain(json!([{ "type": "macvlan", "master": "lan0" }, { "type": "tuning" }]));
        assert!(!c.own_ipam());
        assert_eq!(c.binaries(), ["macvlan", "static", "tuning"]);
        let addr = [json!({ "address": "10.151.0.2/24", "gateway": "10.151.0.1" })];
        let confs = c.configs(Version(1, 0, 0), &addr, &[]);
        assert_eq!(confs[0]["ipam"]["type"], "static");
        assert_eq!(confs[0]["name"], "lab-pods");
        assert_eq!(confs[1]["cniVersion"], "1.0.0");
        assert!(confs[1].get("ipam").is_none());
    }

    #[test]
    fn a_chain_with_ipam_keeps_it_and_ports_go_to_portmap() {
        let c = chain(json!([
            { "type": "bridge", "ipam": { "type": "host-local" } },
            { "type": "portmap", "capabilities": { "portMappings": true } }
        ]));
        assert!(c.own_ipam() && c.has_capability("portMappings"));
        assert_eq!(c.binaries(), ["bridge", "host-local", "portmap"]);
        let ports = vec![crate::topology::parse_port(&json!("8080:80")).unwrap()];
        let confs = c.configs(Version(0, 4, 0), &[], &ports);
        assert_eq!(confs[0]["ipam"]["type"], "host-local");
        assert_eq!(
            confs[1]["runtimeConfig"]["portMappings"][0]["hostPort"],
            8080
        );
    }

    #[test]
    fn a_conflist_is_found_by_name() {
        let dir = std::env::temp_dir().join(format!("cnm-conflist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("10-x.conflist"),
            r#"{"cniVersion":"1.0.0","name":"mynet","plugins":[{"type":"bridge","name":"x"}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("20-y.conf"),
            r#"{"cniVersion":"0.4.0","name":"single","type":"ptp"}"#,
        )
        .unwrap();
        let c = conflist(&dir, "mynet").unwrap();
        assert_eq!(c.plugins, vec![json!({"type": "bridge"})]);
        assert_eq!(conflist(&dir, "single").unwrap().plugins[0]["type"], "ptp");
        assert!(conflist(&dir, "nope")
            .unwrap_err()
            .contains("no network configuration list"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
