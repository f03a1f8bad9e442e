//! Published ports: Docker's short syntax
//! `[HOST_IP:]HOST_PORT[-END]:PORT[-END][/tcp|udp|sctp]` and the long form
//! `{ host_ip, published, target, protocol }`.

use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// A published port's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `tcp` (the default).
    Tcp,
    /// `udp`.
    Udp,
    /// `sctp`.
    Sctp,
}

impl Protocol {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            other => Err(format!(
                "unknown protocol '{other}' (expected tcp, udp or sctp)"
            )),
        }
    }
    /// The name as the file writes it (`tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One published port range; `published` and `target` have the same length.
/// `published` is `(0, 0)` for a single port published on a host port cnm
/// chooses (`"80"`, `"127.0.0.1::80"`, Docker's `-p 80`): see
/// [`PortMapping::ephemeral`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortMapping {
    /// The host address it is published on; `None`: not given (every host
    /// address, unless the network sets a default).
    pub host_ip: Option<IpAddr>,
    /// Host ports, first and last (`(8080, 8080)` for one port); `(0, 0)`:
    /// one cnm chooses.
    pub published: (u16, u16),
    /// Ports in the sandbox, first and last.
    pub target: (u16, u16),
    /// The transport protocol.
    pub protocol: Protocol,
}

impl PortMapping {
    /// No host port given: cnm chooses one from the ephemeral range when
    /// planning, and keeps it in its records.
    pub fn ephemeral(&self) -> bool {
        self.published.0 == 0
    }

    /// True when both mappings claim the same host port somewhere (a port
    /// still to be chosen claims none).
    pub fn clashes_with(&self, other: &PortMapping) -> bool {
        if self.ephemeral() || other.ephemeral() {
            return false;
        }
        let ips_meet = match (self.host_ip, other.host_ip) {
            (None, _) | (_, None) => true,
            (Some(a), Some(b)) => a == b || a.is_unspecified() || b.is_unspecified(),
        };
        ips_meet
            && self.protocol == other.protocol
            && self.published.0 <= other.published.1
            && other.published.0 <= self.published.1
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ephemeral() {
            // Docker's forms: `80/tcp`, `127.0.0.1::80/tcp`.
            match self.host_ip {
                Some(IpAddr::V6(ip)) => write!(f, "[{ip}]::")?,
                Some(ip) => write!(f, "{ip}::")?,
                None => {}
            }
            write_range(f, self.target)?;
            return write!(f, "/{}", self.protocol.as_str());
        }
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write_range(f, self.published)?;
        f.write_str(":")?;
        write_range(f, self.target)?;
        write!(f, "/{}", self.protocol.as_str())
    }
}

fn write_range(f: &mut fmt::Formatter<'_>, (a, b): (u16, u16)) -> fmt::Result {
    if a == b {
        write!(f, "{a}")
    } else {
        write!(f, "{a}-{b}")
    }
}

/// Parse one `ports:` item (a string or a long-form map).
pub fn parse_port(value: &serde_json::Value) -> Result<PortMapping, String> {
    match value {
        serde_json::Value::String(s) => parse_short(s),
        serde_json::Value::Object(map) => parse_long(map),
        serde_json::Value::Number(n) => parse_short(&n.to_string()),
        _ => Err("a port is a string like \"8080:80/tcp\" or a map { published, target, protocol, host_ip }".into()),
    }
}

fn parse_short(s: &str) -> Result<PortMapping, String> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, proto)) => (spec, Protocol::parse(proto)?),
        None => (s, Protocol::Tcp),
    };
    // The host IP may be an IPv6 address in brackets: "[::1]:8080:80".
    let (host_ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (ip, rest) = stripped
            .split_once("]:")
            .ok_or_else(|| format!("port '{s}': unterminated '[' around the host IP"))?;
        (Some(parse_ip(ip, s)?), rest)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            2 => (None, spec),
            3 => (Some(parse_ip(parts[0], s)?), &spec[parts[0].len() + 1..]),
            // `PORT`: the host port is cnm's to choose.
            1 => return ephemeral(None, parse_range(spec, s)?, protocol, s),
            _ => {
                return Err(format!(
                    "port '{s}' is not [HOST_IP:][HOST_PORT:]PORT[/PROTOCOL]"
                ))
            }
        }
    };
    let (published, target) = rest
        .split_once(':')
        .ok_or_else(|| format!("port '{s}' is not [HOST_IP:][HOST_PORT:]PORT[/PROTOCOL]"))?;
    if published.is_empty() {
        // `IP::PORT`: on that address, the host port cnm's to choose.
        return ephemeral(host_ip, parse_range(target, s)?, protocol, s);
    }
    finish(
        host_ip,
        parse_range(published, s)?,
        parse_range(target, s)?,
        protocol,
        s,
    )
}

fn parse_long(map: &serde_json::Map<String, serde_json::Value>) -> Result<PortMapping, String> {
    const KEYS: [&str; 4] = ["host_ip", "published", "target", "protocol"];
    if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown port key '{k}' (expected one of {})",
            KEYS.join(", ")
        ));
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match map.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(format!("port key '{key}' must be a string or number")),
        }
    };
    let target = text("target")?.ok_or("a long-form port needs 'target'")?;
    let protocol = match text("protocol")? {
        Some(p) => Protocol::parse(&p)?,
        None => Protocol::Tcp,
    };
    let host_ip = match text("host_ip")? {
        Some(ip) => Some(parse_ip(&ip, &ip)?),
        None => None,
    };
    let Some(published) = text("published")? else {
        return ephemeral(host_ip, parse_range(&target, &target)?, protocol, &target);
    };
    let what = format!("{published}:{target}");
    finish(
        host_ip,
        parse_range(&published, &what)?,
        parse_range(&target, &what)?,
        protocol,
        &what,
    )
}

/// A single port published on a host port cnm chooses.
fn ephemeral(
    host_ip: Option<IpAddr>,
    target: (u16, u16),
    protocol: Protocol,
    s: &str,
) -> Result<PortMapping, String> {
    if target.0 != target.1 {
        return Err(format!(
            "port '{s}': a range needs its host ports: write \"HOST_START-HOST_END:{}-{}\"",
            target.0, target.1
        ));
    }
    Ok(PortMapping {
        host_ip,
        published: (0, 0),
        target,
        protocol,
    })
}

fn finish(
    host_ip: Option<IpAddr>,
    published: (u16, u16),
    target: (u16, u16),
    protocol: Protocol,
    s: &str,
) -> Result<PortMapping, String> {
    if published.1 - published.0 != target.1 - target.0 {
        return Err(format!(
            "port '{s}': the host range and the container range must have the same length"
        ));
    }
    Ok(PortMapping {
        host_ip,
        published,
        target,
        protocol,
    })
}

fn parse_ip(ip: &str, whole: &str) -> Result<IpAddr, String> {
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| format!("port '{whole}': '{ip}' is not an IP address"))?;
    if addr == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST) {
        return Err(format!(
            "port '{whole}': the IPv6 loopback ::1 cannot be published: Linux routes nothing from ::1 to a container (IPv6 has no route_localnet); publish on 127.0.0.1, [::] or a host address"
        ));
    }
    if addr.is_multicast() {
        return Err(format!(
            "port '{whole}': {ip} is a multicast address; publish on a host address"
        ));
    }
    Ok(addr)
}

fn parse_range(r: &str, whole: &str) -> Result<(u16, u16), String> {
    let one = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!(
                "port '{whole}': '{p}' is not a port number (1-65535)"
            )),
            Ok(n) => Ok(n),
        }
    };
    match r.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b {
                return Err(format!("port '{whole}': range {a}-{b} runs backwards"));
            }
            Ok((a, b))
        }
        None => {
            let p = one(r)?;
            Ok((p, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn short_forms() -> TestResult {
        let p = parse_port(&json!("8080:80"))?;
        assert_eq!(
            (p.host_ip, p.published, p.target, p.protocol),
            (None, (8080, 8080), (80, 80), Protocol::Tcp)
        );
        let p = parse_port(&json!("127.0.0.1:5353:53/udp"))?;
        assert_eq!(p.host_ip, Some("127.0.0.1".parse()?));
        assert_eq!(p.protocol, Protocol::Udp);
        let p = parse_port(&json!("[fd00::1]:8000-8001:80-81/sctp"))?;
        assert_eq!(p.to_string(), "[fd00::1]:8000-8001:80-81/sctp");
        assert!(parse_port(&json!("[::1]:8080:80"))
            .unwrap_err()
            .contains("IPv6 loopback"));
        Ok(())
    }

    #[test]
    fn ephemeral_forms() -> TestResult {
        for (text, shown) in [
            (json!("80"), "80/tcp"),
            (json!(80), "80/tcp"),
            (json!("53/udp"), "53/udp"),
            (json!("127.0.0.1::80"), "127.0.0.1::80/tcp"),
            (json!("[fd00::1]::80"), "[fd00::1]::80/tcp"),
            (json!({"target": 80}), "80/tcp"),
        ] {
            let p = parse_port(&text)?;
            assert!(p.ephemeral(), "{text}");
            assert_eq!(p.to_string(), shown);
            assert_eq!(parse_port(&json!(shown))?, p, "{shown} reads back");
        }
        Ok(())
    }

    #[test]
    fn long_form() -> TestResult {
        let p = parse_port(
            &json!({"published": 8080, "target": "80", "protocol": "udp", "host_ip": "10.0.0.1"}),
        )?;
        assert_eq!(p.to_string(), "10.0.0.1:8080:80/udp");
        assert!(
            parse_port(&json!({"published": 1, "target": 2, "proto": "udp"}))
                .unwrap_err()
                .contains("unknown port key 'proto'")
        );
        Ok(())
    }

    #[test]
    fn errors() {
        assert!(parse_port(&json!("80-81"))
            .unwrap_err()
            .contains("needs its host ports"));
        assert!(parse_port(&json!("8080:80/icmp"))
            .unwrap_err()
            .contains("unknown protocol"));
        assert!(parse_port(&json!("70000:80"))
            .unwrap_err()
            .contains("not a port number"));
        assert!(parse_port(&json!("8000-8002:80-81"))
            .unwrap_err()
            .contains("same length"));
        assert!(parse_port(&json!("x.y:80:80"))
            .unwrap_err()
            .contains("not an IP"));
    }

    #[test]
    fn clashes() -> TestResult {
        let a = parse_port(&json!("8080:80"))?;
        let b = parse_port(&json!("127.0.0.1:8080:81"))?;
        let c = parse_port(&json!("8080:80/udp"))?;
        let d = parse_port(&json!("127.0.0.1:8081:80"))?;
        assert!(a.clashes_with(&b));
        assert!(!a.clashes_with(&c));
        assert!(!b.clashes_with(&d));
        Ok(())
    }
}
