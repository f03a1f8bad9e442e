//! One query in, one reply out: hickory-proto decodes and encodes (no
//! hand-written DNS codec), `lookup` decides. Pure apart from the round
//! robin counter, so it is tested without sockets.

use crate::resolver::lookup::{Answer, Kind, SandboxView};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Local answers carry TTL 0, as aardvark-dns's: names change live, and a
/// cache must not keep a peer that has gone.
pub const TTL: u32 = 0;

/// The largest reply over TCP (its length prefix is 16 bits).
pub const TCP_MAX: usize = 65535;

/// What to do with a query.
pub enum Reply {
    /// Send these bytes back.
    Now(Vec<u8>),
    /// Ask upstream; `Forwarded` then makes the reply.
    Forward(Forwarded),
    /// Not a query (a response, or too short to carry an ID): no reply.
    Drop,
}

/// A query on its way upstream: what the reply needs from it.
pub struct Forwarded {
    request: Message,
    pub upstreams: Vec<IpAddr>,
    /// The client's limit for the reply (UDP: 512 or its EDNS size).
    limit: usize,
}

/// The reply to the raw query `raw`, at most `limit` bytes when the client
/// allows no more (`None`: TCP). `rr` turns the round robin.
pub fn reply(view: &SandboxView, rr: &AtomicUsize, raw: &[u8], udp: bool) -> Reply {
    let req = match Message::from_vec(raw) {
        Ok(m) => m,
        Err(_) if raw.len() >= 12 && raw[2] & 0x80 == 0 => {
            let id = u16::from_be_bytes([raw[0], raw[1]]);
            return now(&Message::error_msg(
                id,
                OpCode::Query,
                ResponseCode::FormErr,
            ));
        }
        Err(_) => return Reply::Drop,
    };
    if req.metadata.message_type != MessageType::Query {
        return Reply::Drop;
    }
    let limit = if udp {
        usize::from(req.max_payload().max(512))
    } else {
        TCP_MAX
    };
    let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_queries(req.queries.iter().cloned());
    if let Some(e) = &req.edns {
        let mut mine = Edns::new();
        mine.set_max_payload(e.max_payload().max(512));
        resp.set_edns(mine);
    }
    let query = match (req.metadata.op_code, req.queries.as_slice()) {
        (OpCode::Query, [q]) => q,
        (OpCode::Query, _) => return coded(resp, ResponseCode::FormErr, limit),
        _ => return coded(resp, ResponseCode::NotImp, limit),
    };
    let kind = match query.query_type() {
        RecordType::A => Kind::A,
        RecordType::AAAA => Kind::Aaaa,
        RecordType::PTR => Kind::Ptr,
        _ => Kind::Other,
    };
    let owner = query.name().clone();
    match view.answer(&owner.to_ascii(), kind) {
        Answer::Addrs(mut ips) => {
            if !ips.is_empty() {
                let n = rr.fetch_add(1, Ordering::Relaxed) % ips.len();
                ips.rotate_left(n);
            }
            for ip in ips {
                let rdata = match ip {
                    IpAddr::V4(v4) => RData::A(A(v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                };
                resp.add_answer(Record::from_rdata(owner.clone(), TTL, rdata));
            }
            resp.metadata.authoritative = true;
            encode(&resp, limit)
        }
        Answer::Ptr(target) => {
            if let Ok(n) = Name::from_ascii(format!("{target}.")) {
                resp.add_answer(Record::from_rdata(owner, TTL, RData::PTR(PTR(n))));
            }
            resp.metadata.authoritative = true;
            encode(&resp, limit)
        }
        Answer::NxDomain => {
            resp.metadata.authoritative = true;
            coded(resp, ResponseCode::NXDomain, limit)
        }
        Answer::Refused => coded(resp, ResponseCode::Refused, limit),
        Answer::Forward => Reply::Forward(Forwarded {
            request: req,
            upstreams: view.upstreams.clone(),
            limit,
        }),
    }
}

impl Forwarded {
    /// The client's reply from upstream's answer `got` (`None`: no
    /// upstream answered, SERVFAIL).
    pub fn finish(self, got: Option<Message>) -> Vec<u8> {
        let mut m = match got {
            Some(m) => m,
            None => self.failed(ResponseCode::ServFail),
        };
        m.metadata.id = self.request.metadata.id;
        match encode(&m, self.limit) {
            Reply::Now(b) => b,
            // Upstream's answer does not encode again: SERVFAIL.
            _ => self.coded_bytes(ResponseCode::ServFail),
        }
    }

    fn coded_bytes(&self, code: ResponseCode) -> Vec<u8> {
        let m = self.failed(code);
        m.to_vec().unwrap_or_default()
    }

    /// REFUSED: too many queries in flight already (Docker's answer).
    pub fn refused(self) -> Vec<u8> {
        self.coded_bytes(ResponseCode::Refused)
    }

    fn failed(&self, code: ResponseCode) -> Message {
        let mut m = Message::response(self.request.metadata.id, OpCode::Query);
        m.metadata.recursion_desired = self.request.metadata.recursion_desired;
        m.metadata.recursion_available = true;
        m.metadata.response_code = code;
        m.add_queries(self.request.queries.iter().cloned());
        m
    }
}

fn coded(mut resp: Message, code: ResponseCode, limit: usize) -> Reply {
    resp.metadata.response_code = code;
    encode(&resp, limit)
}

fn now(m: &Message) -> Reply {
    match m.to_vec() {
        Ok(b) => Reply::Now(b),
        Err(_) => Reply::Drop,
    }
}

/// The encoded reply, truncated (TC set, records dropped) when it is over
/// the client's limit, so that it asks again over TCP.
fn encode(m: &Message, limit: usize) -> Reply {
    match m.to_vec() {
        Ok(b) if b.len() <= limit => Reply::Now(b),
        Ok(_) => now(&m.truncate()),
        Err(_) => Reply::Drop,
    }
}

#[cfg(test)]
mod tests;
