//! Reading a table back: one dump per object kind, expressions as text
//! so written and read rules compare.

use super::*;

/// An IPv4 table as read back: its user data and each chain's rules, as
/// normalized text (see [`normalize`]), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableView {
    pub userdata: Vec<u8>,
    pub rules: Vec<(String, Vec<String>)>,
}

/// Read IPv4 table `table` in the calling thread's namespace; `None` when
/// it does not exist.
pub fn read_table(table: &str) -> io::Result<Option<TableView>> {
    let tables = dump(NfTablesMessage::GetTable(TableMessage {
        attributes: vec![TableAttribute::Name(table.to_string())],
    }))?;
    let mut view = TableView::default();
    let mut found = false;
    for t in tables {
        if let NfTablesMessage::NewTable(t) = t {
            let name = t
                .attributes
                .iter()
                .any(|a| *a == TableAttribute::Name(table.to_string()));
            if name {
                found = true;
                view.userdata = t
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        TableAttribute::UserData(u) => Some(u.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
            }
        }
    }
    if !found {
        return Ok(None);
    }
    let rules = dump(NfTablesMessage::GetRule(RuleMessage {
        attributes: vec![RuleAttribute::Table(table.to_string())],
    }))?;
    for r in rules {
        let NfTablesMessage::NewRule(r) = r else {
            continue;
        };
        let mut chain = String::new();
        let mut exprs = Vec::new();
        for a in &r.attributes {
            match a {
                RuleAttribute::Table(t) if t != table => continue,
                RuleAttribute::Chain(c) => chain = c.clone(),
                RuleAttribute::Expressions(list) => exprs = normalize(list),
                _ => {}
            }
        }
        view.rules.push((chain, exprs));
    }
    Ok(Some(view))
}

/// Whether any rule of an IPv4 table other than `except` compares a value
/// with `value` (hex, as [`normalize`] writes it): a rule about that
/// address in someone else's table.
pub fn rules_matching(value: &str, except: &str) -> io::Result<bool> {
    let rules = dump(NfTablesMessage::GetRule(RuleMessage { attributes: vec![] }))?;
    let want = format!("cmp Equal {value}");
    Ok(rules.iter().any(|r| {
        let NfTablesMessage::NewRule(r) = r else {
            return false;
        };
        let theirs = !r
            .attributes
            .iter()
            .any(|a| *a == RuleAttribute::Table(except.to_string()));
        theirs
            && r.attributes.iter().any(|a| match a {
                RuleAttribute::Expressions(list) => normalize(list).contains(&want),
                _ => false,
            })
    }))
}

/// One dump request's answers.
fn dump(request: NfTablesMessage) -> io::Result<Vec<NfTablesMessage>> {
    let socket = socket_here()?;
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
        for msg in messages(&rx[..n])? {
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => match e.code {
                    // No such table: nothing to list.
                    Some(c) if -c.get() == libc::ENOENT => return Ok(out),
                    Some(c) => return Err(io::Error::from_raw_os_error(-c.get())),
                    None => return Ok(out),
                },
                NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner: NetfilterMessageInner::NfTables(t),
                    ..
                }) => out.push(t),
                _ => {}
            }
        }
    }
}

/// The expressions of a rule as text that says what the rule does and
/// nothing of how the kernel stores it (registers aside), so that a rule
/// read back compares equal to the one cnm wrote.
pub fn normalize(list: &[ListAttribute<ExpressionAttribute>]) -> Vec<String> {
    list.iter()
        .filter_map(|l| match l {
            ListAttribute::Element(attrs) => attrs.iter().find_map(|a| match a {
                ExpressionAttribute::Data(d) => Some(expression_text(d)),
                _ => None,
            }),
            _ => None,
        })
        .collect()
}

/// [`normalize`] of the rule cnm writes from `exprs`.
pub fn normalize_written(exprs: &[Expr]) -> Vec<String> {
    normalize(&exprs.iter().map(Expr::encode).collect::<Vec<_>>())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn value(d: &DataAttribute) -> String {
    match d {
        DataAttribute::Value(v) => hex(v),
        other => format!("{other:?}"),
    }
}

fn expression_text(e: &Expressions) -> String {
    match e {
        Expressions::Payload(p) => {
            let (mut base, mut off, mut len) = (0, 0, 0);
            for a in p {
                match a {
                    Payload::Base(b) => base = *b,
                    Payload::Offset(o) => off = *o,
                    Payload::Len(l) => len = *l,
                    _ => {}
                }
            }
            format!("payload {base} {off} {len}")
        }
        Expressions::Meta(m) => {
            let key = m.iter().find_map(|a| match a {
                Meta::Key(k) => Some(format!("{k:?}")),
                _ => None,
            });
            format!("meta {}", key.unwrap_or_default())
        }
        Expressions::Cmp(c) => {
            let mut s = String::from("cmp");
            for a in c {
                match a {
                    Cmp::Op(o) => s.push_str(&format!(" {o:?}")),
                    Cmp::Data(d) => s.push_str(&format!(" {}", value(d))),
                    _ => {}
                }
            }
            s
        }
        Expressions::Immediate(i) => {
            let mut s = String::from("immediate");
            for a in i {
                if let Immediate::Data(d) = a {
                    s.push_str(&format!(" {}", value(d)));
                }
            }
            s
        }
        Expressions::Other {
            expression_type,
            attributes,
        } if expression_type == "nat" => {
            let get = |kind: u16| {
                attributes
                    .iter()
                    .find(|a| netlink_packet_core::Nla::kind(*a) == kind)
                    .map(|a| {
                        let mut v = vec![0u8; netlink_packet_core::Nla::value_len(a)];
                        netlink_packet_core::Nla::emit_value(a, &mut v);
                        hex(&v)
                    })
                    .unwrap_or_default()
            };
            format!(
                "nat {} {} {}",
                get(NAT_TYPE),
                get(NAT_FAMILY),
                get(NAT_FLAGS)
            )
        }
        other => format!("{other:?}"),
    }
}
