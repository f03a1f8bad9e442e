//! nftables change events: a netlink socket joined to NFNLGRP_NFTABLES
//! gets every table, chain, rule and set change. Changes to the topology's
//! tables (`cnm-<topology>`) or to iptables' `filter` tables (where cnm
//! keeps accept rules) are drift. A blocking thread reads the socket; it
//! lives as long as the watcher.

use super::Trigger;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, NfTablesMessage, RuleAttribute, SetAttribute, TableAttribute,
};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// NFNLGRP_NFTABLES (include/uapi/linux/netfilter/nfnetlink.h).
pub(super) const NFNLGRP_NFTABLES: u32 = 7;

/// Start listening; `topology` names the tables to care about (it may be
/// renamed while watching).
pub fn spawn(topology: Arc<Mutex<String>>, tx: UnboundedSender<Trigger>) -> std::io::Result<()> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.add_membership(NFNLGRP_NFTABLES)?;
    std::thread::Builder::new()
        .name("nft-events".into())
        .spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let Ok(n) = socket.recv(&mut &mut buf[..], 0) else {
                    continue; // ENOBUFS after a burst: keep listening
                };
                let ours = format!(
                    "cnm-{}",
                    topology.lock().map(|t| t.clone()).unwrap_or_default()
                );
                if let Some(table) = tables_in(&buf[..n])
                    .into_iter()
                    .find(|t| *t == ours || t == "filter")
                {
                    let what = format!("drift: nftables table {table} changed");
                    if tx.send(Trigger::Kernel(what)).is_err() {
                        return;
                    }
                }
            }
        })?;
    Ok(())
}

/// Table names of the nftables messages in one datagram.
pub(super) fn tables_in(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while bytes.len() >= 16 {
        let len = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if len < 16 || len > bytes.len() {
            break;
        }
        if let Ok(msg) = NetlinkMessage::<NetfilterMessage>::deserialize(&bytes[..len]) {
            if let NetlinkPayload::InnerMessage(m) = msg.payload {
                if let NetfilterMessageInner::NfTables(nft) = m.inner {
                    out.extend(table_of(&nft));
                }
            }
        }
        let step = ((len + 3) & !3).min(bytes.len());
        bytes = &bytes[step..];
    }
    out
}

fn table_of(m: &NfTablesMessage) -> Option<String> {
    match m {
        NfTablesMessage::NewTable(t) | NfTablesMessage::DeleteTable(t) => {
            t.attributes.iter().find_map(|a| match a {
                TableAttribute::Name(n) => Some(n.clone()),
                _ => None,
            })
        }
        NfTablesMessage::NewChain(c) | NfTablesMessage::DeleteChain(c) => {
            c.attributes.iter().find_map(|a| match a {
                ChainAttribute::Table(n) => Some(n.clone()),
                _ => None,
            })
        }
        NfTablesMessage::NewRule(r) | NfTablesMessage::DeleteRule(r) => {
            r.attributes.iter().find_map(|a| match a {
                RuleAttribute::Table(n) => Some(n.clone()),
                _ => None,
            })
        }
        NfTablesMessage::NewSet(s) | NfTablesMessage::DeleteSet(s) => {
            s.attributes.iter().find_map(|a| match a {
                SetAttribute::Table(n) => Some(n.clone()),
                _ => None,
            })
        }
        _ => None,
    }
}
