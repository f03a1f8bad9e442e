//! Executes a plan's actions over netlink: one connection per namespace,
//! the actions of one step (same kind, same phase) sent together so their
//! requests are pipelined on each connection. Executing decides nothing
//! the plan did not say; it only re-checks, right before each delete, that
//! the object is still the one the plan saw (its mark or identity).

mod links;
mod sandbox;

use super::ApplyError;
use crate::drivers::{Driver, Kernel, Registry};
use crate::model::{FileRes, StrayKind};
use crate::naming::{self, MarkKind};
use crate::netlink;
use crate::netns;
use crate::plan::{Action, Op, Plan, Resource};
use crate::store::{FilesRecord, JournalLink, TopologyStore};
use futures::future::join_all;
use rtnetlink::Handle;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

pub struct Executor {
    reg: Registry,
    store: TopologyStore,
    topology: String,
    host: Handle,
    sandboxes: Mutex<BTreeMap<String, Handle>>,
    /// Final name → temporary name, for the links the current step creates.
    temp: Mutex<BTreeMap<String, String>>,
    /// What cnm wrote under /etc/netns, per sandbox, kept up to date.
    files: Mutex<BTreeMap<String, FilesRecord>>,
    /// Sandboxes whose files record changed in this step.
    dirty: Mutex<BTreeSet<String>>,
    /// Objects held by plugins, as recorded (kept up to date); the error
    /// when the record cannot be read.
    plugins: Mutex<Result<BTreeMap<String, crate::model::PluginRes>, String>>,
    /// A create in this step learned values the rest of the plan may
    /// depend on (a pool, an address, a plugin's interface).
    learned_now: std::sync::atomic::AtomicBool,
    /// Namespaces this plan deletes: what lives only inside them (veths,
    /// routes) goes with them, in one kernel batch, instead of one slow
    /// deletion each.
    doomed: Mutex<BTreeSet<String>>,
    /// Host ends of veths left to their namespace's deletion, with their
    /// marks: waited for, and deleted if they outlive it.
    with_namespace: Mutex<Vec<(String, String)>>,
    /// Host link indices looked up (bridges endpoints join), by name:
    /// filled while endpoints are made, after every bridge change.
    host_indices: Mutex<BTreeMap<String, u32>>,
    /// Forget what an unreachable plugin may still hold (`destroy
    /// --forget-unreachable`) instead of keeping its records.
    forget_unreachable: bool,
    /// What plugins could not be reached to give back (kept in the
    /// records), described.
    kept: Mutex<Vec<String>>,
}

/// How a run of the executor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Every action ran.
    Done,
    /// A step learned values: the rest must be planned again with them.
    /// How many actions ran.
    Replan(usize),
}

type R = Result<(), ApplyError>;

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, ApplyError> {
    m.lock()
        .map_err(|_| ApplyError::Internal("lock poisoned".into()))
}

impl Executor {
    pub fn new(
        reg: &Registry,
        store: TopologyStore,
        conns: crate::observe::Connections,
    ) -> Result<Self, ApplyError> {
        let files = store.files()?;
        // Unreadable: nothing is written over it (a plugin object to make
        // or give back then stops the apply, with the reason).
        let plugins = store.plugin_objects().map_err(|e| {
            tracing::warn!("{e}; the objects plugins hold for cnm are not known");
            e.to_string()
        });
        Ok(Executor {
            plugins: Mutex::new(plugins),
            learned_now: std::sync::atomic::AtomicBool::new(false),
            reg: reg.clone(),
            topology: store.name().to_string(),
            store,
            host: conns.host,
            sandboxes: Mutex::new(conns.sandboxes),
            temp: Mutex::new(BTreeMap::new()),
            files: Mutex::new(files),
            dirty: Mutex::new(BTreeSet::new()),
            doomed: Mutex::new(BTreeSet::new()),
            host_indices: Mutex::new(BTreeMap::new()),
            with_namespace: Mutex::new(Vec::new()),
            forget_unreachable: false,
            kept: Mutex::new(Vec::new()),
        })
    }

    /// Forget what unreachable plugins may still hold instead of keeping
    /// its records (`destroy --forget-unreachable`).
    pub fn forgetting_unreachable(mut self, forget: bool) -> Self {
        self.forget_unreachable = forget;
        self
    }

    /// What plugins could not be reached to give back, kept in the
    /// records.
    pub fn kept(&self) -> Vec<String> {
        self.kept.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Run the actions step by step. A step is a run of actions of the
    /// same kind and phase; its actions go out concurrently. After a step
    /// whose creates learned values (a plugin's answer), stop: the rest is
    /// planned again with them.
    pub async fn run(&self, plan: &Plan) -> Result<Ran, ApplyError> {
        *lock(&self.doomed)? = plan
            .actions
            .iter()
            .filter(|a| a.op == Op::Delete)
            .filter_map(|a| match &a.resource {
                // A borrowed namespace outlives its name: what cnm put
                // in it is deleted one by one.
                Resource::Namespace(n) if n.borrowed.is_none() => Some(n.netns.clone()),
                _ => None,
            })
            .collect();
        let mut i = 0;
        while i < plan.actions.len() {
            let key = step_key(&plan.actions[i]);
            let mut j = i;
            while j < plan.actions.len() && step_key(&plan.actions[j]) == key {
                j += 1;
            }
            let step = &plan.actions[i..j];
            super::progress::step(i, plan.actions.len(), &plan.actions[i].resource.label());
            let started = std::time::Instant::now();
            self.journal(step)?;
            // Replaced objects go first, so a name they free can be reused.
            let olds = join_all(
                step.iter()
                    .filter(|a| a.op == Op::Replace)
                    .map(|a| self.remove(a.before.as_ref().unwrap_or(&a.resource))),
            )
            .await;
            olds.into_iter().collect::<R>()?;
            let created: Vec<&crate::model::NamespaceRes> = step
                .iter()
                .filter(|a| a.op == Op::Create)
                .filter_map(|a| match &a.resource {
                    Resource::Namespace(n) => Some(n),
                    _ => None,
                })
                .collect();
            self.create_namespaces(&created).await?;
            // Port 53 redirects: one thread visits every namespace in turn.
            let dns: Vec<(&crate::model::DnsRes, DnsOp)> = step
                .iter()
                .filter_map(|a| match (&a.resource, a.op) {
                    (Resource::Dns(d), Op::Delete) if self.doomed(&d.netns) => None,
                    (Resource::Dns(d), Op::Delete) => Some((d, DnsOp::Delete)),
                    (Resource::Dns(d), Op::Create) => Some((d, DnsOp::Create)),
                    (Resource::Dns(d), _) => Some((d, DnsOp::Replace)),
                    _ => None,
                })
                .collect();
            self.set_dns(&dns).await?;
            let results = join_all(
                step.iter()
                    .filter(|a| {
                        let made_above = matches!(a.resource, Resource::Dns(_))
                            || (a.op == Op::Create && matches!(a.resource, Resource::Namespace(_)));
                        !made_above
                    })
                    .map(|a| self.one(a)),
            )
            .await;
            let saved = self.save_records();
            results.into_iter().collect::<R>()?;
            saved?;
            tracing::debug!(
                step = %plan.actions[i].resource.label(),
                actions = j - i,
                took = ?started.elapsed(),
                "step"
            );
            // Namespaces deleted: their veths must be gone before anything
            // is created (a new endpoint may take a host end's name).
            if step
                .iter()
                .any(|a| a.op == Op::Delete && matches!(a.resource, Resource::Namespace(_)))
            {
                self.gone_with_namespaces().await?;
                // From here on (a replaced endpoint that lived in one of
                // them), objects are deleted one by one again.
                lock(&self.doomed)?.clear();
            }
            i = j;
            let learned = self
                .learned_now
                .swap(false, std::sync::atomic::Ordering::SeqCst);
            if learned && i < plan.actions.len() {
                self.gone_with_namespaces().await?;
                self.store.journal_clear()?;
                return Ok(Ran::Replan(i));
            }
        }
        self.gone_with_namespaces().await?;
        self.store.journal_clear()?;
        Ok(Ran::Done)
    }

    /// Whether `netns` is deleted by this plan (what is only inside it
    /// goes with it).
    fn doomed(&self, netns: &str) -> bool {
        lock(&self.doomed).is_ok_and(|d| d.contains(netns))
    }

    /// Wait until the host ends of veths whose namespaces were deleted are
    /// gone: the kernel tears a dead namespace's devices down in one batch,
    /// a moment later. Those still there after the wait are deleted one by
    /// one (if they still carry cnm's mark).
    async fn gone_with_namespaces(&self) -> R {
        let left = std::mem::take(&mut *lock(&self.with_namespace)?);
        if left.is_empty() {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + WITH_NAMESPACE_WAIT;
        let mut waiting: BTreeMap<String, String> = left.into_iter().collect();
        // Someone else may hold a namespace open (a process started in it,
        // a watcher's socket): when nothing goes for a while, stop waiting.
        let mut last = (waiting.len(), std::time::Instant::now());
        while !waiting.is_empty() && std::time::Instant::now() < deadline {
            if waiting.len() < last.0 {
                last = (waiting.len(), std::time::Instant::now());
            } else if last.1.elapsed() > WITH_NAMESPACE_STALL {
                break;
            }
            let present = netlink::lean_link_names()
                .await
                .map_err(ApplyError::io("list host links".into()))?;
            waiting.retain(|name, _| present.contains(name));
            if !waiting.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        for (name, mark) in waiting {
            links::delete_marked(&self.host, &name, Some(&mark))
                .await
                .map_err(ApplyError::kernel(&format!("delete {name}")))?;
        }
        Ok(())
    }

    async fn one(&self, a: &Action) -> R {
        match a.op {
            Op::Delete => self.remove(&a.resource).await,
            Op::Create | Op::Replace => self.create(&a.resource).await,
            Op::Update => {
                self.update(a.before.as_ref().unwrap_or(&a.resource), &a.resource)
                    .await
            }
        }
    }

    /// Before a step creates links or namespaces, record them (durably) in
    /// the journal: links under the unique temporary names they are
    /// created with (a link's by its name, an endpoint's first interface by
    /// the endpoint), namespaces by the mount point they will get.
    fn journal(&self, step: &[Action]) -> R {
        let mut links = Vec::new();
        let mut namespaces = Vec::new();
        let mut temp = lock(&self.temp)?;
        temp.clear();
        for a in step
            .iter()
            .filter(|a| matches!(a.op, Op::Create | Op::Replace))
        {
            let (key, kind, name, netns) = match &a.resource {
                Resource::Link(l) => (&l.ifname, l.role, &l.network, None),
                Resource::Endpoint(e) => {
                    // Without a host end, the interface is made in the sandbox.
                    let netns = e.host.is_none().then(|| e.netns.clone());
                    (&e.endpoint, MarkKind::Endpoint, &e.endpoint, netns)
                }
                Resource::Namespace(n) => {
                    namespaces.push(n.netns.clone());
                    continue;
                }
                _ => continue,
            };
            let tmp = naming::temp_link_name();
            temp.insert(key.clone(), tmp.clone());
            links.push(JournalLink {
                tmp,
                mark: naming::mark(&self.topology, kind, name),
                netns,
            });
        }
        drop(temp);
        self.store.journal_add(links, namespaces)?;
        Ok(())
    }

    fn driver(&self, name: &str) -> Result<&dyn Driver, ApplyError> {
        self.reg
            .get(name)
            .ok_or_else(|| ApplyError::Internal(format!("no driver {name} to make its objects")))
    }

    fn sandbox_handle(&self, netns: &str) -> Result<Handle, ApplyError> {
        if let Some(h) = lock(&self.sandboxes)?.get(netns) {
            return Ok(h.clone());
        }
        let file = netns::open(netns)
            .map_err(ApplyError::io(format!("cannot open namespace {netns}")))?
            .ok_or_else(|| missing_ns(netns))?;
        let h = netlink::connect_in(&file)
            .map_err(ApplyError::io(format!("cannot enter namespace {netns}")))?;
        lock(&self.sandboxes)?.insert(netns.to_string(), h.clone());
        Ok(h)
    }

    async fn create(&self, r: &Resource) -> R {
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

    async fn remove(&self, r: &Resource) -> R {
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
            Resource::Endpoint(e) => {
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
                .map_err(ApplyError::kernel(&what))
            }
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
            Resource::Stray(s) => match &s.what {
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
                        .map_err(ApplyError::kernel(&what))
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
            },
        }
    }

    async fn update(&self, old: &Resource, new: &Resource) -> R {
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

    /// Make, rewrite or delete the port 53 redirect table of each
    /// sandbox: an nftables transaction over netlink each (no process is
    /// started), from threads of their own that enter each namespace in
    /// turn, one a core (the kernel's part is most of the cost).
    async fn set_dns(&self, todo: &[(&crate::model::DnsRes, DnsOp)]) -> R {
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

    /// Replace the topology's tables in one nft transaction, then record
    /// their fingerprint. `nft` is a process: run it off the runtime.
    async fn set_firewall(
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

    /// Write the files records of the sandboxes touched in this step.
    fn save_records(&self) -> R {
        let dirty: Vec<String> = std::mem::take(&mut *lock(&self.dirty)?)
            .into_iter()
            .collect();
        let files = lock(&self.files)?;
        let recs: Vec<(String, FilesRecord)> = dirty
            .into_iter()
            .map(|s| {
                let rec = files.get(&s).cloned().unwrap_or_default();
                (s, rec)
            })
            .collect();
        Ok(self.store.record_files_all(&recs)?)
    }

    /// Keep what a driver learned making an endpoint (next plans use it).
    fn learned(&self, endpoint: &str, learned: crate::drivers::Learned) -> R {
        if learned.is_empty() {
            return Ok(());
        }
        self.learned_now
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(self.store.record_learned(endpoint, &learned)?)
    }

    /// Record the plugin objects now (`key` set to `obj`, or removed).
    fn record_plugin(&self, key: &str, obj: Option<crate::model::PluginRes>) -> R {
        let mut guard = lock(&self.plugins)?;
        let all = guard.as_mut().map_err(|e| {
            ApplyError::Internal(format!(
                "{e}: cnm will not overwrite what it recorded of plugins"
            ))
        })?;
        match obj {
            Some(o) => all.insert(key.to_string(), o),
            None => all.remove(key),
        };
        Ok(self.store.record_plugin_objects(all)?)
    }

    /// Ask a plugin for an object: recorded as pending first, so that a
    /// crash during the call is seen (and cleaned up) by the next plan.
    async fn create_plugin_object(&self, p: &crate::model::PluginRes) -> R {
        let plugin = match self.reg.plugin(&p.plugin) {
            Some(Some(plugin)) => plugin,
            _ => {
                return Err(ApplyError::Internal(format!(
                    "plugin {} is not reachable to make {}",
                    p.plugin, p.key
                )))
            }
        };
        if p.waits() {
            return Err(ApplyError::Internal(format!(
                "{} was to be asked before what it depends on was known",
                p.key
            )));
        }
        let mut pending = p.clone();
        pending.pending = true;
        self.record_plugin(&p.key, Some(pending))?;
        match crate::plugins::objects::create(plugin, p).await {
            Ok(returned) => {
                let mut done = p.clone();
                done.returned = returned;
                self.record_plugin(&p.key, Some(done.clone()))?;
                self.refuse_taken_pool(plugin, &done).await?;
                self.learned_now
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                // The plugin refused: it holds nothing. Anything else (the
                // connection broke after sending) stays pending.
                if matches!(e, crate::plugins::PluginError::Failed { .. }) {
                    self.record_plugin(&p.key, None)?;
                }
                Err(e.into())
            }
        }
    }

    /// A pool an IPAM plugin returned that overlaps a subnet another
    /// topology holds is given back at once and refused, before any
    /// network is asked of a driver with it.
    async fn refuse_taken_pool(
        &self,
        plugin: &crate::plugins::Plugin,
        done: &crate::model::PluginRes,
    ) -> R {
        if done.call != crate::model::PluginCall::Pool {
            return Ok(());
        }
        let Some(pool) = done
            .returned_str("Pool")
            .and_then(|p| p.parse::<ipnetwork::IpNetwork>().ok())
        else {
            return Ok(());
        };
        let store = crate::store::Store::system();
        let Some((other, theirs)) = super::conflicts::subnet_taken(&self.topology, &pool, &store)
        else {
            return Ok(());
        };
        if let Err(e) = crate::plugins::objects::delete(plugin, done).await {
            tracing::warn!("{e}");
        }
        self.record_plugin(&done.key, None)?;
        Err(ApplyError::Plan(crate::errors::PlanError::of_file(
            &self.topology,
            format!(
                "network {}: the pool {pool} that IPAM plugin {} returned overlaps subnet {theirs} of topology {other}, applied on this host; cnm gave it back (ask the plugin for another pool, or give the network a subnet)",
                done.network, done.plugin
            ),
        )
        .of_kind(crate::errors::ErrorKind::Host)))
    }

    /// Give an object back to its plugin. A plugin that no longer knows
    /// the object holds nothing: forgotten. One that cannot be reached may
    /// still hold it: its record is kept (see [`Kernel::keep_unreleased`]).
    async fn delete_plugin_object(&self, p: &crate::model::PluginRes) -> R {
        let what = crate::plugins::objects::describe(p);
        let unreachable = match self.reg.plugin(&p.plugin) {
            Some(Some(plugin)) => match crate::plugins::objects::delete(plugin, p).await {
                Ok(()) => false,
                Err(e) if e.unreachable() => true,
                Err(e) => {
                    tracing::warn!("{e}; cnm forgets {what}");
                    false
                }
            },
            _ => true,
        };
        if unreachable && Kernel::keep_unreleased(self, &p.plugin, &what) {
            return Ok(());
        }
        self.record_plugin(&p.key, None)
    }

    fn write_file(&self, f: &FileRes) -> R {
        sandbox::write_file(self, f)
    }

    fn remove_file(&self, f: &FileRes) -> R {
        sandbox::remove_file(self, f)
    }
}

/// The kernel work drivers do goes through the executor's connections.
impl Kernel for Executor {
    fn topology(&self) -> &str {
        &self.topology
    }
    fn keep_unreleased(&self, plugin: &str, what: &str) -> bool {
        if self.forget_unreachable {
            tracing::warn!(
                "plugin {plugin} is not reachable; cnm forgets {what} as asked (the plugin may still hold it)"
            );
            return false;
        }
        if let Ok(mut k) = self.kept.lock() {
            k.push(format!("{what} (plugin {plugin})"));
        }
        true
    }
    fn host(&self) -> &Handle {
        &self.host
    }
    fn sandbox(&self, netns: &str) -> Result<Handle, ApplyError> {
        self.sandbox_handle(netns)
    }
    fn netns_file(&self, netns: &str) -> Result<std::fs::File, ApplyError> {
        netns::open(netns)
            .map_err(ApplyError::io(format!("cannot open namespace {netns}")))?
            .ok_or_else(|| missing_ns(netns))
    }
    fn learned(&self, endpoint: &str) -> crate::drivers::Learned {
        self.store
            .learned()
            .ok()
            .and_then(|mut l| l.remove(endpoint))
            .unwrap_or_default()
    }
    fn note(&self, endpoint: &str, values: &crate::drivers::Learned) -> Result<(), ApplyError> {
        Ok(self.store.record_learned(endpoint, values)?)
    }
    fn host_index<'a>(
        &'a self,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<u32, rtnetlink::Error>> {
        Box::pin(async move {
            if let Some(i) = self
                .host_indices
                .lock()
                .ok()
                .and_then(|m| m.get(name).copied())
            {
                return Ok(i);
            }
            let i = netlink::index_of(&self.host, name).await?;
            if let Ok(mut m) = self.host_indices.lock() {
                m.insert(name.to_string(), i);
            }
            Ok(i)
        })
    }
    fn temp_name(&self, key: &str) -> Result<String, ApplyError> {
        lock(&self.temp)?
            .get(key)
            .cloned()
            .ok_or_else(|| ApplyError::Internal(format!("no temporary name for {key}")))
    }
}

/// How long the host ends of a deleted namespace's veths may take to go,
/// and how long none may go before the rest are deleted one by one.
const WITH_NAMESPACE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const WITH_NAMESPACE_STALL: std::time::Duration = std::time::Duration::from_millis(300);

/// A namespace the plan relies on is not there (any more).
fn missing_ns(netns: &str) -> ApplyError {
    ApplyError::Io {
        context: format!("cannot open namespace {netns}"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

/// Deletes of one kind run before creates; kinds keep their order.
fn step_key(a: &Action) -> (bool, u8) {
    (a.op == Op::Delete, a.resource.rank())
}

/// What to do with one sandbox's port 53 redirect table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DnsOp {
    /// Make it (there is none).
    Create,
    /// Replace what is there (a repair, another port).
    Replace,
    Delete,
}

#[derive(Debug, Clone)]
struct DnsJob {
    netns: String,
    mark: String,
    port: u16,
    op: DnsOp,
}

/// [`Executor::set_dns`]'s threads: enter each namespace, make, replace or
/// delete its table. A namespace that is gone has no table to delete.
fn dns_in_each(jobs: &[DnsJob]) -> R {
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

fn write_sysctl(s: &crate::model::SysctlRes) -> R {
    crate::safe::write_sysctl(&s.key, &s.value).map_err(|e| ApplyError::Io {
        context: format!("cannot set sysctl {}", s.key),
        source: std::io::Error::other(e),
    })
}

/// Give the resolver the topology's names and wait until it serves them
/// (it polls files and sleeps: off the runtime).
async fn resolver_ensure(r: &crate::model::ResolverRes) -> R {
    let (t, config) = (r.topology.clone(), r.config.clone());
    blocking(move || crate::resolver::control::ensure(&t, &config)).await
}

async fn blocking(
    f: impl FnOnce() -> Result<(), crate::resolver::control::ControlError> + Send + 'static,
) -> R {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApplyError::Internal(e.to_string()))?
        .map_err(ApplyError::from)
}
