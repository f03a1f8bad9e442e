//! Reading the kernel into a [`KernelView`]: one netlink dump after the
//! other per socket (the kernel answers EBUSY otherwise), all namespaces'
//! dumps in flight together. Decides nothing about ownership.

use super::kernel::{entry_of, route_of, Candidate, KernelView, LinkTable, NsView};
use super::ObserveError;
use crate::naming::{self, MarkKind};
use crate::netlink;
use crate::netns::{self, Found};
use netlink_packet_route::AddressFamily;

fn io(context: String) -> impl Fn(crate::safe::SafeError) -> ObserveError {
    move |e| ObserveError::Io {
        context: context.clone(),
        source: std::io::Error::other(e),
    }
}

/// The host namespace, and the namespaces whose names `candidate` accepts.
pub async fn kernel(
    h: &rtnetlink::Handle,
    topology: &str,
    candidate: impl Fn(&str) -> bool,
) -> Result<KernelView, ObserveError> {
    let lean = netlink::lean::socket_here().map_err(|e| ObserveError::Io {
        context: "cannot open a netlink socket".into(),
        source: e,
    })?;
    let mut view = KernelView {
        host: ns_view(&lean, None).await?,
        ..KernelView::default()
    };
    drop(lean);
    // FDB and neighbour tables can be large; only tunnel devices of this
    // topology need them.
    let has_tunnels = view.host.table.links.values().any(|l| {
        l.alias
            .as_deref()
            .and_then(naming::parse_mark)
            .is_some_and(|m| m.topology == topology && m.kind == MarkKind::Vtep)
    });
    if has_tunnels {
        let err = |what: &'static str| {
            move |source| ObserveError::Netlink {
                what,
                netns: None,
                source,
            }
        };
        let fdb = netlink::dump_neighbours(h, AddressFamily::Bridge)
            .await
            .map_err(err("FDB entries"))?;
        view.fdb = fdb.iter().filter_map(entry_of).collect();
        let neighs = netlink::dump_neighbours(h, AddressFamily::Unspec)
            .await
            .map_err(err("neighbour entries"))?;
        view.neighs = neighs.iter().filter_map(entry_of).collect();
    }
    view.names = netns::list().map_err(io(format!("cannot list {}", netns::NETNS_DIR)))?;
    let Some(dir) = netns::dir().map_err(io(format!("cannot open {}", netns::NETNS_DIR)))? else {
        return Ok(view);
    };
    let mut live = Vec::new();
    for name in view.names.iter().filter(|n| candidate(n)) {
        match netns::find(&dir, name).map_err(io(format!("cannot inspect namespace {name}")))? {
            Found::Namespace(f, ino) => live.push((name.clone(), f, ino)),
            Found::Placeholder(id) => {
                view.placeholders.insert(name.clone(), id);
            }
            _ => {}
        }
    }
    view.candidates = read_all(live).await?;
    Ok(view)
}

/// Links, addresses and routes of one namespace, through a socket in it.
async fn ns_view(
    lean: &netlink_sys::TokioSocket,
    netns: Option<&str>,
) -> Result<NsView, ObserveError> {
    let table = LinkTable::dump(lean, netns).await?;
    let routes = netlink::lean_routes(lean)
        .await
        .map_err(|source| ObserveError::Io {
            context: match netns {
                Some(n) => format!("cannot read the routes of namespace {n}"),
                None => "cannot read the host's routes".into(),
            },
            source,
        })?;
    Ok(NsView {
        table,
        routes: routes.iter().filter_map(route_of).collect(),
        dns: None,
    })
}

/// Each namespace's view. The namespaces are split among a few threads
/// (one per core, at most [`MAX_READERS`]), each with its own runtime,
/// because decoding the dumps is as much work as the kernel's filling
/// them. Each thread keeps at most [`IN_FLIGHT`] namespaces open at once:
/// a socket's buffers cost 72 KiB, so memory stays flat in N.
async fn read_all(live: Vec<(String, std::fs::File, u64)>) -> Result<Vec<Candidate>, ObserveError> {
    if live.is_empty() {
        return Ok(Vec::new());
    }
    let readers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_READERS)
        .min(live.len().div_ceil(MIN_PER_READER));
    let per = live.len().div_ceil(readers);
    let mut live = live.into_iter().peekable();
    let mut parts = Vec::new();
    while live.peek().is_some() {
        let chunk: Vec<_> = live.by_ref().take(per).collect();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_on_own_thread(chunk));
        });
        parts.push(rx);
    }
    let mut all = Vec::new();
    for rx in parts {
        let part = rx.await.map_err(|_| ObserveError::Io {
            context: "cannot read the sandbox namespaces".into(),
            source: std::io::Error::other("reader thread panicked"),
        })??;
        all.extend(part);
    }
    Ok(all)
}

/// More threads than this would only queue on the kernel's locks.
const MAX_READERS: usize = 4;
/// Below this many namespaces per thread, a thread costs more than it saves.
const MIN_PER_READER: usize = 32;
/// Namespaces read at once by one thread (enough to keep the kernel busy).
const IN_FLIGHT: usize = 16;

/// Read namespaces on a thread of its own, which enters each to open its
/// socket (the thread ends afterwards, so where it was left does not
/// matter; sockets stay in the namespace they were born in).
fn read_on_own_thread(
    live: Vec<(String, std::fs::File, u64)>,
) -> Result<Vec<Candidate>, ObserveError> {
    use futures::StreamExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ObserveError::Io {
            context: "cannot start a reader thread".into(),
            source: e,
        })?;
    rt.block_on(async move {
        let reads = futures::stream::iter(live.into_iter().map(|(netns, f, ino)| async move {
            let lean = crate::netns::enter(&f)
                .and_then(|()| netlink::lean::socket_here())
                .map_err(|e| ObserveError::Io {
                    context: format!("cannot open a netlink socket in namespace {netns}"),
                    source: e,
                })?;
            drop(f);
            // The port 53 redirect table, read while this thread is in the
            // namespace (a kernel without nf_tables has none).
            let dns = crate::resolver::redirect::read().ok().flatten();
            let mut view = ns_view(&lean, Some(&netns)).await?;
            view.dns = dns;
            Ok::<_, ObserveError>(Candidate { netns, ino, view })
        }))
        .buffered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
        reads.into_iter().collect()
    })
}
