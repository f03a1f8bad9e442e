//! Sockets inside sandboxes: a socket belongs to the namespace of the
//! thread that made it, so one short-lived thread enters each namespace in
//! turn and binds 127.0.0.11 there, at the sandbox's port (its `cnm-dns`
//! table sends port 53 to it). The namespace's inode tells a sandbox that
//! was made again (same name, new namespace) from one that still has its
//! sockets.

use crate::resolver::ADDRESS;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};

pub enum Outcome {
    /// Already served in this namespace (its inode).
    Same(u64),
    /// Sockets made in the namespace, which stays open for forwarding
    /// from inside it.
    New(u64, std::sync::Arc<std::fs::File>, UdpSocket, TcpListener),
    Failed(String),
}

/// For each namespace (with the inode cnm recorded making it), in order:
/// its sockets, or why not. `known`: the inode each one is served in now.
/// What to bind in one namespace: its name, the inode cnm recorded making
/// it with, the port.
pub type Wanted = (String, Option<u64>, u16);

/// For each namespace, in order: its sockets, or why not. `known`: the
/// inode and port each one is served at now.
pub fn bind_all(netns: &[Wanted], known: &BTreeMap<String, (u64, u16)>) -> Vec<(String, Outcome)> {
    let list = netns.to_vec();
    let known = known.clone();
    // A thread of its own, which ends inside the last namespace it entered.
    let worker = std::thread::spawn(move || {
        list.into_iter()
            .map(|(n, made, port)| {
                // Served at another port: bound again.
                let same = known.get(&n).filter(|(_, p)| *p == port).map(|(i, _)| *i);
                let o = bind_one(&n, made, same, port);
                (n, o)
            })
            .collect::<Vec<_>>()
    });
    worker.join().unwrap_or_default()
}

fn bind_one(netns: &str, made: Option<u64>, known: Option<u64>, port: u16) -> Outcome {
    // Served in the namespace cnm still records: nothing to look at (one
    // deleted meanwhile was let go when its name went, see `serve`; one
    // made again has a new recorded inode).
    if let (Some(k), Some(m)) = (known, made) {
        if k == m {
            return Outcome::Same(k);
        }
    }
    let file = match crate::netns::open(netns) {
        Ok(Some(f)) => f,
        Ok(None) => return Outcome::Failed(format!("namespace {netns} is not there")),
        Err(e) => return Outcome::Failed(format!("cannot open namespace {netns}: {e}")),
    };
    let ino = match crate::netns::id_of(&file) {
        Ok(i) => i,
        Err(e) => return Outcome::Failed(format!("namespace {netns}: {e}")),
    };
    if made != Some(ino) {
        return Outcome::Failed(format!(
            "namespace {netns} is not the one cnm recorded making; not listening there"
        ));
    }
    if known == Some(ino) {
        return Outcome::Same(ino);
    }
    if let Err(e) = crate::netns::enter(&file) {
        return Outcome::Failed(format!("cannot enter namespace {netns}: {e}"));
    }
    let addr = SocketAddr::from((ADDRESS, port));
    let sockets = (|| -> std::io::Result<(UdpSocket, TcpListener)> {
        let u = udp_reusable(addr)?;
        let t = TcpListener::bind(addr)?;
        t.set_nonblocking(true)?;
        Ok((u, t))
    })();
    match sockets {
        Ok((u, t)) => Outcome::New(ino, std::sync::Arc::new(file), u, t),
        Err(e) => Outcome::Failed(format!("cannot listen on {addr} in namespace {netns}: {e}")),
    }
}

/// A UDP socket on `addr` with SO_REUSEADDR (a server of the sandbox's
/// own that binds the wildcard address at the same port with it still
/// can).
fn udp_reusable(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    Ok(UdpSocket::from(fd))
}
