//! A plugin's interface into its sandbox, renamed and addressed as Docker
//! does, and back to the host.

use crate::drivers::Kernel;
use crate::errors::ApplyError;
use crate::model::{EndpointRes, Link, Mac};
use crate::naming::{self, MarkKind};
use crate::netlink::{dump_links, index_of, sync_addrs};
use rtnetlink::LinkUnspec;
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;

/// The highest index tried after a plugin's `DstPrefix`.
const MAX_INDEX: u32 = 4096;

/// As Docker does: move the plugin's interface into the sandbox, set it
/// down, name it `DstPrefix` + an index, set MAC, MTU, mark and
/// addresses, set it up. With Docker's usual prefix `eth` the index is the
/// one cnm gave the endpoint (the lowest not used by the sandbox's other
/// endpoints); another prefix takes the lowest index free in the sandbox.
pub(super) async fn move_in(
    e: &EndpointRes,
    k: &dyn Kernel,
    src: &str,
    prefix: &str,
    mac: Option<Mac>,
) -> Result<Link, ApplyError> {
    let what = format!(
        "take the interface of endpoint {} into its sandbox",
        e.endpoint
    );
    let err = ApplyError::kernel(&what);
    let host = k.host();
    let idx = index_of(host, src).await.map_err(&err)?;
    let ns = k.netns_file(&e.netns)?;
    host.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .down()
                .setns_by_fd(ns.as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .map_err(&err)?;
    drop(ns);
    let h = k.sandbox(&e.netns)?;
    let idx = index_of(&h, src).await.map_err(&err)?;
    let present: BTreeSet<String> = dump_links(&h)
        .await
        .map_err(&err)?
        .iter()
        .map(|m| Link::from_msg(m).name)
        .collect();
    let ifname = if prefix == "eth" && !e.ifname.is_empty() {
        e.ifname.clone()
    } else {
        // Bounded: a long prefix leaves few (or no) names under 16 bytes.
        (0..MAX_INDEX)
            .map(|i| format!("{prefix}{i}"))
            .find(|n| !present.contains(n) && n.len() <= 15)
            .ok_or_else(|| {
                ApplyError::Internal(format!(
                    "no free interface name {prefix}N in the sandbox of endpoint {}",
                    e.endpoint
                ))
            })?
    };
    let mark = naming::mark(k.topology(), MarkKind::Endpoint, &e.endpoint);
    h.link()
        .set(LinkUnspec::new_with_index(idx).alias(mark).build())
        .execute()
        .await
        .map_err(&err)?;
    let mut set = LinkUnspec::new_with_index(idx)
        .name(ifname.clone())
        .mtu(e.mtu);
    if let Some(m) = mac {
        set = set.address(m.to_vec());
    }
    h.link().set(set.build()).execute().await.map_err(&err)?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(&err)?;
    sync_addrs(&h, idx, &BTreeSet::new(), &e.addrs)
        .await
        .map_err(&err)?;
    dump_links(&h)
        .await
        .map_err(&err)?
        .iter()
        .map(Link::from_msg)
        .find(|l| l.index == idx)
        .ok_or_else(|| ApplyError::Internal(format!("{ifname} vanished in {}", e.netns)))
}

/// The interface back to the host namespace under its plugin name.
pub(super) async fn move_out(e: &EndpointRes, k: &dyn Kernel, src: &str) -> Result<(), ApplyError> {
    let what = format!(
        "return the interface of endpoint {} to the host",
        e.endpoint
    );
    let err = ApplyError::kernel(&what);
    if e.netns.is_empty() || e.ifname.is_empty() {
        return Ok(());
    }
    let h = k.sandbox(&e.netns)?;
    // Renamed, or still under the plugin's name (a move that failed
    // half-way); only cnm's, by its mark, or the plugin's, by its name.
    let idx = match index_of(&h, &e.ifname).await {
        Ok(i) => i,
        Err(_) => index_of(&h, src).await.map_err(&err)?,
    };
    let host_ns = std::fs::File::open("/proc/self/ns/net").map_err(|source| ApplyError::Io {
        context: "cannot open the host's namespace".into(),
        source,
    })?;
    h.link()
        .set(LinkUnspec::new_with_index(idx).down().build())
        .execute()
        .await
        .map_err(&err)?;
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .name(src.to_string())
                .setns_by_fd(host_ns.as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .map_err(&err)
}
