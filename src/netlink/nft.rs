//! nftables over netlink (`NETLINK_NETFILTER`), for the small tables cnm
//! keeps inside sandboxes: the `nft` command cannot switch namespaces, and
//! a process per sandbox would cost thousands of forks at scale, so these
//! are sent from a thread that entered the namespace, one transaction (a
//! batch) per namespace. Messages come from netlink-packet-netfilter (the
//! rust-netlink family cnm's other netlink work uses); the `nat`
//! expression it does not type is written as its raw attributes
//! (linux/netfilter/nf_tables.h).

use netlink_packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions, Hook,
    HookNumber, Immediate, InetHookNumber, ListAttribute, Meta, MetaKey, NfTablesMessage, Operator,
    Payload, Register, RuleAttribute, RuleMessage, TableAttribute, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::io;

/// `NFNL_SUBSYS_NFTABLES`: the subsystem a batch is for.
const SUBSYS_NFTABLES: u16 = 10;
/// NFTA_NAT_* (nf_tables.h).
const NAT_TYPE: u16 = 1;
const NAT_FAMILY: u16 = 2;
const NAT_REG_ADDR_MIN: u16 = 3;
const NAT_REG_PROTO_MIN: u16 = 5;
const NAT_FLAGS: u16 = 7;
/// NF_NAT_RANGE_MAP_IPS (an address is given; the kernel sets it when one
/// is, so a rule reads back with it) and NF_NAT_RANGE_PROTO_SPECIFIED (a
/// port is).
const NAT_RANGE_MAP_IPS: u32 = 1;
const NAT_RANGE_PROTO_SPECIFIED: u32 = 2;
/// NLM_F_APPEND: a new rule goes at the end of its chain (without it, at
/// the start).
const NLM_F_APPEND: u16 = 0x800;
/// NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER.
pub const NETWORK_HEADER: u32 = 1;
pub const TRANSPORT_HEADER: u32 = 2;
/// NFT_NAT_SNAT, NFT_NAT_DNAT.
pub const SNAT: u32 = 0;
pub const DNAT: u32 = 1;
/// NFPROTO_IPV4.
const FAMILY_IPV4: u32 = 2;

/// One expression of a rule, as cnm writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load `len` bytes at `offset` of a header into register 1.
    Payload { base: u32, offset: u32, len: u32 },
    /// Load the layer 4 protocol into register 1.
    L4Proto,
    /// Register 1 equals `data`.
    Eq(Vec<u8>),
    /// Load `data` into register `reg` (1 or 2).
    Imm { reg: u8, data: Vec<u8> },
    /// IPv4 NAT (`kind` SNAT or DNAT) to the address in register 1, if
    /// `addr`, and the port in register `port_reg`.
    Nat { kind: u32, addr: bool, port_reg: u8 },
}

fn register(n: u8) -> Register {
    if n == 2 {
        Register::Reg2
    } else {
        Register::Reg1
    }
}

impl Expr {
    fn encode(&self) -> ListAttribute<ExpressionAttribute> {
        match self {
            Expr::Payload { base, offset, len } => Expressions::Payload(vec![
                Payload::DestinationRegister(Register::Reg1),
                Payload::Base(*base),
                Payload::Offset(*offset),
                Payload::Len(*len),
            ]),
            Expr::L4Proto => Expressions::Meta(vec![
                Meta::DestinationRegister(Register::Reg1),
                Meta::Key(MetaKey::L4Proto),
            ]),
            Expr::Eq(data) => Expressions::Cmp(vec![
                Cmp::SourceRegister(Register::Reg1),
                Cmp::Op(Operator::Equal),
                Cmp::Data(DataAttribute::Value(data.clone())),
            ]),
            Expr::Imm { reg, data } => Expressions::Immediate(vec![
                Immediate::DestinationRegister(register(*reg)),
                Immediate::Data(DataAttribute::Value(data.clone())),
            ]),
            Expr::Nat {
                kind,
                addr,
                port_reg,
            } => {
                let be = |v: u32| v.to_be_bytes().to_vec();
                let mut attributes = vec![
                    DefaultNla::new(NAT_TYPE, be(*kind)),
                    DefaultNla::new(NAT_FAMILY, be(FAMILY_IPV4)),
                ];
                if *addr {
                    attributes.push(DefaultNla::new(NAT_REG_ADDR_MIN, be(1)));
                }
                attributes.push(DefaultNla::new(NAT_REG_PROTO_MIN, be(u32::from(*port_reg))));
                let ips = if *addr { NAT_RANGE_MAP_IPS } else { 0 };
                attributes.push(DefaultNla::new(
                    NAT_FLAGS,
                    be(ips | NAT_RANGE_PROTO_SPECIFIED),
                ));
                Expressions::Other {
                    expression_type: "nat".into(),
                    attributes,
                }
            }
        }
        .into()
    }
}

/// An IPv4 NAT base chain (`type nat hook H priority P`).
#[derive(Debug, Clone)]
pub struct NatChain {
    pub name: String,
    pub hook: InetHookNumber,
    pub priority: i32,
}

/// One transaction: every message applies, or none does.
#[derive(Default)]
pub struct Batch {
    msgs: Vec<NetlinkMessage<NetfilterMessage>>,
}

fn message(
    family: NetfilterProtoFamily,
    inner: impl Into<NetfilterMessageInner>,
) -> NetlinkMessage<NetfilterMessage> {
    let res_id = if family == NetfilterProtoFamily::Unspec {
        SUBSYS_NFTABLES
    } else {
        0
    };
    NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(family, 0, res_id),
        inner,
    ))
}

impl Batch {
    /// Create table `table` (IPv4) with `userdata` (an error when it
    /// exists): a new namespace's.
    pub fn create_table(&mut self, table: &str, userdata: &[u8]) {
        let mut m = message(
            NetfilterProtoFamily::IPv4,
            NfTablesMessage::NewTable(TableMessage {
                attributes: vec![
                    TableAttribute::Name(table.to_string()),
                    TableAttribute::UserData(userdata.to_vec()),
                ],
            }),
        );
        m.header.flags |= NLM_F_CREATE | NLM_F_EXCL;
        self.msgs.push(m);
    }

    /// Create table `table` (IPv4) with `userdata`, whether or not it
    /// exists, then delete it and create it again empty: what follows in
    /// the batch replaces it whole. (The delete costs the kernel a grace
    /// period, some 15 ms: for repairs, not for new namespaces.)
    pub fn replace_table(&mut self, table: &str, userdata: &[u8]) {
        let new = || {
            let mut m = message(
                NetfilterProtoFamily::IPv4,
                NfTablesMessage::NewTable(TableMessage {
                    attributes: vec![
                        TableAttribute::Name(table.to_string()),
                        TableAttribute::UserData(userdata.to_vec()),
                    ],
                }),
            );
            m.header.flags |= NLM_F_CREATE;
            m
        };
        self.msgs.push(new());
        self.delete_table(table);
        self.msgs.push(new());
    }

    /// Delete IPv4 table `table` (an error when it does not exist).
    pub fn delete_table(&mut self, table: &str) {
        self.msgs.push(message(
            NetfilterProtoFamily::IPv4,
            NfTablesMessage::DeleteTable(TableMessage {
                attributes: vec![TableAttribute::Name(table.to_string())],
            }),
        ));
    }

    pub fn add_chain(&mut self, table: &str, c: &NatChain) {
        let mut m = message(
            NetfilterProtoFamily::IPv4,
            NfTablesMessage::NewChain(ChainMessage {
                attributes: vec![
                    ChainAttribute::Table(table.to_string()),
                    ChainAttribute::Name(c.name.clone()),
                    ChainAttribute::Hook(vec![
                        Hook::Number(HookNumber::Inet(c.hook)),
                        Hook::Priority(c.priority as u32),
                    ]),
                    ChainAttribute::Policy(1),
                    ChainAttribute::Type("nat".into()),
                ],
            }),
        );
        m.header.flags |= NLM_F_CREATE;
        self.msgs.push(m);
    }

    pub fn add_rule(&mut self, table: &str, chain: &str, exprs: &[Expr]) {
        let mut m = message(
            NetfilterProtoFamily::IPv4,
            NfTablesMessage::NewRule(RuleMessage {
                attributes: vec![
                    RuleAttribute::Table(table.to_string()),
                    RuleAttribute::Chain(chain.to_string()),
                    RuleAttribute::Expressions(exprs.iter().map(Expr::encode).collect()),
                ],
            }),
        );
        m.header.flags |= NLM_F_CREATE | NLM_F_APPEND;
        self.msgs.push(m);
    }

    /// Send the batch through a socket in the calling thread's network
    /// namespace and wait for the kernel's verdict on each message.
    pub fn send(self) -> io::Result<()> {
        let socket = socket_here()?;
        let mut all = vec![message(
            NetfilterProtoFamily::Unspec,
            ControlMessage::BatchBegin,
        )];
        all.extend(self.msgs);
        all.push(message(
            NetfilterProtoFamily::Unspec,
            ControlMessage::BatchEnd,
        ));
        let mut buf = Vec::new();
        let count = all.len() as u32;
        for (seq, mut m) in all.into_iter().enumerate() {
            m.header.flags |= NLM_F_REQUEST | NLM_F_ACK;
            m.header.sequence_number = seq as u32 + 1;
            m.finalize();
            let start = buf.len();
            buf.resize(start + m.buffer_len(), 0);
            m.serialize(&mut buf[start..]);
        }
        socket.send(&buf, 0)?;
        // The begin and end markers get no answer; every other message
        // gets an ack (error 0) or its error.
        let mut acks = 0;
        let mut rx = vec![0u8; 1 << 16];
        while acks < count - 2 {
            let n = socket.recv(&mut &mut rx[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&rx[offset..n])
                    .map_err(|e| io::Error::other(e.to_string()))?;
                let len = msg.header.length as usize;
                if let NetlinkPayload::Error(e) = msg.payload {
                    if let Some(code) = e.code {
                        return Err(io::Error::from_raw_os_error(-code.get()));
                    }
                    acks += 1;
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
        Ok(())
    }
}

fn socket_here() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

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
        let mut offset = 0;
        while offset < n {
            let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&rx[offset..n])
                .map_err(|e| io::Error::other(e.to_string()))?;
            let len = msg.header.length as usize;
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
            if len == 0 {
                return Ok(out);
            }
            offset += len;
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
