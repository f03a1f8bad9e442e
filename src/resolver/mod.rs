//! The embedded resolver: Docker's 127.0.0.11 inside every sandbox.
//!
//! - `config`: what it answers, computed by `apply` from the file (pure).
//! - `lookup`: how one sandbox's question is answered (pure).
//! - `serve`: the `cnm resolver` process: sockets bound inside each
//!   sandbox's namespace, hickory-proto's codec, reloaded on SIGHUP.
//! - `control`: what `apply`, `destroy` and `watch` do to it: start,
//!   reload, stop, and tell whether it runs and serves what it should.

pub mod config;
pub mod control;
pub mod lookup;
mod orphans;
pub mod redirect;
pub mod serve;

pub use crate::model::RESOLVER_ADDRESS as ADDRESS;
