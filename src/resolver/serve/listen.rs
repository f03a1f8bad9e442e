//! Serving one sandbox's sockets: UDP queries are answered in the receive
//! loop itself (a burst is drained before waiting again, no task per
//! query); only forwarded ones get a task. TCP (truncated answers, large
//! zones) gets a task per connection, with an idle timeout and a bound on
//! connections per sandbox.

use super::answer::{self, Reply};
use super::batch;
use super::forward::{self, Limit, Maker};
use crate::resolver::lookup::SandboxView;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// The view a sandbox answers from; replaced whole on reload, so a query
/// in flight keeps the view it started with.
pub type Slot = Arc<RwLock<Arc<SandboxView>>>;

/// How long a TCP client may stay idle, and how many a sandbox may have.
const TCP_IDLE: Duration = Duration::from_secs(5);
const TCP_MAX_CONNS: usize = 64;

/// What every sandbox's server shares.
#[derive(Clone)]
pub struct Shared {
    pub limit: Arc<Limit>,
    pub maker: Maker,
}

/// One served sandbox.
struct Sandbox {
    view: Slot,
    /// Round robin: each reply starts one address further.
    rr: AtomicUsize,
    /// Its namespace, where forwarded queries leave from.
    ns: Arc<File>,
    pool: forward::Pool,
    conns: AtomicUsize,
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

    /// Ask upstream, within the bound on queries in flight.
    async fn forward(&self, f: answer::Forwarded, raw: &[u8]) -> Vec<u8> {
        let Some(_permit) = self.shared.limit.enter() else {
            return f.refused();
        };
        let from = forward::Origin {
            ns: Some(&self.ns),
            maker: &self.shared.maker,
            pool: &self.pool,
        };
        let got = forward::forward(raw, &f.upstreams, &from).await;
        f.finish(got)
    }
}

/// Serve a sandbox's sockets until the returned tasks are aborted.
pub fn start(
    view: Slot,
    ns: Arc<File>,
    shared: &Shared,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let sb = Arc::new(Sandbox {
        view,
        rr: AtomicUsize::new(0),
        ns,
        pool: forward::Pool::default(),
        conns: AtomicUsize::new(0),
        shared: shared.clone(),
    });
    let udp = Arc::new(UdpSocket::from_std(udp)?);
    let tcp = TcpListener::from_std(tcp)?;
    Ok(vec![
        tokio::spawn(udp_loop(udp, sb.clone())),
        tokio::spawn(tcp_loop(tcp, sb)),
    ])
}

async fn udp_loop(sock: Arc<UdpSocket>, sb: Arc<Sandbox>) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    loop {
        if sock.readable().await.is_err() {
            return;
        }
        // Drain: bursts until the socket has nothing (which clears its
        // readiness).
        let mut errors = 0;
        loop {
            let round = sock.try_io(tokio::io::Interest::READABLE, || {
                batch::round(fd, |raw, peer| match sb.reply(raw, true) {
                    Reply::Now(bytes) => Some(bytes),
                    Reply::Forward(f) => {
                        if let Some(peer) = socket_addr(peer) {
                            let (sock, sb, raw) = (sock.clone(), sb.clone(), raw.to_vec());
                            tokio::spawn(async move {
                                let bytes = sb.forward(f, &raw).await;
                                let _ = sock.send_to(&bytes, peer).await;
                            });
                        }
                        None
                    }
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
            continue; // dropped: the client retries or gives up
        }
        let sb = sb.clone();
        tokio::spawn(async move {
            let _ = tcp_conn(stream, &sb).await;
            sb.conns.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// DNS over TCP: messages framed by a 16-bit length, answered in order,
/// until the client closes or stays idle.
async fn tcp_conn(mut s: TcpStream, sb: &Sandbox) -> std::io::Result<()> {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, s.read_u16()).await {
            Ok(Ok(n)) => usize::from(n),
            _ => return Ok(()),
        };
        let mut raw = vec![0u8; len];
        tokio::time::timeout(TCP_IDLE, s.read_exact(&mut raw))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let bytes = match sb.reply(&raw, false) {
            Reply::Now(b) => b,
            Reply::Forward(f) => sb.forward(f, &raw).await,
            Reply::Drop => continue,
        };
        let Ok(n) = u16::try_from(bytes.len()) else {
            continue;
        };
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&bytes);
        s.write_all(&out).await?;
    }
}
