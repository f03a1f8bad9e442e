//! Port 53 redirect tables, one per sandbox namespace, written from
//! threads of their own.

use super::kernel::missing_ns;
use super::{Executor, R};
use crate::errors::ApplyError;
use crate::naming::{self, MarkKind};
use crate::netns;

impl Executor {
    /// Make, rewrite or delete the port 53 redirect table of each
    /// sandbox: an nftables transaction over netlink each (no process is
    /// started), from threads of their own that enter each namespace in
    /// turn, one a core (the kernel's part is most of the cost).
    pub(super) async fn set_dns(&self, todo: &[(&crate::model::DnsRes, DnsOp)]) -> R {
        if todo.is_empty() {
            return Ok(());
        }
        let jobs: Vec<DnsJob> = todo
            .iter()
            .map(|(d, op)| DnsJob {
                netns: d.netns.clone(),
                mark: naming::mark(&self.topology, MarkKind::Sandbox, &d.sandbox),
                port: d.port,
                op: *op,
            })
            .collect();
        let started = std::time::Instant::now();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let per = jobs.len().div_ceil(threads);
        let mut waits = Vec::new();
        for chunk in jobs.chunks(per.max(1)) {
            let chunk = chunk.to_vec();
            // Threads of their own, never reused: each ends in the last
            // namespace it entered.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(dns_in_each(&chunk));
            });
            waits.push(rx);
        }
        for rx in waits {
            rx.await
                .map_err(|_| ApplyError::Internal("a DNS redirect thread panicked".into()))??;
        }
        tracing::debug!(tables = todo.len(), took = ?started.elapsed(), "dns redirect tables");
        Ok(())
    }
}

/// What to do with one sandbox's port 53 redirect table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DnsOp {
    /// Make it (there is none).
    Create,
    /// Replace what is there (a repair, another port).
    Replace,
    Delete,
}

#[derive(Debug, Clone)]
pub(super) struct DnsJob {
    netns: String,
    mark: String,
    port: u16,
    op: DnsOp,
}

/// [`Executor::set_dns`]'s threads: enter each namespace, make, replace or
/// delete its table. A namespace that is gone has no table to delete.
pub(super) fn dns_in_each(jobs: &[DnsJob]) -> R {
    use crate::resolver::redirect;
    for j in jobs {
        let netns = &j.netns;
        let file = match netns::open(netns) {
            Ok(Some(f)) => f,
            Ok(None) if j.op == DnsOp::Delete => continue,
            Ok(None) => return Err(missing_ns(netns)),
            Err(e) => return Err(ApplyError::io(format!("cannot open namespace {netns}"))(e)),
        };
        netns::enter(&file).map_err(ApplyError::io(format!("cannot enter namespace {netns}")))?;
        let done = match j.op {
            // One made since it was observed: replaced instead.
            DnsOp::Create => redirect::write(&j.mark, j.port, true).or_else(|e| {
                if e.raw_os_error() == Some(libc::EEXIST) {
                    redirect::write(&j.mark, j.port, false)
                } else {
                    Err(e)
                }
            }),
            DnsOp::Replace => redirect::write(&j.mark, j.port, false),
            DnsOp::Delete => redirect::remove(),
        };
        done.map_err(ApplyError::io(format!(
            "cannot {} the DNS redirect table in namespace {netns}",
            if j.op == DnsOp::Delete {
                "delete"
            } else {
                "write"
            }
        )))?;
    }
    Ok(())
}
