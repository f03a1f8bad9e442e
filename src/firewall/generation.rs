//! The nftables ruleset's generation id (NFT_MSG_GETGEN, one netlink
//! round trip of microseconds): every transaction on any table bumps it.
//! Observe lists cnm's tables only when it moved since the listing it
//! kept (see `observe`), because `nft -j list` of a table with thousands
//! of rules costs hundreds of milliseconds.

use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_netfilter::nftables::{GenAttribute, GenMessage, NfTablesMessage};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

/// The current generation id of this network namespace's ruleset; `None`
/// when the kernel does not answer (no nf_tables).
pub fn current() -> Option<u32> {
    let mut socket = Socket::new(NETLINK_NETFILTER).ok()?;
    socket.bind_auto().ok()?;
    socket.connect(&SocketAddr::new(0, 0)).ok()?;
    let mut req = NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
        NfTablesMessage::GetGen(GenMessage { attributes: vec![] }),
    ));
    req.header.flags = NLM_F_REQUEST;
    req.header.sequence_number = 1;
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    socket.send(&buf, 0).ok()?;
    let mut answer = vec![0u8; 4096];
    let n = socket.recv(&mut &mut answer[..], 0).ok()?;
    let msg = NetlinkMessage::<NetfilterMessage>::deserialize(answer.get(..n)?).ok()?;
    let NetlinkPayload::InnerMessage(m) = msg.payload else {
        return None;
    };
    let NetfilterMessageInner::NfTables(NfTablesMessage::NewGen(g)) = m.inner else {
        return None;
    };
    g.attributes.iter().find_map(|a| match a {
        GenAttribute::Id(id) => Some(*id),
        _ => None,
    })
}

/// The network namespace this process is in, by inode: a generation id
/// means something only within its namespace.
pub fn netns_ino() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/net").ok().map(|m| m.ino())
}
