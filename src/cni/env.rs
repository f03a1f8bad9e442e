//! The `CNI_*` environment a runtime sets for each call.

use super::error::{code, CniError};
use std::path::PathBuf;

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach a container to the network.
    Add,
    /// Detach it (idempotent).
    Del,
    /// Verify an attachment is as added.
    Check,
    /// Whether the plugin can serve ADDs (1.1.0).
    Status,
    /// Remove attachments the runtime no longer knows (1.1.0).
    Gc,
    /// The versions the plugin speaks.
    Version,
}

impl Command {
    /// `CNI_COMMAND` as written.
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }

    /// As `CNI_COMMAND` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// Whether the call concerns one attachment (needs the container's
    /// ID and interface name).
    fn attaches(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }

    /// Whether the call needs the container's namespace (DEL does not:
    /// it may come after the namespace is gone).
    fn needs_netns(self) -> bool {
        matches!(self, Command::Add | Command::Check)
    }
}

/// A call's environment, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID` (checked for ADD, DEL, CHECK).
    pub container_id: Option<String>,
    /// As passed (results carry it back verbatim).
    pub netns: Option<String>,
    /// `CNI_IFNAME` (a kernel interface name).
    pub ifname: Option<String>,
    /// `CNI_ARGS`, `K=V` pairs in order (cnm reads none: unknown keys are
    /// ignored, as the spec asks).
    pub args: Vec<(String, String)>,
    /// `CNI_PATH`, split.
    pub path: Vec<PathBuf>,
}

impl Env {
    /// Read and check the environment through `var` (the process's, in
    /// the binary). Errors are code 4, naming the variable.
    pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let bad = |name: &str, why: String| {
            CniError::new(code::INVALID_ENVIRONMENT, format!("{name} {why}"))
        };
        let command = var("CNI_COMMAND").unwrap_or_default();
        let command = Command::parse(&command).ok_or_else(|| {
            bad(
                "CNI_COMMAND",
                format!(
                    "'{}' is not ADD, DEL, CHECK, STATUS, GC or VERSION",
                    command.escape_debug()
                ),
            )
        })?;
        let present = |name: &str| var(name).filter(|v| !v.is_empty());
        let mut env = Env {
            command,
            container_id: present("CNI_CONTAINERID"),
            netns: present("CNI_NETNS"),
            ifname: present("CNI_IFNAME"),
            args: parse_args(&var("CNI_ARGS").unwrap_or_default()),
            path: std::env::split_paths(&var("CNI_PATH").unwrap_or_default())
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
        };
        if command.attaches() {
            let id = env
                .container_id
                .as_deref()
                .ok_or_else(|| bad("CNI_CONTAINERID", "is not set".into()))?;
            crate::naming::valid_container_id(id).map_err(|e| bad("CNI_CONTAINERID", e))?;
            let ifname = env
                .ifname
                .as_deref()
                .ok_or_else(|| bad("CNI_IFNAME", "is not set".into()))?;
            crate::naming::valid_kernel_name(ifname).map_err(|e| bad("CNI_IFNAME", e))?;
            if ifname == "lo" {
                return Err(bad("CNI_IFNAME", "is the loopback interface".into()));
            }
        }
        if command.needs_netns() {
            let ns = env
                .netns
                .as_deref()
                .ok_or_else(|| bad("CNI_NETNS", "is not set".into()))?;
            let dotdot = ns.split('/').any(|p| p == "..");
            if !ns.starts_with('/') || ns.contains('\0') || ns.len() > 4096 || dotdot {
                return Err(bad(
                    "CNI_NETNS",
                    format!(
                        "'{}' is not an absolute path without '..'",
                        ns.escape_debug()
                    ),
                ));
            }
        } else if env.netns.as_deref().is_some_and(|ns| !ns.starts_with('/')) {
            env.netns = None;
        }
        Ok(env)
    }
}

/// `K=V;K2=V2`; pieces without `=` are skipped.
fn parse_args(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read(vars: &[(&str, &str)]) -> Result<Env, CniError> {
        let m: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::read(|k| m.get(k).cloned())
    }

    #[test]
    fn add_needs_the_attachment_and_the_namespace() {
        let e = read(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENVIRONMENT);
        assert!(e.msg.contains("CNI_CONTAINERID"), "{e}");
        let e = read(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap_err();
        assert!(e.msg.contains("CNI_NETNS"), "{e}");
        let e = read(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "../x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/x"),
        ])
        .unwrap_err();
        assert!(e.msg.contains("CNI_CONTAINERID"), "{e}");
    }

    #[test]
    fn del_goes_without_a_namespace_and_unknown_args_are_kept_aside() {
        let e = read(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web;junk"),
        ])
        .unwrap();
        assert_eq!(e.command, Command::Del);
        assert_eq!(e.args.len(), 2);
        assert!(read(&[("CNI_COMMAND", "VERSION")]).is_ok());
        assert!(read(&[("CNI_COMMAND", "add")]).is_err());
    }
}
