//! The vocabulary of cnm's firewall rules, as typed nftables values (the
//! `nftables` crate's schema), never hand-written JSON: what a rule
//! matches and does is checked by the compiler, and serializes to exactly
//! what `nft -j` lists back.

use ipnetwork::IpNetwork;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Map, Meta, MetaKey, NamedExpression, Payload,
    PayloadField, Prefix, Range, SetItem, CT,
};
use nftables::stmt::{Match, NATFamily, Operator, Statement, NAT};
use std::borrow::Cow;
use std::net::IpAddr;

pub use crate::model::Body;

fn s(v: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(v.to_string()))
}

fn m(op: Operator, left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(protocol: &str, field: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Owned(protocol.to_string()),
            field: Cow::Owned(field.to_string()),
        },
    )))
}

/// `meta nfproto ipv4` / `ipv6`.
pub fn nfproto(v4: bool) -> Statement<'static> {
    m(
        Operator::EQ,
        meta(MetaKey::Nfproto),
        s(if v4 { "ipv4" } else { "ipv6" }),
    )
}

/// `iifname "x"` / `oifname "x"` (`!=` when `not`).
pub fn ifname(input: bool, name: &str, not: bool) -> Statement<'static> {
    let key = if input {
        MetaKey::Iifname
    } else {
        MetaKey::Oifname
    };
    let op = if not { Operator::NEQ } else { Operator::EQ };
    m(op, meta(key), s(name))
}

/// `iifname { "a", "b" }` / `oifname { … }`.
pub fn ifname_in(input: bool, names: &[String]) -> Statement<'static> {
    let key = if input {
        MetaKey::Iifname
    } else {
        MetaKey::Oifname
    };
    let set = names.iter().map(|n| SetItem::Element(s(n))).collect();
    m(
        Operator::EQ,
        meta(key),
        Expression::Named(NamedExpression::Set(set)),
    )
}

fn family_proto(v4: bool) -> &'static str {
    if v4 {
        "ip"
    } else {
        "ip6"
    }
}

/// `ip saddr 10.0.0.0/24` (`ip6` for IPv6).
pub fn saddr_in(net: &IpNetwork) -> Statement<'static> {
    m(
        Operator::EQ,
        payload(family_proto(net.is_ipv4()), "saddr"),
        Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(s(&net.network().to_string())),
            len: u32::from(net.prefix()),
        })),
    )
}

/// `ip daddr 192.0.2.1`.
pub fn daddr_eq(ip: IpAddr) -> Statement<'static> {
    m(
        Operator::EQ,
        payload(family_proto(ip.is_ipv4()), "daddr"),
        s(&ip.to_string()),
    )
}

/// `fib daddr type local`: any address of the host.
pub fn to_local_address() -> Statement<'static> {
    m(
        Operator::EQ,
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: [FibFlag::Daddr].into(),
        })),
        s("local"),
    )
}

fn ports(p: (u16, u16)) -> Expression<'static> {
    if p.0 == p.1 {
        Expression::Number(u32::from(p.0))
    } else {
        Expression::Range(Box::new(Range {
            range: [
                Expression::Number(u32::from(p.0)),
                Expression::Number(u32::from(p.1)),
            ],
        }))
    }
}

/// `tcp dport 8080` / `udp dport 8000-8010`.
pub fn dport(protocol: &str, p: (u16, u16)) -> Statement<'static> {
    m(Operator::EQ, payload(protocol, "dport"), ports(p))
}

/// `ct status dnat`: the packet was DNATed (a published port).
pub fn dnated() -> Statement<'static> {
    m(
        Operator::IN,
        Expression::Named(NamedExpression::CT(CT {
            key: Cow::Borrowed("status"),
            family: None,
            dir: None,
        })),
        s("dnat"),
    )
}

/// `dnat ip to ADDR` (ports kept), `… to ADDR:PORT`, or, for a shifted
/// range, `… to ADDR : tcp dport map { 8000 : 80, … }`.
pub fn dnat(
    addr: IpAddr,
    protocol: &str,
    published: (u16, u16),
    target: (u16, u16),
) -> Statement<'static> {
    let port = if published == target {
        None
    } else if published.0 == published.1 {
        Some(Expression::Number(u32::from(target.0)))
    } else {
        let pairs = (published.0..=published.1)
            .map(|p| {
                SetItem::Mapping(
                    Expression::Number(u32::from(p)),
                    Expression::Number(u32::from(target.0 + (p - published.0))),
                )
            })
            .collect();
        Some(Expression::Named(NamedExpression::Map(Box::new(Map {
            key: payload(protocol, "dport"),
            data: Expression::Named(NamedExpression::Set(pairs)),
        }))))
    };
    Statement::DNAT(Some(NAT {
        addr: Some(s(&addr.to_string())),
        family: Some(if addr.is_ipv4() {
            NATFamily::IP
        } else {
            NATFamily::IP6
        }),
        port,
        flags: None,
    }))
}

/// `dnat ip to KEY map @ADDRS : KEY map @PORTS`, KEY being `[ip daddr .]
/// meta l4proto . th dport`: address and port of a published port from two
/// named maps (a miss leaves the packet be).
pub fn dnat_maps(v4: bool, at_address: bool, addrs: &str, ports: &str) -> Statement<'static> {
    let key = || {
        let mut key = Vec::new();
        if at_address {
            key.push(payload(family_proto(v4), "daddr"));
        }
        key.push(meta(MetaKey::L4proto));
        key.push(payload("th", "dport"));
        Expression::Named(NamedExpression::Concat(key))
    };
    let lookup = |map: &str| {
        Expression::Named(NamedExpression::Map(Box::new(Map {
            key: key(),
            data: s(&format!("@{map}")),
        })))
    };
    Statement::DNAT(Some(NAT {
        addr: Some(lookup(addrs)),
        family: Some(if v4 { NATFamily::IP } else { NATFamily::IP6 }),
        port: Some(lookup(ports)),
        flags: None,
    }))
}

pub fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

pub fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

pub fn accept() -> Statement<'static> {
    Statement::Accept(None)
}
