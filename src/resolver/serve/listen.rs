//! Serving one sandbox's sockets: UDP queries are answered in the receive
//! loop itself (bursts are drained, no task per query); only forwarded
//! ones get a task, admitted within the bounds on queries in flight. TCP
//! (truncated answers) gets a task per connection, with an idle timeout and
//! a bound on connections per sandbox.

use super::answer::{self, Reply};
use super::batch;
use super::forward::{self, Account, Budget, Maker, Permit};
use crate::resolver::lookup::SandboxView;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// The view a sandbox answers from; replaced whole on reload, so a query
/// in flight keeps the view it started with.
pub type Slot = Arc<RwLock<Arc<SandboxView>>>;

/// How long a TCP client may stay idle (or not read), and how many a
/// sandbox may have.
const TCP_IDLE: Duration = Duration::from_secs(5);
const TCP_MAX_CONNS: usize = 64;

/// Bursts served before other sandboxes (and signals) get their turn: one
/// busy sandbox must not stall the others on the resolver's one thread.
const ROUNDS_BEFORE_YIELD: usize = 64;

/// Forwarded queries in flight over all sandboxes (a bound on the sockets
/// they hold); each sandbox gets its fair share (see [`Budget`]).
pub const MAX_IN_FLIGHT_ALL: usize = 8192;

/// What every sandbox's server shares.
#[derive(Clone)]
pub struct Shared {
    pub budget: Arc<Budget>,
    pub maker: Maker,
}

/// One served sandbox.
struct Sandbox {
    view: Slot,
    /// Round robin: each reply starts one address further.
    rr: AtomicUsize,
    /// Its namespace, where forwarded queries leave from.
    ns: Arc<File>,
    /// Sockets made ahead in its namespace, for forwarded queries.
    spares: forward::Spares,
    account: Arc<Account>,
    conns: AtomicUsize,
    /// Set when the sandbox is no longer served: TCP connections end.
    gone: Arc<AtomicBool>,
    shared: Shared,
}

impl Sandbox {
    fn view(&self) -> Arc<SandboxView> {
        match self.view.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn reply(&self, raw: &[u8], udp: bool) -> Reply {
        answer::reply(&self.view(), &self.rr, raw, udp)
    }

    /// A place for one more forwarded query, within the sandbox's share.
    fn admit(&self) -> Option<Permit> {
        self.account.enter()
    }

    /// Ask upstream; the permit is held until the answer is in.
    async fn forward(&self, f: answer::Forwarded, raw: &[u8], _held: Permit) -> Vec<u8> {
        let from = forward::Origin {
            ns: Some(&self.ns),
            maker: &self.shared.maker,
            spares: Some(&self.spares),
        };
        let got = forward::forward(raw, &f.upstreams, &from).await;
        f.finish(got)
    }
}

/// A served sandbox's tasks; dropped, they stop and its sockets close.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
    gone: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Serve a sandbox's sockets until the returned value is dropped.
pub fn start(
    view: Slot,
    ns: Arc<File>,
    shared: &Shared,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
) -> std::io::Result<Running> {
    let gone = Arc::new(AtomicBool::new(false));
    let sb = Arc::new(Sandbox {
        view,
        rr: AtomicUsize::new(0),
        ns,
        spares: forward::Spares::default(),
        account: shared.budget.account(),
        conns: AtomicUsize::new(0),
        gone: gone.clone(),
        shared: shared.clone(),
    });
    let udp = Arc::new(UdpSocket::from_std(udp)?);
    let tcp = TcpListener::from_std(tcp)?;
    Ok(Running {
        tasks: vec![
            tokio::spawn(udp_loop(udp, sb.clone())),
            tokio::spawn(tcp_loop(tcp, sb)),
        ],
        gone,
    })
}

async fn udp_loop(sock: Arc<UdpSocket>, sb: Arc<Sandbox>) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        // Drain: bursts until the socket has nothing (which clears its
        // readiness), letting the others run every few bursts.
        let mut errors = 0;
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds % ROUNDS_BEFORE_YIELD == 0 {
                tokio::task::yield_now().await;
            }
            let round = sock.try_io(tokio::io::Interest::READABLE, || {
                batch::round(fd, |raw, peer| match sb.reply(raw, true) {
                    Reply::Now(bytes) => Some(bytes),
                    Reply::Forward(f) => match (sb.admit(), socket_addr(peer)) {
                        (Some(held), Some(peer)) => {
                            let (sock, sb, raw) = (sock.clone(), sb.clone(), raw.to_vec());
                            tokio::spawn(async move {
                                let bytes = sb.forward(f, &raw, held).await;
                                let _ = sock.send_to(&bytes, peer).await;
                            });
                            None
                        }
                        (None, _) => Some(f.refused()),
                        (_, None) => None,
                    },
                    Reply::Drop => None,
                })
            });
            match round {
                Ok(_) => errors = 0,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // An ICMP error queued by an earlier send: read on; a
                // lasting error must not spin.
                Err(_) => {
                    errors += 1;
                    if errors > 16 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        break;
                    }
                }
            }
        }
    }
}

fn socket_addr(a: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

async fn tcp_loop(listener: TcpListener, sb: Arc<Sandbox>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if sb.conns.fetch_add(1, Ordering::Relaxed) >= TCP_MAX_CONNS {
            sb.conns.fetch_sub(1, Ordering::Relaxed);
            continue; // closed: the client retries or gives up
        }
        let sb = sb.clone();
        tokio::spawn(async move {
            let _ = tcp_conn(stream, &sb).await;
            sb.conns.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// DNS over TCP: messages framed by a 16-bit length, answered in order,
/// until the client closes, stays idle (or stops reading), or the sandbox
/// is no longer served.
async fn tcp_conn(mut s: TcpStream, sb: &Sandbox) -> std::io::Result<()> {
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    while !sb.gone.load(Ordering::Relaxed) {
        let len = match tokio::time::timeout(TCP_IDLE, s.read_u16()).await {
            Ok(Ok(n)) => usize::from(n),
            _ => return Ok(()),
        };
        let mut raw = vec![0u8; len];
        tokio::time::timeout(TCP_IDLE, s.read_exact(&mut raw))
            .await
            .map_err(|_| timed_out())??;
        let bytes = match sb.reply(&raw, false) {
            Reply::Now(b) => b,
            Reply::Forward(f) => match sb.admit() {
                Some(held) => sb.forward(f, &raw, held).await,
                None => f.refused(),
            },
            Reply::Drop => continue,
        };
        let Ok(n) = u16::try_from(bytes.len()) else {
            continue;
        };
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&bytes);
        tokio::time::timeout(TCP_IDLE, s.write_all(&out))
            .await
            .map_err(|_| timed_out())??;
    }
    Ok(())
}
