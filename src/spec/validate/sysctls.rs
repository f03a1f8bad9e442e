//! A sandbox's `sysctls:` (Docker's `--sysctl`): namespaced `net.*` keys
//! only, set inside the sandbox's own namespace.

use super::super::raw::Map;
use super::Diagnostics;
use std::collections::BTreeMap;

/// More sysctls than any sandbox needs.
const MAX_SYSCTLS: usize = 64;
/// Longest key and value.
const MAX_KEY: usize = 200;
const MAX_VALUE: usize = 256;

/// Valid sysctls, by path under /proc/sys (`net/ipv4/ip_forward`).
pub(super) fn check(
    c: &mut Diagnostics,
    sandbox: &str,
    raw: &Map<serde_json::Value>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(extra) = raw.values().nth(MAX_SYSCTLS) {
        c.err(
            extra,
            format!("sandbox {sandbox}: at most {MAX_SYSCTLS} sysctls"),
        );
        return out;
    }
    for (key, v) in raw {
        let what = format!("sandbox {sandbox}: sysctl {}", key.escape_debug());
        if let Err(e) = key_ok(key) {
            c.err(v, format!("{what}: {e}"));
            continue;
        }
        let value = match &v.value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => u8::from(*b).to_string(),
            _ => {
                c.err(v, format!("{what}: the value must be a string or a number"));
                continue;
            }
        };
        if value.len() > MAX_VALUE || value.chars().any(|ch| ch.is_control() && ch != '\t') {
            c.err(
                v,
                format!("{what}: the value must be one line of at most {MAX_VALUE} bytes"),
            );
            continue;
        }
        out.insert(key.replace('.', "/"), value);
    }
    out
}

/// `net.` and dot-separated words of `[A-Za-z0-9_-]`; a per-interface key
/// only for `all`, `default` or `lo` (cnm names the interfaces it adds,
/// and `default` reaches them as they are made).
fn key_ok(key: &str) -> Result<(), String> {
    if !key.starts_with("net.") {
        return Err("only namespaced net.* sysctls can be set in a sandbox".into());
    }
    if key.len() > MAX_KEY {
        return Err(format!("longer than {MAX_KEY} bytes"));
    }
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| {
        p.is_empty()
            || !p
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    }) {
        return Err("is not dot-separated words of letters, digits, '_' and '-'".into());
    }
    if parts.len() < 3 {
        return Err("names a directory, not a sysctl".into());
    }
    if matches!(parts[1], "ipv4" | "ipv6")
        && matches!(parts[2], "conf" | "neigh")
        && parts.len() > 4
        && !matches!(parts[3], "all" | "default" | "lo")
    {
        return Err(format!(
            "sets interface {}; use {}.{}.{}.default.{} (it applies to the interfaces cnm adds)",
            parts[3],
            parts[0],
            parts[1],
            parts[2],
            parts[4..].join(".")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::key_ok;

    #[test]
    fn keys() {
        assert!(key_ok("net.ipv4.ip_forward").is_ok());
        assert!(key_ok("net.ipv4.conf.all.rp_filter").is_ok());
        assert!(key_ok("net.ipv6.conf.default.disable_ipv6").is_ok());
        assert!(key_ok("kernel.shmmax").is_err());
        assert!(key_ok("net.ipv4.conf.eth0.rp_filter").is_err());
        assert!(key_ok("net.ipv4..x").is_err());
        assert!(key_ok("net.ipv4/../../x").is_err());
        assert!(key_ok("net.core").is_err());
    }
}
