//! The static FDB entries (the device's own table, NTF_SELF) and permanent
//! neighbour entries of the topology's tunnel devices (mark `vtep`).
//! Everything there is cnm's: the devices learn nothing.

use super::links::mark_of;
use super::TempLinks;
use crate::model::{FdbRes, NeighRes, State};
use crate::naming::MarkKind;
use crate::observe::kernel::{Entry, NsView};
use std::collections::BTreeMap;

pub fn classify(
    topology: &str,
    temp: &TempLinks,
    host: &NsView,
    fdb: &[Entry],
    neighs: &[Entry],
    state: &mut State,
) {
    // Tunnel devices by index: (network, device name); one still under
    // its temporary name is a stray, its entries go with it.
    let devices: BTreeMap<u32, (String, String)> = host
        .table
        .links
        .values()
        .filter(|l| !temp.host.contains_key(&l.name))
        .filter_map(|l| {
            let m = mark_of(l, topology).filter(|m| m.kind == MarkKind::Vtep)?;
            Some((l.index, (m.name, l.name.clone())))
        })
        .collect();
    for e in fdb.iter().filter(|e| e.own) {
        if let Some((network, dev)) = devices.get(&e.ifindex) {
            state.fdb.insert(
                (network.clone(), e.mac, e.ip),
                FdbRes {
                    network: network.clone(),
                    dev: dev.clone(),
                    mac: e.mac,
                    dst: e.ip,
                },
            );
        }
    }
    for e in neighs.iter().filter(|e| e.permanent) {
        if let Some((network, dev)) = devices.get(&e.ifindex) {
            state.neighs.insert(
                (network.clone(), e.ip),
                NeighRes {
                    network: network.clone(),
                    dev: dev.clone(),
                    ip: e.ip,
                    mac: e.mac,
                },
            );
        }
    }
}
