//! Sockets listening in the host namespace, read through sock_diag
//! netlink (what `ss -ltun` shows), not by spawning `ss`: TCP sockets in
//! LISTEN, bound UDP sockets, both families. SCTP is read when the kernel
//! has sctp_diag.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{
    AF_INET, AF_INET6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub protocol: &'static str,
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u32,
}

impl Listener {
    /// `0.0.0.0:22`, `[::]:53`.
    pub fn display(&self) -> String {
        match self.addr {
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
            a => format!("{a}:{}", self.port),
        }
    }
}

/// Every listening socket of the host namespace. A protocol the kernel
/// cannot report is left out.
pub fn dump() -> Vec<Listener> {
    let mut out = Vec::new();
    for (proto, name, states) in [
        (IPPROTO_TCP, "tcp", StateFlags::LISTEN),
        (IPPROTO_UDP, "udp", StateFlags::all()),
        (IPPROTO_SCTP, "sctp", StateFlags::LISTEN),
    ] {
        for family in [AF_INET, AF_INET6] {
            out.extend(query(family, proto, states.clone()).into_iter().map(
                |(addr, port, inode)| Listener {
                    protocol: name,
                    addr,
                    port,
                    inode,
                },
            ));
        }
    }
    out
}

/// One sock_diag dump: (local address, port, inode) of each socket.
fn query(family: u8, protocol: u8, states: StateFlags) -> Vec<(IpAddr, u16, u32)> {
    let Ok(mut socket) = Socket::new(NETLINK_SOCK_DIAG) else {
        return Vec::new();
    };
    if socket.bind_auto().is_err() || socket.connect(&SocketAddr::new(0, 0)).is_err() {
        return Vec::new();
    }
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf[..]);
    if socket.send(&buf[..], 0).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rx = vec![0u8; 1 << 16];
    loop {
        let Ok(size) = socket.recv(&mut &mut rx[..], 0) else {
            return out;
        };
        let mut offset = 0;
        while offset < size {
            let Ok(msg) = NetlinkMessage::<SockDiagMessage>::deserialize(&rx[offset..size]) else {
                return out;
            };
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    let id = &r.header.socket_id;
                    out.push((id.source_address, id.source_port, r.header.inode));
                }
                NetlinkPayload::Done(_) | NetlinkPayload::Error(_) => return out,
                _ => {}
            }
            let len = msg.header.length as usize;
            if len == 0 {
                return out;
            }
            offset += len;
        }
    }
}

/// `sshd (pid 812)`: the process holding socket inode `inode`, found in
/// /proc/*/fd (only read when a conflict is reported).
pub fn owner(inode: u32) -> Option<String> {
    let want = format!("socket:[{inode}]");
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = proc_entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()) {
                let comm =
                    std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
                return Some(format!("{} (pid {pid})", comm.trim()));
            }
        }
    }
    None
}
