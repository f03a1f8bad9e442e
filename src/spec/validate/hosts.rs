//! `hosts:` and `sandboxes:`.

use super::super::raw::*;
use super::super::*;
use super::{known, Diagnostics, MAX_OBJECT_NAME};
use crate::naming::{is_hostname, valid_identifier};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `hosts:`: names, underlay addresses (unique, one address family).
pub(super) fn check_hosts(
    c: &mut Diagnostics,
    raw: &Map<Option<RawHost>>,
) -> BTreeMap<String, Host> {
    let mut out: BTreeMap<String, Host> = BTreeMap::new();
    for (name, spanned) in raw {
        if let Err(e) = valid_identifier(name, MAX_OBJECT_NAME) {
            c.err(spanned, format!("host '{name}': name {e}"));
            continue;
        }
        let Some(h) = &spanned.value else {
            c.err(
                spanned,
                format!("host {name}: needs an address: {{ address: 192.0.2.10 }}"),
            );
            continue;
        };
        let Some(address) = c.parse::<IpAddr>(&h.address, &format!("host {name}: address")) else {
            continue;
        };
        if address.is_unspecified() || address.is_loopback() || address.is_multicast() {
            c.err(
                &h.address,
                format!("host {name}: address {address} cannot be a VXLAN endpoint; give the machine's underlay address"),
            );
            continue;
        }
        if let Some(other) = out.values().find(|o| o.address == address) {
            c.err(
                &h.address,
                format!(
                    "host {name}: address {address} is also the address of host {}",
                    other.name
                ),
            );
            continue;
        }
        if let Some(other) = out
            .values()
            .find(|o| o.address.is_ipv4() != address.is_ipv4())
        {
            c.err(
                &h.address,
                format!(
                    "host {name}: address {address} is not of the same IP family as host {}'s {}; VXLAN needs one underlay family",
                    other.name, other.address
                ),
            );
            continue;
        }
        out.insert(
            name.clone(),
            Host {
                name: name.clone(),
                loc: spanned.into(),
                address,
            },
        );
    }
    out
}

pub(super) fn check_sandboxes(
    c: &mut Diagnostics,
    raw: &Map<Option<RawSandbox>>,
    hosts: &BTreeMap<String, Host>,
) -> BTreeMap<String, Sandbox> {
    let mut out = BTreeMap::new();
    for (name, spanned) in raw {
        if let Err(e) = valid_identifier(name, MAX_OBJECT_NAME) {
            c.err(spanned, format!("sandbox '{name}': name {e}"));
            continue;
        }
        let empty = RawSandbox::default();
        let s = spanned.value.as_ref().unwrap_or(&empty);
        let mut sb = Sandbox {
            name: name.clone(),
            loc: spanned.into(),
            hostname: None,
            domainname: None,
            dns: None,
            host: None,
            extra_hosts: Vec::new(),
            netns: None,
            container_id: None,
            sysctls: BTreeMap::new(),
        };
        check_sandbox_host(c, name, spanned, s.host.as_ref(), hosts, &mut sb);
        check_extra_hosts(c, name, &s.extra_hosts, &mut sb);
        check_netns(c, name, s, &mut sb);
        if let Some(v) = &s.container_id {
            match crate::naming::valid_container_id(&v.value) {
                Ok(()) => sb.container_id = Some(v.value.clone()),
                Err(e) => c.err(v, format!("sandbox {name}: container_id {e}")),
            }
        }
        sb.sysctls = super::sysctls::check(c, name, &s.sysctls);
        for (key, field, slot) in [
            ("hostname", &s.hostname, &mut sb.hostname),
            ("domainname", &s.domainname, &mut sb.domainname),
        ] {
            if let Some(v) = field {
                match is_hostname(&v.value) {
                    Ok(()) => *slot = Some(v.value.clone()),
                    Err(e) => c.err(
                        v,
                        format!("sandbox {name}: {key} '{}' {e}", v.value.escape_debug()),
                    ),
                }
            }
        }
        if let Some(d) = &s.dns {
            sb.dns = Some(check_dns(c, name, &d.value));
        }
        out.insert(name.clone(), sb);
    }
    out
}

/// `netns:`: an existing namespace, in one of its forms. cnm writes no
/// hosts or resolv.conf for a borrowed namespace, so the keys that only
/// shape those files are refused with it rather than silently ignored.
fn check_netns(c: &mut Diagnostics, name: &str, s: &RawSandbox, sb: &mut Sandbox) {
    let Some(v) = &s.netns else { return };
    match crate::spec::NetnsRef::parse(&v.value) {
        Ok(r) => sb.netns = Some(r),
        Err(e) => c.err(
            v,
            format!("sandbox {name}: netns '{}' {e}", v.value.escape_debug()),
        ),
    }
    let files_only: [(&str, Option<Loc>); 4] = [
        ("hostname", s.hostname.as_ref().map(Loc::from)),
        ("domainname", s.domainname.as_ref().map(Loc::from)),
        ("dns", s.dns.as_ref().map(Loc::from)),
        ("extra_hosts", s.extra_hosts.first().map(Loc::from)),
    ];
    for (key, loc) in files_only {
        if let Some(loc) = loc {
            c.err(
                loc,
                format!(
                    "sandbox {name}: {key} cannot be used with netns: cnm writes no hosts or resolv.conf for a namespace it borrows (the container keeps its own)"
                ),
            );
        }
    }
}

/// More extra hosts-file lines than any sandbox needs.
const MAX_EXTRA_HOSTS: usize = 256;

/// `extra_hosts: ["NAME:IP", ...]`: a hostname, then an IP address (split
/// at the first colon, so `NAME:::1` is IPv6) or `host-gateway`.
fn check_extra_hosts(c: &mut Diagnostics, name: &str, raw: &[Spanned<String>], sb: &mut Sandbox) {
    if raw.len() > MAX_EXTRA_HOSTS {
        c.err(
            &raw[MAX_EXTRA_HOSTS],
            format!("sandbox {name}: at most {MAX_EXTRA_HOSTS} extra_hosts"),
        );
        return;
    }
    for v in raw {
        let what = format!("sandbox {name}: extra_hosts '{}'", v.value.escape_debug());
        let Some((host, ip)) = v.value.split_once(':') else {
            c.err(v, format!("{what} is not NAME:IP"));
            continue;
        };
        if let Err(e) = is_hostname(host) {
            c.err(v, format!("{what}: name {e}"));
            continue;
        }
        let ip = match ip.trim() {
            crate::spec::HOST_GATEWAY => None,
            text => match text.parse::<std::net::IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    c.err(
                        v,
                        format!("{what}: '{text}' is neither an IP address nor host-gateway"),
                    );
                    continue;
                }
            },
        };
        sb.extra_hosts.push(crate::spec::ExtraHost {
            name: host.to_string(),
            ip,
            loc: v.into(),
        });
    }
}

/// A sandbox's `host:`: one of `hosts:`, and required when the file
/// declares hosts.
fn check_sandbox_host(
    c: &mut Diagnostics,
    name: &str,
    spanned: &Spanned<Option<RawSandbox>>,
    host: Option<&Spanned<String>>,
    hosts: &BTreeMap<String, Host>,
    sb: &mut Sandbox,
) {
    match host {
        Some(h) if hosts.contains_key(&h.value) => sb.host = Some(h.value.clone()),
        // Refused itself: its own error says why.
        Some(h) if c.is_refused("host", &h.value) => {}
        Some(h) if hosts.is_empty() => c.err(
            h,
            format!(
                "sandbox {name}: host '{}' is not defined; the file declares no hosts:",
                h.value
            ),
        ),
        Some(h) => c.err(
            h,
            format!(
                "sandbox {name}: host '{}' is not defined{}",
                h.value,
                known(hosts.keys())
            ),
        ),
        None if !hosts.is_empty() || c.any_refused("host") => c.err(
            spanned,
            format!(
                "sandbox {name}: needs host: (one of {}): the file declares hosts, so every sandbox names the machine that runs it",
                hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        None => {}
    }
}

/// A sandbox's `dns:`: server addresses, search domains, resolv.conf
/// options; the valid ones are kept.
fn check_dns(c: &mut Diagnostics, name: &str, d: &RawDns) -> Dns {
    let mut dns = Dns::default();
    for srv in &d.servers {
        if let Some(ip) = c.parse::<IpAddr>(srv, &format!("sandbox {name}: dns server")) {
            dns.servers.push(ip);
        }
    }
    for dom in &d.search {
        match is_hostname(&dom.value) {
            Ok(()) => dns.search.push(dom.value.clone()),
            Err(e) => c.err(
                dom,
                format!(
                    "sandbox {name}: dns search domain '{}' {e}",
                    dom.value.escape_debug()
                ),
            ),
        }
    }
    for opt in &d.options {
        let ok = !opt.value.is_empty()
            && opt
                .value
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, ':' | '_' | '-' | '.'));
        if ok {
            dns.options.push(opt.value.clone());
        } else {
            c.err(
                opt,
                format!(
                    "sandbox {name}: dns option '{}' is not a resolv.conf option like ndots:2",
                    opt.value.escape_debug()
                ),
            );
        }
    }
    dns
}
