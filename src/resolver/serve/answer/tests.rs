//! Replies as clients see them: decoded again with hickory.

use super::*;
use crate::resolver::config::{NetworkNames, SandboxDns};
use crate::resolver::lookup::TopologyNames;
use hickory_proto::op::Query;
use std::str::FromStr;

fn view(names: &[(&str, &[&str])], forward: bool) -> SandboxView {
    let mut net = NetworkNames::default();
    for (n, ips) in names {
        let ips: Vec<IpAddr> = ips.iter().filter_map(|s| s.parse().ok()).collect();
        for ip in &ips {
            net.ptr.insert(*ip, n.to_string());
        }
        net.names.insert(n.to_string(), ips);
    }
    let cfg = crate::resolver::config::Config {
        networks: [("lan".to_string(), net)].into(),
        ..Default::default()
    };
    let s = SandboxDns {
        sandbox: "me".into(),
        networks: vec!["lan".into()],
        forward,
        upstreams: vec!["192.0.2.53".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))],
        port: 61000,
    };
    SandboxView::new(TopologyNames::new(&cfg), &s)
}

fn query(name: &str, t: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    if let Ok(n) = Name::from_str(name) {
        m.add_query(Query::query(n, t));
    }
    m.to_vec().unwrap_or_default()
}

fn now(r: Reply) -> Message {
    match r {
        Reply::Now(b) => Message::from_vec(&b).unwrap_or_else(|e| panic!("{e}")),
        Reply::Forward(_) => panic!("forwarded"),
        Reply::Drop => panic!("dropped"),
    }
}

fn addrs(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

#[test]
fn answers_rotate_and_keep_the_id_and_question() {
    let v = view(&[("store", &["10.0.0.3", "10.0.0.4"])], true);
    let rr = AtomicUsize::new(0);
    let a = now(reply(&v, &rr, &query("store.", RecordType::A, 7), true));
    let b = now(reply(&v, &rr, &query("Store.", RecordType::A, 8), true));
    assert_eq!(a.metadata.id, 7);
    assert_eq!(a.queries.len(), 1);
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative && a.metadata.recursion_available);
    assert_eq!(addrs(&a), ["10.0.0.3", "10.0.0.4"]);
    assert_eq!(addrs(&b), ["10.0.0.4", "10.0.0.3"]);
    assert!(a.answers.iter().all(|r| r.ttl == TTL));
}

#[test]
fn empty_noerror_refused_and_ptr() {
    let v = view(&[("db", &["10.0.0.5"]), ("other", &[])], false);
    let rr = AtomicUsize::new(0);
    let m = now(reply(&v, &rr, &query("db.", RecordType::AAAA, 1), true));
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    let m = now(reply(
        &v,
        &rr,
        &query("nothing.lan.", RecordType::A, 2),
        true,
    ));
    // Not local, and this sandbox does not forward.
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let m = now(reply(
        &v,
        &rr,
        &query("example.com.", RecordType::A, 3),
        true,
    ));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let m = now(reply(
        &v,
        &rr,
        &query("5.0.0.10.in-addr.arpa.", RecordType::PTR, 4),
        true,
    ));
    assert_eq!(addrs(&m), ["db."]);
}

#[test]
fn forwarded_replies_get_the_clients_id_or_servfail() {
    let v = view(&[], true);
    let rr = AtomicUsize::new(0);
    let Reply::Forward(f) = reply(&v, &rr, &query("example.com.", RecordType::A, 42), true) else {
        panic!("not forwarded");
    };
    let m = Message::from_vec(&f.finish(None)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.metadata.id, 42);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let Reply::Forward(f) = reply(&v, &rr, &query("example.com.", RecordType::A, 43), true) else {
        panic!("not forwarded");
    };
    let mut up = Message::response(999, OpCode::Query);
    up.add_query(Query::query(
        Name::from_str("example.com.").unwrap_or_default(),
        RecordType::A,
    ));
    let m = Message::from_vec(&f.finish(Some(up))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.metadata.id, 43);
}

#[test]
fn big_answers_are_truncated_over_udp_only() {
    let many: Vec<String> = (1..=60).map(|i| format!("10.0.1.{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let v = view(&[("big", &refs)], true);
    let rr = AtomicUsize::new(0);
    let q = query("big.", RecordType::A, 5);
    let m = now(reply(&v, &rr, &q, true));
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let m = now(reply(&v, &rr, &q, false));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 60);
}

#[test]
fn garbage_is_formerr_or_dropped() {
    let v = view(&[], true);
    let rr = AtomicUsize::new(0);
    let mut junk = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    junk.extend_from_slice(&[0xff; 20]);
    let m = now(reply(&v, &rr, &junk, true));
    assert_eq!(m.metadata.id, 0xabcd);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert!(matches!(reply(&v, &rr, &[1, 2, 3], true), Reply::Drop));
    // A response is never answered (no loops between resolvers).
    let resp = Message::response(9, OpCode::Query)
        .to_vec()
        .unwrap_or_default();
    assert!(matches!(reply(&v, &rr, &resp, true), Reply::Drop));
}
