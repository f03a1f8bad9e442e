//! The per-sandbox files cnm writes: `/etc/netns/<netns>/hosts` and
//! `resolv.conf`. Rendering and parsing only; `safe` writes them.

use std::fmt::Write as _;
use std::net::IpAddr;

/// One line of a hosts file: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsEntry {
    pub addr: IpAddr,
    pub names: Vec<String>,
}

/// What a sandbox's hosts file says, besides localhost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsContent {
    pub topology: String,
    pub sandbox: String,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// Aliases of each of the sandbox's own endpoints; recorded as comments so
    /// `cnm show` can give them back.
    pub aliases: Vec<(String, Vec<String>)>,
    /// The sandbox's own names on its own addresses.
    pub own: Vec<HostsEntry>,
    /// The sandbox's `extra_hosts`, after its own names.
    pub extra: Vec<HostsEntry>,
    /// Sandboxes sharing a network, at their address on that network, as
    /// rendered lines (see [`render_entry`]): built once per network and
    /// shared by every member's file.
    pub peers: Vec<String>,
}

/// The first line of every file cnm writes for a sandbox.
pub fn header(topology: &str, sandbox: &str) -> String {
    format!("# Managed by cnm (topology {topology}, sandbox {sandbox}); edits are overwritten.\n")
}

/// The lines Docker starts every container's hosts file with.
pub const DOCKER_HOSTS_HEAD: &str = "127.0.0.1\tlocalhost\n\
    ::1\tlocalhost ip6-localhost ip6-loopback\n\
    fe00::0\tip6-localnet\n\
    ff00::0\tip6-mcastprefix\n\
    ff02::1\tip6-allnodes\n\
    ff02::2\tip6-allrouters\n";

pub fn render_hosts(h: &HostsContent) -> String {
    let mut s = header(&h.topology, &h.sandbox);
    if let Some(n) = &h.hostname {
        let _ = writeln!(s, "# cnm-hostname: {n}");
    }
    if let Some(d) = &h.domainname {
        let _ = writeln!(s, "# cnm-domainname: {d}");
    }
    for (ep, aliases) in &h.aliases {
        let _ = writeln!(s, "# cnm-aliases: {ep} {}", aliases.join(" "));
    }
    s.push_str(DOCKER_HOSTS_HEAD);
    for e in h.own.iter().chain(&h.extra) {
        s.push_str(&render_entry(e));
    }
    for line in &h.peers {
        s.push_str(line);
    }
    s
}

/// One hosts line, names deduplicated, with its newline.
pub fn render_entry(e: &HostsEntry) -> String {
    format!("{}\t{}\n", e.addr, dedup(&e.names).join(" "))
}

fn dedup(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// Hostname, domainname and per-endpoint aliases recorded in a hosts file.
pub type HostsMeta = (Option<String>, Option<String>, Vec<(String, Vec<String>)>);

/// The `# cnm-...` metadata of a hosts file cnm wrote: hostname, domainname
/// and per-endpoint aliases.
pub fn parse_hosts_meta(text: &str) -> HostsMeta {
    let (mut host, mut domain, mut aliases) = (None, None, Vec::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("# cnm-hostname: ") {
            host = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("# cnm-domainname: ") {
            domain = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("# cnm-aliases: ") {
            let mut words = v.split_whitespace();
            if let Some(ep) = words.next() {
                aliases.push((ep.to_string(), words.map(str::to_string).collect()));
            }
        }
    }
    (host, domain, aliases)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolv {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// A resolv.conf in Docker's order: search, nameservers, options.
pub fn render_resolv(topology: &str, sandbox: &str, r: &Resolv) -> String {
    let mut s = header(topology, sandbox);
    if !r.search.is_empty() {
        let _ = writeln!(s, "search {}", r.search.join(" "));
    }
    for ns in &r.nameservers {
        let _ = writeln!(s, "nameserver {ns}");
    }
    if !r.options.is_empty() {
        let _ = writeln!(s, "options {}", r.options.join(" "));
    }
    s
}

/// Parse a resolv.conf (the host's, or one cnm wrote).
pub fn parse_resolv(text: &str) -> Resolv {
    let mut r = Resolv::default();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if let Some(ip) = w.next().and_then(|a| a.parse().ok()) {
                    r.nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => r.search = w.map(str::to_string).collect(),
            Some("options") => r.options.extend(w.map(str::to_string)),
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn hosts_round_trip_metadata() -> TestResult {
        let h = HostsContent {
            topology: "shop".into(),
            sandbox: "web".into(),
            hostname: Some("web".into()),
            domainname: Some("shop.local".into()),
            aliases: vec![("web-front".into(), vec!["www".into()])],
            own: vec![HostsEntry {
                addr: "10.0.0.2".parse()?,
                names: vec!["web.shop.local".into(), "web".into(), "web".into()],
            }],
            extra: Vec::new(),
            peers: vec![render_entry(&HostsEntry {
                addr: "10.0.0.3".parse()?,
                names: vec!["db".into()],
            })],
        };
        let text = render_hosts(&h);
        assert!(text.contains("10.0.0.2\tweb.shop.local web\n"));
        assert!(text.contains("10.0.0.3\tdb\n"));
        let (host, dom, aliases) = parse_hosts_meta(&text);
        assert_eq!(host.as_deref(), Some("web"));
        assert_eq!(dom.as_deref(), Some("shop.local"));
        assert_eq!(aliases, h.aliases);
        Ok(())
    }

    #[test]
    fn resolv_parse() {
        let r = parse_resolv(
            "# x\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch a b\noptions ndots:2 edns0\n",
        );
        assert_eq!(r.nameservers.len(), 2);
        assert_eq!(r.search, vec!["a", "b"]);
        assert_eq!(r.options, vec!["ndots:2", "edns0"]);
    }
}
