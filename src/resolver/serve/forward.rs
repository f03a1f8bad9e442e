//! Forwarding a question upstream, as Docker's resolver does: the query as
//! received under a fresh random ID, each upstream in turn (UDP, then TCP
//! when the answer is truncated), the next one on a timeout, an error,
//! SERVFAIL or REFUSED. As Docker's, a query leaves from inside the
//! sandbox's namespace (its upstream may be reachable only from there, as
//! on a macvlan LAN), except to a loopback upstream (the host's own
//! resolver), which is asked from the host.

use hickory_proto::op::{Message, ResponseCode};
use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets before the next is asked (an unanswered
/// query is dropped then). Below glibc's 5 s per try, so a client still
/// hears the answer of a second upstream.
const TRY_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest UDP answer read from an upstream. A client may claim up
/// to 65,535 bytes (EDNS), but the buffer is sized by what an answer
/// needs, not by the claim: a longer one is asked again over TCP (where
/// it is read at its own length).
const UDP_READ: usize = 4096;

/// The forwarded queries in flight over all sandboxes, bounded, and each
/// sandbox's fair share of that budget: a sandbox may hold at most the
/// budget divided among the sandboxes that have queries in flight plus one
/// (so there is always room for one more sandbox to start), and never more
/// than Docker's 1,024. Past it the sandbox's query is REFUSED, as
/// Docker's resolver answers; no group of sandboxes can starve the others.
pub struct Budget {
    in_flight: AtomicUsize,
    active: AtomicUsize,
    max: usize,
}

/// A sandbox's account on the [`Budget`].
pub struct Account {
    budget: Arc<Budget>,
    mine: AtomicUsize,
}

/// One forwarded query in flight, until dropped.
pub struct Permit(Arc<Account>);

/// A sandbox's share never drops below this, nor rises above Docker's
/// bound per container.
const MIN_SHARE: usize = 16;
const MAX_SHARE: usize = 1024;

impl Budget {
    pub fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            in_flight: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            max,
        })
    }

    /// What one sandbox may hold now.
    fn share(&self) -> usize {
        (self.max / (self.active.load(Ordering::Relaxed) + 1)).clamp(MIN_SHARE, MAX_SHARE)
    }

    /// Queries in flight over all sandboxes.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A new sandbox's account.
    pub fn account(self: &Arc<Self>) -> Arc<Account> {
        Arc::new(Account {
            budget: self.clone(),
            mine: AtomicUsize::new(0),
        })
    }
}

impl Account {
    /// A place for one more forwarded query, within the sandbox's share
    /// and the budget.
    pub fn enter(self: &Arc<Self>) -> Option<Permit> {
        let b = &self.budget;
        if self.mine.load(Ordering::Relaxed) >= b.share() {
            return None;
        }
        if b.in_flight.fetch_add(1, Ordering::Relaxed) >= b.max {
            b.in_flight.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        if self.mine.fetch_add(1, Ordering::Relaxed) == 0 {
            b.active.fetch_add(1, Ordering::Relaxed);
        }
        Some(Permit(self.clone()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let a = &self.0;
        a.budget.in_flight.fetch_sub(1, Ordering::Relaxed);
        if a.mine.fetch_sub(1, Ordering::Relaxed) == 1 {
            a.budget.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Makes sockets inside sandbox namespaces: one thread that enters the
/// namespace asked for before each socket (a socket belongs to the
/// namespace of the thread that made it; it is then used from anywhere).
#[derive(Clone)]
pub struct Maker {
    tx: std::sync::mpsc::Sender<Job>,
}

struct Job {
    ns: Arc<File>,
    tcp: bool,
    v6: bool,
    /// How many sockets to make.
    count: usize,
    reply: tokio::sync::oneshot::Sender<io::Result<Vec<OwnedFd>>>,
}

impl Maker {
    pub fn start() -> Maker {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::spawn(move || {
            // It goes back home after each socket: a thread left inside a
            // sandbox's namespace would keep that namespace (and its
            // devices) alive after cnm deletes it.
            let home = std::fs::File::open("/proc/thread-self/ns/net");
            for job in rx {
                let made = crate::netns::enter(&job.ns).and_then(|()| {
                    (0..job.count.max(1))
                        .map(|_| socket(job.tcp, job.v6))
                        .collect::<io::Result<Vec<_>>>()
                });
                if let Ok(h) = &home {
                    if let Err(e) = crate::netns::enter(h) {
                        tracing::warn!(
                            "the socket thread cannot return to the host namespace: {e}"
                        );
                    }
                }
                let _ = job.reply.send(made);
            }
        });
        Maker { tx }
    }

    async fn make(&self, ns: &Arc<File>, tcp: bool, v6: bool) -> io::Result<OwnedFd> {
        self.make_many(ns, tcp, v6, 1)
            .await?
            .pop()
            .ok_or_else(|| io::Error::other("no socket made"))
    }

    /// `count` sockets in the namespace behind `ns`, in one trip of the
    /// socket thread (entering a namespace costs more than a socket).
    async fn make_many(
        &self,
        ns: &Arc<File>,
        tcp: bool,
        v6: bool,
        count: usize,
    ) -> io::Result<Vec<OwnedFd>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            ns: ns.clone(),
            tcp,
            v6,
            count,
            reply,
        };
        self.tx
            .send(job)
            .map_err(|_| io::Error::other("the socket thread is gone"))?;
        rx.await
            .map_err(|_| io::Error::other("the socket thread is gone"))?
    }
}

/// A sandbox's UDP/IPv4 sockets made ahead, each used for one query only
/// (so each query still leaves from a fresh source port, chosen when it
/// connects, as Docker's do): made a few at a time, the namespace entered
/// once for all of them.
#[derive(Default)]
pub struct Spares(std::sync::Mutex<Vec<OwnedFd>>);

/// How many sockets are made ahead at once, and kept at most.
const SPARES: usize = 16;

impl Spares {
    async fn take(&self, ns: &Arc<File>, maker: &Maker) -> io::Result<OwnedFd> {
        if let Some(fd) = self.0.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(fd);
        }
        let mut made = maker.make_many(ns, false, false, SPARES).await?;
        let fd = made
            .pop()
            .ok_or_else(|| io::Error::other("no socket made"))?;
        if let Ok(mut v) = self.0.lock() {
            made.truncate(SPARES.saturating_sub(v.len()));
            v.extend(made);
        }
        Ok(fd)
    }
}

fn socket(tcp: bool, v6: bool) -> io::Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if v6 {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let kind = if tcp {
        SocketType::STREAM
    } else {
        SocketType::DGRAM
    };
    Ok(rustix::net::socket_with(
        family,
        kind,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

/// Where a query leaves from: the sandbox's namespace (made there by
/// `maker`), or the host's.
pub struct Origin<'a> {
    pub ns: Option<&'a Arc<File>>,
    pub maker: &'a Maker,
    /// The sandbox's sockets made ahead.
    pub spares: Option<&'a Spares>,
}

impl Origin<'_> {
    /// The sandbox's namespace, unless `up` is the host's own resolver.
    fn inside(&self, up: SocketAddr) -> Option<&Arc<File>> {
        self.ns.filter(|_| !up.ip().is_loopback())
    }
}

/// The first usable answer of `upstreams` to the raw query `raw`.
pub async fn forward(raw: &[u8], upstreams: &[IpAddr], from: &Origin<'_>) -> Option<Message> {
    if raw.len() < 12 {
        return None;
    }
    let mut q = raw.to_vec();
    let mut id = [0u8; 2];
    rustix::rand::getrandom(&mut id, rustix::rand::GetRandomFlags::empty()).ok()?;
    q[..2].copy_from_slice(&id);
    let asked = Message::from_vec(raw).ok()?;
    // Upstream answers over UDP within the size the client advertised.
    let cap = usize::from(asked.max_payload().max(512));
    let want = asked.queries;
    for ip in upstreams {
        let up = SocketAddr::new(*ip, 53);
        let tried = tokio::time::timeout(TRY_TIMEOUT, async {
            match exchange_udp(&q, up, from, cap).await? {
                Some(m) if !m.metadata.truncation => Ok(m),
                _ => exchange_tcp(&q, up, from).await,
            }
        })
        .await;
        match tried {
            Ok(Ok(m)) if m.metadata.id == u16::from_be_bytes(id) && m.queries == want => {
                match m.metadata.response_code {
                    ResponseCode::ServFail | ResponseCode::Refused => {
                        tracing::debug!(%up, "upstream failed the query; trying the next");
                    }
                    _ => return Some(m),
                }
            }
            Ok(Ok(_)) => tracing::debug!(%up, "upstream answered another question"),
            Ok(Err(e)) => tracing::debug!(%up, "upstream: {e}"),
            Err(_) => tracing::debug!(%up, "upstream timed out"),
        }
    }
    None
}

/// The upstream's answer over UDP; `None` when it is longer than cnm reads
/// over UDP (ask again over TCP).
async fn exchange_udp(
    q: &[u8],
    up: SocketAddr,
    from: &Origin<'_>,
    cap: usize,
) -> io::Result<Option<Message>> {
    let v6 = up.is_ipv6();
    let inside = from.inside(up);
    let s = match inside {
        // A fresh socket (a fresh source port) per query, as Docker's.
        Some(ns) => {
            let fd = match (from.spares, v6) {
                (Some(spares), false) => spares.take(ns, from.maker).await?,
                _ => from.maker.make(ns, false, v6).await?,
            };
            UdpSocket::from_std(std::net::UdpSocket::from(fd))?
        }
        None => {
            let any: SocketAddr = if v6 {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            UdpSocket::bind(any).await?
        }
    };
    // Connected: only replies from `up` arrive.
    s.connect(up).await?;
    s.send(q).await?;
    // One byte more than read: a longer datagram shows as cut.
    let read = cap.min(UDP_READ);
    let mut buf = vec![0u8; read + 1];
    loop {
        let n = s.recv(&mut buf).await?;
        if n >= 2 && buf[..2] == q[..2] {
            if n > read && read < cap {
                // Within what the client takes, but longer than cnm reads
                // over UDP: asked again over TCP.
                return Ok(None);
            }
            if n > cap {
                return Err(io::Error::other("upstream answered over the size asked"));
            }
            return Message::from_vec(&buf[..n])
                .map(Some)
                .map_err(io::Error::other);
        }
    }
}

async fn exchange_tcp(q: &[u8], up: SocketAddr, from: &Origin<'_>) -> io::Result<Message> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = match from.inside(up) {
        Some(ns) => {
            let fd = from.maker.make(ns, true, up.is_ipv6()).await?;
            tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(fd))
                .connect(up)
                .await?
        }
        None => TcpStream::connect(up).await?,
    };
    let len = u16::try_from(q.len()).map_err(io::Error::other)?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(q);
    s.write_all(&out).await?;
    let len = s.read_u16().await? as usize;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Message::from_vec(&buf).map_err(io::Error::other)
}
