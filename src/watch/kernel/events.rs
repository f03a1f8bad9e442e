//! The netlink multicast subscriptions and what their events mean: which
//! count as drift, and how each is described in the log.

use super::*;

pub(super) type Events = futures::channel::mpsc::UnboundedReceiver<(
    netlink_packet_core::NetlinkMessage<RouteNetlinkMessage>,
    netlink_sys::SocketAddr,
)>;

/// The host's multicast socket: its events, and the task that holds it.
pub(super) fn subscribe(ns: Option<&str>) -> std::io::Result<(Events, JoinHandle<()>)> {
    debug_assert!(ns.is_none());
    let (conn, _handle, rx) = rtnetlink::new_multicast_connection(&HOST_GROUPS)?;
    Ok((rx, tokio::spawn(conn)))
}

/// RTNLGRP_LINK, _IPV4_IFADDR, _IPV4_ROUTE, _IPV6_IFADDR, _IPV6_ROUTE
/// (linux/rtnetlink.h): what counts inside a sandbox.
pub(super) const SANDBOX_GROUPS: [u32; 5] = [1, 5, 7, 9, 11];

/// A bare multicast socket inside `netns`. Not an rtnetlink connection:
/// each of those keeps 72 KiB of buffers, and a sandbox's events are only
/// counted, never decoded (see [`sandbox_events`]). With it, one for the
/// namespace's nftables events (none when nftables is missing). Made on a
/// short-lived thread that entered the namespace; the sockets stay bound
/// to it.
pub(super) fn subscribe_sandbox(
    netns: &str,
) -> std::io::Result<(TokioSocket, Option<TokioSocket>)> {
    let file =
        netns::open(netns)?.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
    let rt = tokio::runtime::Handle::current();
    std::thread::spawn(
        move || -> std::io::Result<(TokioSocket, Option<TokioSocket>)> {
            netns::enter(&file)?;
            let _guard = rt.enter();
            let mut s = TokioSocket::new(NETLINK_ROUTE)?;
            s.socket_mut().bind_auto()?;
            for g in SANDBOX_GROUPS {
                s.socket_mut().add_membership(g)?;
            }
            let nft = (|| -> std::io::Result<TokioSocket> {
                let mut n = TokioSocket::new(netlink_sys::protocols::NETLINK_NETFILTER)?;
                n.socket_mut().bind_auto()?;
                n.socket_mut()
                    .add_membership(crate::watch::nft::NFNLGRP_NFTABLES)?;
                Ok(n)
            })();
            Ok((s, nft.ok()))
        },
    )
    .join()
    .map_err(|_| std::io::Error::other("netlink thread panicked"))?
}

/// Each datagram is read into a few bytes (the rest of it is dropped):
/// only the first message's type is looked at.
pub(super) async fn sandbox_events(
    socket: TokioSocket,
    netns: String,
    tx: UnboundedSender<Trigger>,
    dirty: Arc<Mutex<BTreeSet<String>>>,
) {
    let mut head = [0u8; 64];
    loop {
        head.fill(0);
        let what = match socket.recv(&mut &mut head[..]).await {
            Ok(()) => kind_name(u16::from_ne_bytes([head[4], head[5]])),
            // ENOBUFS: events were lost while nobody read; look anyway.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => "events lost",
            Err(e) => {
                warn!("netlink events in {netns}: {e}; no longer followed");
                return;
            }
        };
        if let Ok(mut d) = dirty.lock() {
            d.insert(netns.clone());
        }
        if tx
            .send(Trigger::Kernel(format!("drift: {what} in {netns}")))
            .is_err()
        {
            return;
        }
    }
}

/// Changes to cnm's redirect table in a sandbox (a workload's own
/// tables there are not cnm's business). A datagram is read whole only
/// while it is read.
pub(super) async fn sandbox_nft_events(
    socket: TokioSocket,
    netns: String,
    tx: UnboundedSender<Trigger>,
    dirty: Arc<Mutex<BTreeSet<String>>>,
) {
    loop {
        let ours = match socket.recv_from_full().await {
            Ok((bytes, _)) => crate::watch::nft::tables_in(&bytes)
                .iter()
                .any(|t| t == crate::resolver::redirect::TABLE),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => true,
            Err(e) => {
                warn!("nftables events in {netns}: {e}; no longer followed");
                return;
            }
        };
        if !ours {
            continue;
        }
        if let Ok(mut d) = dirty.lock() {
            d.insert(netns.clone());
        }
        let what = format!(
            "drift: nftables table {} changed in {netns}",
            crate::resolver::redirect::TABLE
        );
        if tx.send(Trigger::Kernel(what)).is_err() {
            return;
        }
    }
}

/// RTM_* message types (linux/rtnetlink.h) as words.
pub(super) fn kind_name(kind: u16) -> &'static str {
    match kind {
        16 => "link changed",
        17 => "link deleted",
        20 => "address added",
        21 => "address removed",
        24 => "route added",
        25 => "route removed",
        _ => "event",
    }
}

pub(super) async fn host_events(
    mut rx: Events,
    topology: String,
    owned: Arc<Mutex<BTreeSet<u32>>>,
    tx: UnboundedSender<Trigger>,
) {
    let prefix = format!("cnm:{topology}:");
    while let Some((msg, _)) = rx.next().await {
        let NetlinkPayload::InnerMessage(m) = msg.payload else {
            continue;
        };
        let is_owned = |i: u32| owned.lock().map(|o| o.contains(&i)).unwrap_or(false);
        let hit = match &m {
            RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => {
                link_marked(l, &prefix) || is_owned(l.header.index)
            }
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
                is_owned(addr_index(a))
            }
            RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r) => r
                .attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Oif(i) if is_owned(*i))),
            // Only the kinds cnm writes: the VXLAN device's own FDB entries
            // and permanent neighbours. Bridge learning and ARP traffic on
            // owned links are not drift.
            RouteNetlinkMessage::NewNeighbour(n) | RouteNetlinkMessage::DelNeighbour(n) => {
                is_owned(n.header.ifindex)
                    && (n.header.flags.contains(NeighbourFlags::Own)
                        || n.header.state == NeighbourState::Permanent)
            }
            _ => false,
        };
        if hit && tx.send(Trigger::Kernel(describe(&m, "host"))).is_err() {
            return;
        }
    }
}

pub(super) fn link_marked(l: &LinkMessage, prefix: &str) -> bool {
    l.attributes
        .iter()
        .any(|a| matches!(a, LinkAttribute::IfAlias(s) if s.starts_with(prefix)))
}

pub(super) fn addr_index(a: &AddressMessage) -> u32 {
    a.header.index
}

pub(super) fn describe(m: &RouteNetlinkMessage, place: &str) -> String {
    let what = match m {
        RouteNetlinkMessage::NewLink(_) => "link changed",
        RouteNetlinkMessage::DelLink(_) => "link deleted",
        RouteNetlinkMessage::NewAddress(_) => "address added",
        RouteNetlinkMessage::DelAddress(_) => "address removed",
        RouteNetlinkMessage::NewRoute(_) => "route added",
        RouteNetlinkMessage::DelRoute(_) => "route removed",
        RouteNetlinkMessage::NewNeighbour(_) => "fdb or neighbour entry added",
        RouteNetlinkMessage::DelNeighbour(_) => "fdb or neighbour entry removed",
        _ => "event",
    };
    format!("drift: {what} in {place}")
}
