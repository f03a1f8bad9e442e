//! Reading a table back: one dump per object kind, walked as raw
//! attributes, expressions as text so written and read rules compare.
//!
//! Walked by hand (netlink-packet-core's attribute iterator) rather than
//! decoded by netlink-packet-netfilter: its decoder formats every nested
//! buffer into an error context (`format!("{:?}", buf)`) before it knows
//! whether there is an error, which made reading the DNS redirect table
//! of 1,000 sandboxes a third of a plan's CPU time.

use super::*;
use netlink_packet_core::{Emitable, NetlinkBuffer, NlaBuffer, NlasIterator};

/// An IPv4 table as read back: its user data and each chain's rules, as
/// normalized text (see [`normalize`]), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableView {
    pub userdata: Vec<u8>,
    pub rules: Vec<(String, Vec<String>)>,
}

/// nfnetlink message types (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*).
const NEWTABLE: u16 = SUBSYS_NFTABLES << 8;
const NEWRULE: u16 = SUBSYS_NFTABLES << 8 | 6;
/// NFTA_TABLE_NAME, NFTA_TABLE_USERDATA; NFTA_RULE_TABLE, _CHAIN,
/// _EXPRESSIONS; NFTA_LIST_ELEM; NFTA_EXPR_NAME, _DATA; NFTA_DATA_VALUE.
const TABLE_NAME: u16 = 1;
const TABLE_USERDATA: u16 = 6;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_EXPRESSIONS: u16 = 4;
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const DATA_VALUE: u16 = 1;
/// The nfgenmsg header before a message's attributes.
const NFGENMSG: usize = 4;

/// Read IPv4 table `table` in the calling thread's namespace; `None` when
/// it does not exist.
pub fn read_table(table: &str) -> io::Result<Option<TableView>> {
    let socket = socket_here()?;
    let tables = dump(
        &socket,
        NfTablesMessage::GetTable(TableMessage {
            attributes: vec![TableAttribute::Name(table.to_string())],
        }),
    )?;
    let mut view = None;
    for (kind, body) in &tables {
        if *kind != NEWTABLE || string_attr(body, TABLE_NAME).as_deref() != Some(table) {
            continue;
        }
        view = Some(TableView {
            userdata: attr(body, TABLE_USERDATA).unwrap_or_default().to_vec(),
            rules: Vec::new(),
        });
    }
    let Some(mut view) = view else {
        return Ok(None);
    };
    let rules = dump(
        &socket,
        NfTablesMessage::GetRule(RuleMessage {
            attributes: vec![RuleAttribute::Table(table.to_string())],
        }),
    )?;
    for (kind, body) in &rules {
        if *kind != NEWRULE || string_attr(body, RULE_TABLE).as_deref() != Some(table) {
            continue;
        }
        let chain = string_attr(body, RULE_CHAIN).unwrap_or_default();
        let exprs = normalize(attr(body, RULE_EXPRESSIONS).unwrap_or_default());
        view.rules.push((chain, exprs));
    }
    Ok(Some(view))
}

/// Whether any rule of an IPv4 table other than `except` compares a value
/// with `value` (hex, as [`normalize`] writes it): a rule about that
/// address in someone else's table.
pub fn rules_matching(value: &str, except: &str) -> io::Result<bool> {
    let rules = dump(
        &socket_here()?,
        NfTablesMessage::GetRule(RuleMessage { attributes: vec![] }),
    )?;
    let want = format!("cmp {CMP_EQ} {value}");
    Ok(rules.iter().any(|(kind, body)| {
        *kind == NEWRULE
            && string_attr(body, RULE_TABLE).as_deref() != Some(except)
            && normalize(attr(body, RULE_EXPRESSIONS).unwrap_or_default()).contains(&want)
    }))
}

/// NFT_CMP_EQ, as [`normalize`] writes a comparison's operator.
const CMP_EQ: u32 = 0;

/// One dump request's answers: (message type, attributes after the
/// nfgenmsg header).
fn dump(socket: &Socket, request: NfTablesMessage) -> io::Result<Vec<(u16, Vec<u8>)>> {
    let mut m = message(NetfilterProtoFamily::IPv4, request);
    m.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    m.header.sequence_number = 1;
    m.finalize();
    let mut buf = vec![0u8; m.buffer_len()];
    m.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut out = Vec::new();
    let mut rx = vec![0u8; 1 << 16];
    loop {
        let n = socket.recv(&mut &mut rx[..], 0)?;
        let mut offset = 0;
        while offset < n {
            let msg = NetlinkBuffer::new_checked(&rx[offset..n]).map_err(invalid)?;
            let len = msg.length() as usize;
            match msg.message_type() {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let code = msg
                        .payload()
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    return match -code {
                        // No error, or no such table: nothing (more) to list.
                        0 | libc::ENOENT => Ok(out),
                        e => Err(io::Error::from_raw_os_error(e)),
                    };
                }
                kind => out.push((
                    kind,
                    msg.payload().get(NFGENMSG..).unwrap_or_default().to_vec(),
                )),
            }
            if len == 0 {
                return Err(invalid("a netlink message of length 0"));
            }
            offset += (len + 3) & !3;
        }
    }
}

/// NLMSG_ERROR, NLMSG_DONE (linux/netlink.h).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The attributes of `buf`, as (kind, value); a malformed one ends the walk.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    NlasIterator::new(buf)
        .map_while(Result::ok)
        .filter_map(|nla: NlaBuffer<&[u8]>| {
            let (kind, len) = (nla.kind(), usize::from(nla.length()));
            // The value follows the 4-byte attribute header.
            Some((kind, nla.into_inner().get(4..len)?))
        })
}

fn attr(buf: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(buf).find(|(k, _)| *k == kind).map(|(_, v)| v)
}

/// A NUL-terminated string attribute.
fn string_attr(buf: &[u8], kind: u16) -> Option<String> {
    let v = attr(buf, kind)?;
    let v = v.split(|b| *b == 0).next().unwrap_or_default();
    Some(String::from_utf8_lossy(v).into_owned())
}

fn be32(v: Option<&[u8]>) -> u32 {
    v.and_then(|v| v.get(..4))
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The expressions of a rule (its NFTA_RULE_EXPRESSIONS value) as text
/// that says what the rule does and nothing of how the kernel stores it
/// (registers aside), so that a rule read back compares equal to the one
/// cnm wrote.
pub fn normalize(list: &[u8]) -> Vec<String> {
    attrs(list)
        .filter(|(k, _)| *k == LIST_ELEM)
        .map(|(_, elem)| {
            let name = string_attr(elem, EXPR_NAME).unwrap_or_default();
            expression_text(&name, attr(elem, EXPR_DATA).unwrap_or_default())
        })
        .collect()
}

/// [`normalize`] of the rule cnm writes from `exprs`.
pub fn normalize_written(exprs: &[Expr]) -> Vec<String> {
    let list: Vec<_> = exprs.iter().map(Expr::encode).collect();
    let mut buf = vec![0u8; list.as_slice().buffer_len()];
    list.as_slice().emit(&mut buf);
    normalize(&buf)
}

/// One expression as text. Attribute numbers are `NFTA_<NAME>_*` of
/// linux/netfilter/nf_tables.h.
fn expression_text(name: &str, data: &[u8]) -> String {
    let u = |kind| be32(attr(data, kind));
    // A data attribute (NFTA_DATA_VALUE inside), or its raw bytes.
    let value = |kind| {
        attr(data, kind).map_or_else(String::new, |d| match attr(d, DATA_VALUE) {
            Some(v) => hex(v),
            None => format!("verdict {}", hex(d)),
        })
    };
    match name {
        // BASE 2, OFFSET 3, LEN 4.
        "payload" => format!("payload {} {} {}", u(2), u(3), u(4)),
        // KEY 2.
        "meta" => format!("meta {}", u(2)),
        // OP 2, DATA 3.
        "cmp" => format!("cmp {} {}", u(2), value(3)),
        // DATA 2.
        "immediate" => format!("immediate {}", value(2)),
        "nat" => {
            let raw = |kind| hex(attr(data, kind).unwrap_or_default());
            format!(
                "nat {} {} {}",
                raw(NAT_TYPE),
                raw(NAT_FAMILY),
                raw(NAT_FLAGS)
            )
        }
        other => format!("{other} {}", hex(data)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_rules_read_as_text() {
        let text = normalize_written(&[
            Expr::Payload {
                base: NETWORK_HEADER,
                offset: 16,
                len: 4,
            },
            Expr::Eq(vec![127, 0, 0, 11]),
            Expr::L4Proto,
            Expr::Imm {
                reg: 2,
                data: vec![0xf7, 0x04],
            },
            Expr::Nat {
                kind: DNAT,
                addr: false,
                port_reg: 2,
            },
        ]);
        assert_eq!(
            text,
            [
                "payload 1 16 4",
                "cmp 0 7f00000b",
                "meta 16",
                "immediate f704",
                "nat 00000001 00000002 00000002",
            ]
        );
    }
}
