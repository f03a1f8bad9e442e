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

mod read;
pub use read::{normalize, normalize_written, read_table, rules_matching, TableView};

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
        self.msgs
            .push(new_table(table, userdata, NLM_F_CREATE | NLM_F_EXCL));
    }

    /// Create table `table` (IPv4) with `userdata`, whether or not it
    /// exists, then delete it and create it again empty: what follows in
    /// the batch replaces it whole. (The delete costs the kernel a grace
    /// period, some 15 ms: for repairs, not for new namespaces.)
    pub fn replace_table(&mut self, table: &str, userdata: &[u8]) {
        self.msgs.push(new_table(table, userdata, NLM_F_CREATE));
        self.delete_table(table);
        self.msgs.push(new_table(table, userdata, NLM_F_CREATE));
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
            for msg in messages(&rx[..n])? {
                if let NetlinkPayload::Error(e) = msg.payload {
                    if let Some(code) = e.code {
                        return Err(io::Error::from_raw_os_error(-code.get()));
                    }
                    acks += 1;
                }
            }
        }
        Ok(())
    }
}

/// The messages of one datagram from the kernel, in order.
fn messages(rx: &[u8]) -> io::Result<Vec<NetlinkMessage<NetfilterMessage>>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < rx.len() {
        let msg = NetlinkMessage::<NetfilterMessage>::deserialize(&rx[offset..])
            .map_err(|e| io::Error::other(e.to_string()))?;
        let len = msg.header.length as usize;
        if len == 0 {
            return Err(io::Error::other("a netlink message of length 0"));
        }
        out.push(msg);
        offset += len;
    }
    Ok(out)
}

/// A NEWTABLE message for IPv4 table `table` with `userdata`.
fn new_table(table: &str, userdata: &[u8], flags: u16) -> NetlinkMessage<NetfilterMessage> {
    let mut m = message(
        NetfilterProtoFamily::IPv4,
        NfTablesMessage::NewTable(TableMessage {
            attributes: vec![
                TableAttribute::Name(table.to_string()),
                TableAttribute::UserData(userdata.to_vec()),
            ],
        }),
    );
    m.header.flags |= flags;
    m
}

fn socket_here() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}
