//! One sandbox's DNS server logic: hickory decodes and encodes, `lookup`
//! decides, `forward` asks upstream. One handler per sandbox, because a
//! request shows only its source (127.0.0.1 in every namespace).

use super::forward;
use crate::resolver::lookup::{Answer, Kind, SandboxView};
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, PTR};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// The view a handler answers from; replaced whole on reload, so a query
/// in flight keeps the view it started with.
pub type Slot = Arc<RwLock<Arc<SandboxView>>>;

/// Local answers carry TTL 0, as aardvark-dns's: names change live, and a
/// cache must not keep a peer that has gone.
const TTL: u32 = 0;

pub struct SandboxHandler {
    view: Slot,
    /// Round robin: each reply starts one address further.
    rr: AtomicUsize,
    forwards: Arc<forward::Limit>,
    /// The sandbox's namespace, where forwarded queries leave from.
    ns: Arc<std::fs::File>,
    maker: forward::Maker,
}

impl SandboxHandler {
    pub fn new(
        view: Slot,
        forwards: Arc<forward::Limit>,
        ns: Arc<std::fs::File>,
        maker: forward::Maker,
    ) -> SandboxHandler {
        SandboxHandler {
            view,
            rr: AtomicUsize::new(0),
            forwards,
            ns,
            maker,
        }
    }

    fn view(&self) -> Arc<SandboxView> {
        match self.view.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn kind(t: RecordType) -> Kind {
    match t {
        RecordType::A => Kind::A,
        RecordType::AAAA => Kind::Aaaa,
        RecordType::PTR => Kind::Ptr,
        _ => Kind::Other,
    }
}

#[async_trait::async_trait]
impl RequestHandler for SandboxHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.recursion_available = true;
        // Echo EDNS, or replies stay within 512 bytes over UDP.
        let edns = request.edns.as_ref().map(|e| {
            let mut r = Edns::new();
            r.set_max_payload(e.max_payload().max(512));
            r
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let failed = move |code| {
            let mut m = meta;
            m.response_code = code;
            ResponseInfo::from(Header {
                metadata: m,
                counts: HeaderCounts::default(),
            })
        };
        let query = match request.request_info() {
            Ok(info) if request.metadata.op_code == OpCode::Query => info.query.clone(),
            _ => {
                let r = builder.error_msg(&request.metadata, ResponseCode::NotImp);
                return response
                    .send_response(r)
                    .await
                    .unwrap_or_else(|_| failed(ResponseCode::NotImp));
            }
        };
        let view = self.view();
        let owner = query.original().name().clone();
        let answer = view.answer(&query.name().to_string(), kind(query.query_type()));
        let records: Vec<Record> = match answer {
            Answer::Addrs(mut ips) => {
                if !ips.is_empty() {
                    let n = self.rr.fetch_add(1, Ordering::Relaxed) % ips.len();
                    ips.rotate_left(n);
                }
                ips.iter()
                    .map(|ip| {
                        let rdata = match ip {
                            IpAddr::V4(v4) => RData::A(A(*v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                        };
                        Record::from_rdata(owner.clone(), TTL, rdata)
                    })
                    .collect()
            }
            Answer::Ptr(target) => match Name::from_ascii(format!("{target}.")) {
                Ok(n) => vec![Record::from_rdata(owner.clone(), TTL, RData::PTR(PTR(n)))],
                Err(_) => Vec::new(),
            },
            Answer::NxDomain => {
                meta.authoritative = true;
                meta.response_code = ResponseCode::NXDomain;
                let r = builder.build(meta, [], [], [], []);
                return response
                    .send_response(r)
                    .await
                    .unwrap_or_else(|_| failed(ResponseCode::ServFail));
            }
            Answer::Refused => {
                let r = builder.error_msg(&request.metadata, ResponseCode::Refused);
                return response
                    .send_response(r)
                    .await
                    .unwrap_or_else(|_| failed(ResponseCode::Refused));
            }
            Answer::Forward => {
                let got = match self.forwards.enter() {
                    Some(_permit) => {
                        let from = forward::Origin {
                            ns: Some(&self.ns),
                            maker: &self.maker,
                        };
                        forward::forward(request.as_slice(), &view.upstreams, &from).await
                    }
                    None => {
                        let r = builder.error_msg(&request.metadata, ResponseCode::Refused);
                        return response
                            .send_response(r)
                            .await
                            .unwrap_or_else(|_| failed(ResponseCode::Refused));
                    }
                };
                return match got {
                    Some(m) => {
                        meta.response_code = m.metadata.response_code;
                        meta.authoritative = m.metadata.authoritative;
                        meta.authentic_data = m.metadata.authentic_data;
                        let r = builder.build(
                            meta,
                            m.answers.iter(),
                            m.authorities.iter(),
                            [],
                            m.additionals.iter(),
                        );
                        response
                            .send_response(r)
                            .await
                            .unwrap_or_else(|_| failed(ResponseCode::ServFail))
                    }
                    None => {
                        let r = builder.error_msg(&request.metadata, ResponseCode::ServFail);
                        response
                            .send_response(r)
                            .await
                            .unwrap_or_else(|_| failed(ResponseCode::ServFail))
                    }
                };
            }
        };
        meta.authoritative = true;
        let r = builder.build(meta, records.iter(), [], [], []);
        response
            .send_response(r)
            .await
            .unwrap_or_else(|_| failed(ResponseCode::ServFail))
    }
}
