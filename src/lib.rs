//! cnm: Docker's Container Network Model (libnetwork's networks, endpoints
//! and sandboxes) as a declarative reconciler for Linux.
//!
//! A topology (the YAML file `cnm` reads) is diffed against what the
//! kernel has; the plan is a value that can be printed, serialized and
//! applied. The pipeline, one module each: `spec` (file → validated
//! [`Topology`]) → `observe` (kernel → [`model::Observed`]) → `desired`
//! (topology × observed → desired [`model::State`], with IPAM) → `diff`
//! (desired × observed → [`Plan`]) → [`apply`] (execute the plan,
//! re-observe, verify).
//!
//! # Declarative use
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let t = cnm::load("examples/topologies/quickstart.yaml".as_ref())?;
//! let planned = cnm::plan_for(&t).await?; // reads the kernel (root)
//! print!("{}", planned.render_text(&t.file, false));
//! println!("{}", planned.to_json());
//! let applied = cnm::converge(&t).await?; // plan, execute, verify
//! assert!(cnm::plan_for(&t).await?.is_empty());
//! cnm::destroy(&t.name).await?;
//! # Ok(()) }
//! ```
//!
//! # Imperative use, with libnetwork's verbs
//!
//! [`Controller`] keeps a topology and applies it after each verb: see
//! `examples/embed.rs`.
//!
//! Everything runs as root on the host it changes. The modules not shown
//! here are the engine's (public for the `cnm` binary and the tests) and
//! are not a stable API.

#![warn(missing_docs)]

pub mod apply;
/// cnm as a CNI plugin: each CNI network the topology `cni-<name>`.
pub mod cni_plugin;
pub mod controller;
/// cnm as Docker's network driver: Docker's networks are the topology `docker`.
pub mod docker_plugin;
pub mod model;
pub mod plan;
pub mod spec;

/// CNI's protocol: environment, configuration, results and errors.
pub mod cni;
#[doc(hidden)]
pub mod desired;
#[doc(hidden)]
pub mod diff;
#[doc(hidden)]
pub mod drivers;
#[doc(hidden)]
pub mod errors;
#[doc(hidden)]
pub mod files;
#[doc(hidden)]
pub mod firewall;
#[doc(hidden)]
pub mod graph;
#[doc(hidden)]
pub mod ipam;
#[doc(hidden)]
pub mod naming;
#[doc(hidden)]
pub mod netlink;
#[doc(hidden)]
pub mod netns;
#[doc(hidden)]
pub mod observe;
#[doc(hidden)]
pub mod plugins;
#[doc(hidden)]
pub mod resolver;
#[doc(hidden)]
pub mod safe;
#[doc(hidden)]
pub mod show;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod topology;
#[doc(hidden)]
pub mod watch;

pub use apply::{ApplyError, Engine};
pub use controller::Controller;
pub use plan::Plan;
pub use spec::{load, parse, Topology};

/// Plan `t` on this host: observe the kernel, compute the desired state,
/// diff. Changes nothing; reading the sandboxes' namespaces needs root.
pub async fn plan_for(t: &Topology) -> Result<Plan, ApplyError> {
    Ok(Engine::default().plan(t).await?.plan)
}

/// Apply `t` on this host: plan, execute, re-observe what the plan
/// touched and verify it. Returns the plan as executed (empty when the
/// kernel already matched).
pub async fn converge(t: &Topology) -> Result<Plan, ApplyError> {
    Engine::default().apply(t, |_| Ok(())).await
}

/// Remove everything topology `name` owns on this host, and its records.
/// Returns the plan as executed.
pub async fn destroy(name: &str) -> Result<Plan, ApplyError> {
    Engine::default().destroy(name, name, |_| Ok(())).await
}
