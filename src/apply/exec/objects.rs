//! Each kind of object made, changed or deleted: by its driver (links,
//! endpoints), or by the engine on marked objects only.

use super::dns::DnsOp;
use super::{links, lock, sandbox, Executor, R};
use crate::drivers::Kernel;
use crate::errors::ApplyError;
use crate::model::{FileRes, StrayKind};
use crate::naming::{self, MarkKind};
use crate::plan::Resource;

impl Executor {
    pub(super) async fn create(&self, r: &Resource) -> R {
        match r {
            Resource::Namespace(n) => self.create_namespaces(&[n]).await,
            Resource::Link(l) => self.driver(&l.driver)?.create_link(l, self).await,
            Resource::Endpoint(e) => {
                let learned = self.driver(&e.driver)?.create_endpoint(e, self).await?;
                self.learned(&e.endpoint, learned)
            }
            Resource::Plugin(p) => self.create_plugin_object(p).await,
            Resource::Fdb(f) => self.add_fdb(f).await,
            Resource::Neigh(n) => self.set_neigh(n).await,
            Resource::Route(rt) => self.set_route(rt).await,
            Resource::File(f) => self.write_file(f),
            Resource::Firewall(f) => self.set_firewall(None, Some(f)).await,
            Resource::Sysctl(s) => write_sysctl(s),
            Resource::Stray(_) => Ok(()),
            Resource::Resolver(r) => resolver_ensure(r).await,
            Resource::Dns(d) => self.set_dns(&[(d, DnsOp::Create)]).await,
        }
    }

    pub(super) async fn remove(&self, r: &Resource) -> R {
        let what = format!("delete {}", r.label());
        let mark = |kind, name: &str| naming::mark(&self.topology, kind, name);
        match r {
            Resource::Namespace(n) => self.delete_namespace(n),
            Resource::Link(l) => {
                let m = mark(l.role, &l.network);
                links::delete_marked(&self.host, &l.ifname, Some(&m))
                    .await
                    .map_err(ApplyError::kernel(&what))
            }
            Resource::Endpoint(e) => self.remove_endpoint(e, &what).await,
            Resource::Fdb(f) => self.del_fdb(f).await,
            Resource::Neigh(n) => self.del_neigh(n).await,
            // Routes inside a namespace that goes go with it.
            Resource::Route(rt) if self.doomed(&rt.netns) => Ok(()),
            Resource::Route(rt) => self.delete_route(rt).await,
            Resource::File(f) => self.remove_file(f),
            Resource::Firewall(f) => self.set_firewall(Some(f), None).await,
            Resource::Sysctl(_) => Ok(()),
            // In a namespace that goes, the table goes with it.
            Resource::Dns(d) if self.doomed(&d.netns) => Ok(()),
            Resource::Dns(d) => self.set_dns(&[(d, DnsOp::Delete)]).await,
            Resource::Plugin(p) => self.delete_plugin_object(p).await,
            Resource::Resolver(r) => {
                let t = r.topology.clone();
                blocking(move || crate::resolver::control::remove(&t)).await
            }
            Resource::Stray(s) => self.remove_stray(&s.what, &what).await,
        }
    }

    /// Delete an endpoint: its driver undoes what it did beyond the
    /// interface (the records' word on which driver, else what the
    /// endpoint noted while being made), then the marked interface goes.
    async fn remove_endpoint(&self, e: &crate::model::EndpointRes, what: &str) -> R {
        let mark = |kind, name: &str| naming::mark(&self.topology, kind, name);
        // The driver that made it: the records' word, else what the
        // endpoint noted while being made.
        let noted = Kernel::learned(self, &e.endpoint)
            .get(crate::drivers::LEARNED_DRIVER)
            .cloned();
        let driver = self
            .reg
            .get(&e.driver)
            .or_else(|| noted.and_then(|n| self.reg.get(&n)));
        if let Some(d) = driver {
            d.delete_endpoint(e, self).await?;
        }
        let m = mark(MarkKind::Endpoint, &e.endpoint);
        match &e.host {
            // Its namespace goes in this plan, and the veth with it.
            Some(h) if self.doomed(&e.netns) => {
                lock(&self.with_namespace)?.push((h.ifname.clone(), m));
                Ok(())
            }
            Some(h) => links::delete_marked(&self.host, &h.ifname, Some(&m)).await,
            None if e.netns.is_empty() => Ok(()),
            None => match self.sandbox_handle(&e.netns) {
                Ok(h) => links::delete_marked(&h, &e.ifname, Some(&m)).await,
                Err(_) => Ok(()), // the namespace is gone, and the interface with it
            },
        }
        .map_err(ApplyError::kernel(what))
    }

    /// Delete a stray: a link under a temporary name, a mount point, an
    /// endpoint a plugin still holds.
    async fn remove_stray(&self, what: &StrayKind, doing: &str) -> R {
        match what {
            // Unmarked or marked with the journaled mark: either way
            // the unique temporary name is cnm's.
            StrayKind::Link { ifname, netns, .. } => {
                let h = match netns {
                    Some(ns) => match self.sandbox_handle(ns.as_str()) {
                        Ok(h) => h,
                        Err(_) => return Ok(()),
                    },
                    None => self.host.clone(),
                };
                links::delete_marked(&h, ifname, None)
                    .await
                    .map_err(ApplyError::kernel(doing))
            }
            StrayKind::Mountpoint { netns, id } => sandbox::remove_mountpoint(netns, *id),
            StrayKind::Endpoint {
                endpoint,
                network,
                driver,
            } => match self.reg.get(driver) {
                Some(d) => {
                    let gone = crate::model::EndpointRes {
                        endpoint: endpoint.clone(),
                        network: network.clone(),
                        sandbox: String::new(),
                        netns: String::new(),
                        kind: String::new(),
                        ifname: String::new(),
                        mac: None,
                        mtu: 0,
                        addrs: Default::default(),
                        up: false,
                        host: None,
                        settings: Vec::new(),
                        unknown: Vec::new(),
                        made_with: String::new(),
                        driver: driver.clone(),
                    };
                    d.delete_endpoint(&gone, self).await
                }
                None => {
                    tracing::warn!("no driver {driver} to let endpoint {endpoint} go");
                    Kernel::note(self, endpoint, &Default::default())
                }
            },
        }
    }

    pub(super) async fn update(&self, old: &Resource, new: &Resource) -> R {
        match (old, new) {
            (Resource::Namespace(o), Resource::Namespace(n)) => self.namespace_up(o, n).await,
            (Resource::Link(o), Resource::Link(l)) => self.update_link(o, l).await,
            (Resource::Endpoint(o), Resource::Endpoint(e)) => self.update_endpoint(o, e).await,
            (Resource::Neigh(_), Resource::Neigh(n)) => self.set_neigh(n).await,
            (Resource::Fdb(_), Resource::Fdb(f)) => self.add_fdb(f).await,
            (Resource::Route(_), Resource::Route(rt)) => self.set_route(rt).await,
            (Resource::File(_), Resource::File(f)) => self.write_file(f),
            (Resource::Firewall(o), Resource::Firewall(f)) => {
                self.set_firewall(Some(o), Some(f)).await
            }
            (Resource::Sysctl(_), Resource::Sysctl(s)) => write_sysctl(s),
            (Resource::Resolver(_), Resource::Resolver(r)) => resolver_ensure(r).await,
            (Resource::Dns(_), Resource::Dns(d)) => self.set_dns(&[(d, DnsOp::Replace)]).await,
            _ => Err(ApplyError::Internal(format!(
                "update changes the kind of {}",
                new.label()
            ))),
        }
    }

    /// Replace the topology's tables in one nft transaction, then record
    /// their fingerprint. `nft` is a process: run it off the runtime.
    pub(super) async fn set_firewall(
        &self,
        before: Option<&crate::model::FirewallRes>,
        fw: Option<&crate::model::FirewallRes>,
    ) -> R {
        let doc = crate::firewall::nft::document(&self.topology, before, fw);
        let rules = fw.map_or(0, |f| f.rules.len());
        // Elements alone: the fingerprint follows without listing again.
        let elements = match (before, fw) {
            (Some(b), Some(f)) if b.elements_only_to(f) => Some((b.clone(), f.clone())),
            _ => None,
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let start = std::time::Instant::now();
            crate::firewall::nft::apply(&doc)?;
            tracing::debug!(
                rules,
                us = start.elapsed().as_micros() as u64,
                "nft transaction"
            );
            if let Some((b, f)) = &elements {
                if crate::firewall::nft::record_elements(&store, b, f)? {
                    return Ok(());
                }
            }
            crate::firewall::nft::record(&store)
        })
        .await
        .map_err(|e| ApplyError::Internal(e.to_string()))?
        .map_err(ApplyError::Firewall)
    }

    pub(super) fn write_file(&self, f: &FileRes) -> R {
        sandbox::write_file(self, f)
    }

    pub(super) fn remove_file(&self, f: &FileRes) -> R {
        sandbox::remove_file(self, f)
    }
}

pub(super) fn write_sysctl(s: &crate::model::SysctlRes) -> R {
    crate::safe::write_sysctl(&s.key, &s.value).map_err(|e| ApplyError::Io {
        context: format!("cannot set sysctl {}", s.key),
        source: std::io::Error::other(e),
    })
}

/// Give the resolver the topology's names and wait until it serves them
/// (it polls files and sleeps: off the runtime).
pub(super) async fn resolver_ensure(r: &crate::model::ResolverRes) -> R {
    let (t, config) = (r.topology.clone(), r.config.clone());
    blocking(move || crate::resolver::control::ensure(&t, &config)).await
}

pub(super) async fn blocking(
    f: impl FnOnce() -> Result<(), crate::resolver::control::ControlError> + Send + 'static,
) -> R {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApplyError::Internal(e.to_string()))?
        .map_err(ApplyError::from)
}
