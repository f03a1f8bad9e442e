//! cnm: Docker's Container Network Model as a declarative reconciler.
//!
//! The pipeline, one module each:
//! `spec` (file → validated [`spec::Topology`]) → `observe` (kernel →
//! [`model::Observed`]) → `desired` (topology × observed → desired
//! [`model::State`], with IPAM) → `diff` (desired × observed → [`plan::Plan`])
//! → `apply` (execute the plan, re-observe, verify).

pub mod apply;
pub mod desired;
pub mod diff;
pub mod drivers;
pub mod files;
pub mod firewall;
pub mod graph;
pub mod ipam;
pub mod model;
pub mod naming;
pub mod netlink;
pub mod netns;
pub mod observe;
pub mod plan;
pub mod plugins;
pub mod resolver;
pub mod show;
pub mod spec;
pub mod store;
pub mod watch;
