//! Executes a plan's actions over netlink: one connection per namespace,
//! the actions of one step (same kind, same phase) sent together so their
//! requests are pipelined on each connection. Executing decides nothing
//! the plan did not say; it only re-checks, right before each delete, that
//! the object is still the one the plan saw (its mark or identity).

mod dns;
mod kernel;
mod links;
mod objects;
mod plugins;
mod sandbox;

use dns::DnsOp;
use kernel::missing_ns;

use super::ApplyError;
use crate::drivers::{Driver, Registry};

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
            self.run_step(step).await?;
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
            // Even after the last step: what was planned from the old
            // values (an address a plugin gave anew, the names peers find
            // it by) is planned again.
            if learned {
                self.gone_with_namespaces().await?;
                self.store.journal_clear()?;
                return Ok(Ran::Replan(i));
            }
        }
        self.gone_with_namespaces().await?;
        self.store.journal_clear()?;
        Ok(Ran::Done)
    }

    /// One step: journaled first; replaced objects removed, new namespaces
    /// made, port 53 redirects written, then every other action at once.
    async fn run_step(&self, step: &[Action]) -> R {
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
        saved
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
}

/// How long the host ends of a deleted namespace's veths may take to go,
/// and how long none may go before the rest are deleted one by one.
const WITH_NAMESPACE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const WITH_NAMESPACE_STALL: std::time::Duration = std::time::Duration::from_millis(300);

/// Deletes of one kind run before creates; kinds keep their order.
fn step_key(a: &Action) -> (bool, u8) {
    (a.op == Op::Delete, a.resource.rank())
}
