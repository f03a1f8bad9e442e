//! Classification of hand-built kernel views: ownership of namespaces (mark
//! under the derived name, or a record with the same inode), links of
//! networks, endpoints from both ends, strays under journaled temporary
//! names, routes, host facts, FDB and neighbour entries. Pure. Shared
//! builders here; the tests by subject in the submodules.

mod links;
mod namespaces;
mod routes;

use super::{kernel, Classified, Inputs, TempLinks};
use crate::drivers::Registry;
use crate::model::{default_dst, Family, HostEnd, StrayKind};
use crate::naming::{self, MarkKind};
use crate::observe::kernel::{Candidate, Entry, KernelView, Link, NsView, Route};
use crate::safe::FileId;
use crate::store::NsRecord;
use ipnetwork::IpNetwork;
use std::collections::{BTreeMap, BTreeSet};

const T: &str = "t";

/// What classification reads besides the view.
#[derive(Default)]
struct Fixture {
    records: BTreeMap<String, NsRecord>,
    temp: TempLinks,
    journaled: BTreeSet<String>,
}

impl Fixture {
    fn run(&self, view: KernelView) -> Classified {
        self.run_as(T, view)
    }

    fn run_as(&self, topology: &str, view: KernelView) -> Classified {
        let inp = Inputs {
            topology,
            reg: Registry::builtin(),
            records: &self.records,
            temp: &self.temp,
            journaled: &self.journaled,
        };
        kernel(&inp, view)
    }
}

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn net(s: &str) -> TestResult<IpNetwork> {
    Ok(s.parse()?)
}

fn link(index: u32, name: &str, kind: Option<&str>, alias: Option<String>) -> Link {
    Link {
        index,
        name: name.to_string(),
        alias,
        kind: kind.map(str::to_string),
        mtu: 1500,
        up: true,
        carrier: true,
        master: None,
        mac: None,
        hairpin: false,
        info: Vec::new(),
        lower: None,
        lower_elsewhere: false,
    }
}

fn mark(kind: MarkKind, name: &str) -> Option<String> {
    Some(naming::mark(T, kind, name))
}

fn add(view: &mut NsView, l: Link, addrs: &[&str]) -> TestResult {
    if !addrs.is_empty() {
        let addrs = addrs.iter().map(|a| net(a)).collect::<TestResult<_>>()?;
        view.table.addrs.insert(l.index, addrs);
    }
    view.table.links.insert(l.index, l);
    Ok(())
}

/// A namespace whose loopback carries `lo_alias`.
fn ns_with_lo(lo_alias: Option<String>) -> TestResult<NsView> {
    let mut v = NsView::default();
    add(
        &mut v,
        link(1, "lo", None, lo_alias),
        &["127.0.0.1/8", "::1/128"],
    )?;
    Ok(v)
}

fn candidate(netns: &str, ino: u64, view: NsView) -> Candidate {
    Candidate {
        netns: netns.to_string(),
        ino,
        view,
    }
}

fn view_with(candidates: Vec<Candidate>) -> KernelView {
    KernelView {
        names: candidates.iter().map(|c| c.netns.clone()).collect(),
        candidates,
        ..KernelView::default()
    }
}

fn record(netns: &str, ino: Option<u64>) -> NsRecord {
    NsRecord {
        version: 1,
        netns: netns.to_string(),
        ino,
        ..Default::default()
    }
}

// ---- namespaces ----

/// Host: bridge br-t-lan (10) and the host end (11) of alpha-lan; sandbox
/// t-alpha: loopback (marked) and eth0 (marked as the endpoint).
fn endpoint_view() -> TestResult<KernelView> {
    let mut view = KernelView::default();
    add(
        &mut view.host,
        link(
            10,
            "br-t-lan",
            Some("bridge"),
            mark(MarkKind::Network, "lan"),
        ),
        &["10.88.0.1/24"],
    )?;
    let host_end = naming::host_veth_name(T, "alpha-lan");
    let mut h = link(
        11,
        &host_end,
        Some("veth"),
        mark(MarkKind::Endpoint, "alpha-lan"),
    );
    h.master = Some(10);
    h.hairpin = true;
    add(&mut view.host, h, &[])?;
    let mut ns = ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?;
    let mut eth0 = link(
        2,
        "eth0",
        Some("veth"),
        mark(MarkKind::Endpoint, "alpha-lan"),
    );
    eth0.mac = Some([0x02, 0x42, 10, 88, 0, 2]);
    add(&mut ns, eth0, &["10.88.0.2/24"])?;
    view.names.insert("t-alpha".into());
    view.candidates.push(candidate("t-alpha", 1, ns));
    Ok(view)
}
