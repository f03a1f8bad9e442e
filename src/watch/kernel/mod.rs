//! Kernel drift notifications: one netlink multicast socket (links,
//! addresses, routes) in the host namespace and one in every namespace the
//! topology owns. Host events count only for links cnm owns; in an owned
//! namespace everything counts.

use super::Trigger;
use crate::model::Observed;
use crate::netns;
use crate::observe;
use crate::store::TopologyStore;
use futures::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourFlags, NeighbourState};
use netlink_packet_route::route::RouteAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, TokioSocket};
use rtnetlink::MulticastGroup;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tracing::warn;

mod events;
use events::*;

/// The host also reports FDB and neighbour changes (overlay VXLAN entries).
/// Sandboxes do not: their ARP caches change with every conversation.
const HOST_GROUPS: [MulticastGroup; 6] = [
    MulticastGroup::Link,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
    MulticastGroup::Neigh,
];

pub struct Monitors {
    tx: UnboundedSender<Trigger>,
    host: Option<JoinHandle<()>>,
    /// The topology whose nftables tables count (nft events).
    topology: Arc<Mutex<String>>,
    nft_started: bool,
    /// inotify on `/etc/netns/<netns>/` of every owned sandbox.
    files: Option<notify::RecommendedWatcher>,
    watched: BTreeSet<std::path::PathBuf>,
    /// The sysctls cnm set, as last seen; polled once a second (the
    /// kernel sends no event when one changes).
    sysctls: Arc<Mutex<BTreeMap<String, String>>>,
    poller: Option<JoinHandle<()>>,
    /// Indices of owned links in the host namespace.
    owned: Arc<Mutex<BTreeSet<u32>>>,
    /// netns name → subscription. Shared with the watch on /run/netns,
    /// which drops one as soon as its namespace's name goes.
    sandboxes: Arc<Mutex<BTreeMap<String, Sub>>>,
    names: Option<notify::RecommendedWatcher>,
    /// Namespaces (by netns name) that sent an event, or whose files did,
    /// since the last reconcile took them; and those subscribed since.
    dirty: Arc<Mutex<BTreeSet<String>>>,
    /// sandbox → netns of the topology, as last refreshed.
    netns_of: BTreeMap<String, String>,
}

/// One namespace's subscription: its socket (held by `conn`) and the task
/// reading it. Dropping it closes the socket, which would otherwise keep a
/// deleted namespace, and its interfaces, alive.
struct Sub {
    /// The inode tells a namespace deleted and created again under the
    /// same name from the old one.
    ino: u64,
    /// Owns the socket.
    events: JoinHandle<()>,
    /// Its nftables events (cnm's port-53 redirect table there).
    nft: Option<JoinHandle<()>>,
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.events.abort();
        if let Some(n) = &self.nft {
            n.abort();
        }
    }
}

impl Monitors {
    pub fn new(tx: UnboundedSender<Trigger>) -> Self {
        Monitors {
            tx,
            host: None,
            topology: Arc::default(),
            nft_started: false,
            files: None,
            watched: BTreeSet::new(),
            sysctls: Arc::default(),
            poller: None,
            owned: Default::default(),
            sandboxes: Arc::default(),
            names: None,
            dirty: Arc::default(),
            netns_of: BTreeMap::new(),
        }
    }

    /// The sandboxes whose namespace is followed and sent no event (nor
    /// did its files) since the last call: a reconcile may trust them to
    /// be as it last read or made them. Their events from now on count
    /// for the next call.
    pub fn take_quiet(&mut self) -> BTreeSet<String> {
        let dirty = self
            .dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        let Ok(subs) = self.sandboxes.lock() else {
            return BTreeSet::new();
        };
        // A subscription whose reader ended (an error) vouches for nothing.
        self.netns_of
            .iter()
            .filter(|(_, ns)| {
                subs.get(*ns).is_some_and(|s| !s.events.is_finished()) && !dirty.contains(*ns)
            })
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Subscribe to namespaces that appeared, drop those that went away,
    /// and relearn which host links are owned.
    pub async fn refresh(&mut self, topology: &str) {
        if let Ok(mut t) = self.topology.lock() {
            *t = topology.to_string();
        }
        self.start_host_monitors(topology);
        let Ok(store) = crate::store::Store::system().topology(topology) else {
            return;
        };
        // The host only: sysctls and owned links are the host's, and the
        // sandboxes to follow come from the records (reading every
        // namespace again after each apply would cost as much as a plan).
        let host = observe::observe_scoped(
            crate::drivers::Registry::builtin(),
            &store,
            &Default::default(),
            &observe::Scope::Only(BTreeSet::new()),
        )
        .await;
        if let Ok((obs, _)) = host {
            self.learn_owned(&obs, &store, topology).await;
        }
        self.follow_sandboxes(&store);
    }

    /// Start, once each, the nftables subscription, the sysctl poller and
    /// the host's netlink subscription.
    fn start_host_monitors(&mut self, topology: &str) {
        if !self.nft_started {
            match super::nft::spawn(self.topology.clone(), self.tx.clone()) {
                Ok(()) => self.nft_started = true,
                Err(e) => warn!("cannot subscribe to nftables events: {e}"),
            }
        }
        if self.poller.is_none() {
            self.poller = Some(tokio::spawn(poll_sysctls(
                self.sysctls.clone(),
                self.tx.clone(),
            )));
        }
        if self.names.is_none() {
            let subs = self.sandboxes.clone();
            self.names = crate::netns::watch_names(move |name| {
                let Ok(mut subs) = subs.lock() else { return };
                if subs
                    .get(name)
                    .is_some_and(|s| netns::ino_now(name) != Some(s.ino))
                {
                    subs.remove(name);
                }
            });
        }
        if self.host.is_none() {
            match subscribe(None) {
                Ok((rx, _conn)) => {
                    self.host = Some(tokio::spawn(host_events(
                        rx,
                        topology.to_string(),
                        self.owned.clone(),
                        self.tx.clone(),
                    )))
                }
                Err(e) => warn!("cannot subscribe to host netlink events: {e}"),
            }
        }
    }

    /// From what is observed: the sysctls to poll, the sandbox directories
    /// whose files to follow, and the indices of owned host links.
    async fn learn_owned(&mut self, obs: &Observed, store: &TopologyStore, topology: &str) {
        if let Ok(mut snap) = self.sysctls.lock() {
            *snap = obs
                .state
                .sysctls
                .values()
                .map(|s| (s.key.clone(), s.value.clone()))
                .collect();
        }
        let dirs: BTreeSet<std::path::PathBuf> = observe::sandbox_netns(store)
            .unwrap_or_default()
            .values()
            .map(|netns| std::path::Path::new(crate::naming::ETC_NETNS_DIR).join(netns))
            .collect();
        self.watch_files(dirs);
        let mut owned = BTreeSet::new();
        let names: BTreeSet<&str> = obs
            .state
            .links
            .values()
            .map(|l| l.ifname.as_str())
            .chain(obs.state.endpoints.values().map(|e| e.host_ifname()))
            .filter(|n| !n.is_empty())
            .collect();
        let prefix = format!("cnm:{topology}:");
        if let Ok(s) = crate::netlink::lean::socket_here() {
            for l in crate::netlink::lean::links(&s).await.unwrap_or_default() {
                // Marked (a veth's host end), or named as observed.
                let named = l
                    .attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::IfName(n) if names.contains(n.as_str())));
                if named || link_marked(&l, &prefix) {
                    owned.insert(l.header.index);
                }
            }
        }
        if let Ok(mut o) = self.owned.lock() {
            *o = owned;
        }
    }

    /// One subscription per live namespace of the topology: those deleted
    /// (or created again under the same name) are dropped, new ones added.
    fn follow_sandboxes(&mut self, store: &TopologyStore) {
        let records = observe::sandbox_netns(store).unwrap_or_default();
        self.netns_of = records.clone();
        let live: BTreeMap<String, u64> = records
            .values()
            .filter_map(|ns| {
                let f = netns::open(ns).ok().flatten()?;
                Some((ns.clone(), netns::id_of(&f).ok()?))
            })
            .collect();
        let Ok(mut subs) = self.sandboxes.lock() else {
            return;
        };
        subs.retain(|ns, s| live.get(ns) == Some(&s.ino));
        let mut new = 0;
        for (ns, ino) in live {
            if subs.contains_key(&ns) {
                continue;
            }
            match subscribe_sandbox(&ns) {
                Ok((socket, nft)) => {
                    // Read once more after subscribing: what changed before
                    // sent no event here.
                    if let Ok(mut d) = self.dirty.lock() {
                        d.insert(ns.clone());
                    }
                    let events = tokio::spawn(sandbox_events(
                        socket,
                        ns.clone(),
                        self.tx.clone(),
                        self.dirty.clone(),
                    ));
                    let nft = nft.map(|n| {
                        tokio::spawn(sandbox_nft_events(
                            n,
                            ns.clone(),
                            self.tx.clone(),
                            self.dirty.clone(),
                        ))
                    });
                    subs.insert(ns, Sub { ino, events, nft });
                    new += 1;
                }
                Err(e) => warn!("cannot subscribe to netlink events in {ns}: {e}"),
            }
        }
        if new > 0 {
            // Look once at the namespaces just followed (and only them).
            let _ = self
                .tx
                .send(Trigger::Kernel(format!("{new} namespace(s) now followed")));
        }
    }
}

impl Monitors {
    /// Follow the files of these sandbox directories (hosts, resolv.conf):
    /// an edit, a deletion or a replacement is drift.
    fn watch_files(&mut self, dirs: BTreeSet<std::path::PathBuf>) {
        use notify::{RecursiveMode, Watcher};
        if self.files.is_none() {
            let tx = self.tx.clone();
            let dirty = self.dirty.clone();
            let made = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let Ok(ev) = res else { return };
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    return;
                }
                let ours = ev.paths.iter().find(|p| {
                    p.file_name()
                        .is_some_and(|n| crate::observe::FILE_NAMES.iter().any(|f| n == *f))
                });
                if let Some(p) = ours {
                    // /etc/netns/<netns>/<file>: that namespace is read again.
                    let netns = p
                        .parent()
                        .and_then(|d| d.file_name())
                        .and_then(|n| n.to_str());
                    if let (Some(ns), Ok(mut d)) = (netns, dirty.lock()) {
                        d.insert(ns.to_string());
                    }
                    let _ = tx.send(Trigger::Kernel(format!("drift: {} changed", p.display())));
                }
            });
            match made {
                Ok(w) => self.files = Some(w),
                Err(e) => {
                    warn!("cannot watch sandbox files: {e}");
                    return;
                }
            }
        }
        let Some(w) = self.files.as_mut() else { return };
        for gone in self.watched.difference(&dirs) {
            let _ = w.unwatch(gone);
        }
        for new in dirs.difference(&self.watched) {
            if let Err(e) = w.watch(new, RecursiveMode::NonRecursive) {
                tracing::debug!("cannot watch {}: {e}", new.display());
            }
        }
        self.watched = dirs;
    }
}

/// Once a second, compare the sysctls cnm set with what it last saw.
async fn poll_sysctls(seen: Arc<Mutex<BTreeMap<String, String>>>, tx: UnboundedSender<Trigger>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let snapshot = seen.lock().map(|s| s.clone()).unwrap_or_default();
        for (key, value) in snapshot {
            let now = std::fs::read_to_string(format!("/proc/sys/{key}")).unwrap_or_default();
            if now.trim() != value {
                let what = format!("drift: sysctl {} changed", key.replace('/', "."));
                if tx.send(Trigger::Kernel(what)).is_err() {
                    return;
                }
                break;
            }
        }
    }
}

impl Drop for Monitors {
    fn drop(&mut self) {
        if let Some(h) = &self.host {
            h.abort();
        }
        if let Some(p) = &self.poller {
            p.abort();
        }
        if let Ok(mut subs) = self.sandboxes.lock() {
            subs.clear();
        }
    }
}
