//! `netns:` of a sandbox: an existing network namespace cnm borrows
//! instead of making one.

use std::fmt;
use std::path::PathBuf;

/// Where a borrowed namespace is found. Resolved to a namespace file when
/// planning (see `observe::borrowed`), never at load time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetnsRef {
    /// An absolute path to a namespace file (`/run/netns/x`,
    /// `/proc/PID/ns/net`, a bind mount of one).
    Path(PathBuf),
    /// `pid:N`: the namespace process N is in.
    Pid(u32),
    /// `docker:NAME`: the namespace of a running Docker container.
    Docker(String),
    /// `podman:NAME`: the namespace of a running Podman container.
    Podman(String),
}

/// Longest `netns:` value: a path or a container name.
const MAX_LEN: usize = 4096;

impl NetnsRef {
    /// Parse `netns:` as written: a path, `pid:N`, `docker:NAME` or
    /// `podman:NAME`. The error says what is wrong.
    pub fn parse(s: &str) -> Result<NetnsRef, String> {
        if s.len() > MAX_LEN || s.contains('\0') {
            return Err(format!("is longer than {MAX_LEN} bytes or holds NUL"));
        }
        if let Some(pid) = s.strip_prefix("pid:") {
            return match pid.parse::<u32>() {
                Ok(n) if n > 0 => Ok(NetnsRef::Pid(n)),
                _ => Err(format!(
                    "has pid '{pid}', which is not a process id (pid:N, N > 0)"
                )),
            };
        }
        for (prefix, make) in [
            ("docker:", NetnsRef::Docker as fn(String) -> NetnsRef),
            ("podman:", NetnsRef::Podman),
        ] {
            if let Some(name) = s.strip_prefix(prefix) {
                return container_name(name)
                    .map(|()| make(name.to_string()))
                    .map_err(|e| format!("names container '{name}', which {e}"));
            }
        }
        if !s.starts_with('/') {
            return Err(
                "is neither an absolute path, pid:N, docker:NAME nor podman:NAME".to_string(),
            );
        }
        if s.split('/').any(|part| part == "..") {
            return Err("must not contain '..'".to_string());
        }
        Ok(NetnsRef::Path(PathBuf::from(s)))
    }
}

/// A container name or id as Docker and Podman accept them
/// (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`): it goes on their command line, so it
/// must not start with '-'.
fn container_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("is empty".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err("must start with a letter or digit".into())
        }
        _ => {}
    }
    if name.len() > 255 {
        return Err("is longer than 255 bytes".into());
    }
    if chars.any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err("may hold only letters, digits, '_', '.' and '-'".into());
    }
    Ok(())
}

impl fmt::Display for NetnsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsRef::Path(p) => write!(f, "{}", p.display()),
            NetnsRef::Pid(n) => write!(f, "pid:{n}"),
            NetnsRef::Docker(n) => write!(f, "docker:{n}"),
            NetnsRef::Podman(n) => write!(f, "podman:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_print_back() {
        for s in [
            "/run/netns/x",
            "/proc/42/ns/net",
            "pid:42",
            "docker:web-1",
            "podman:db.2",
        ] {
            assert_eq!(NetnsRef::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_forms_are_refused() {
        for s in [
            "x",
            "pid:0",
            "pid:-1",
            "pid:abc",
            "docker:",
            "docker:-rm",
            "podman:a b",
            "/run/../etc",
            "run/netns/x",
        ] {
            assert!(NetnsRef::parse(s).is_err(), "{s}");
        }
    }
}
