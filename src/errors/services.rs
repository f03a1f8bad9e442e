//! The errors of the store, the firewall, plugins, the resolver and of
//! reading the kernel.

use crate::safe::SafeError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Safe(#[from] SafeError),
    #[error("{what} '{}' {why}", .name.escape_debug())]
    BadName {
        what: &'static str,
        name: String,
        why: String,
    },
    #[error("{path}: not a record cnm can read ({why})")]
    Corrupt { path: String, why: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("cannot read the kernel's {what} over netlink{}: {source}", ns_suffix(.netns))]
    Netlink {
        what: &'static str,
        netns: Option<String>,
        source: rtnetlink::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Firewall(#[from] NftError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Safe(#[from] SafeError),
}

fn ns_suffix(ns: &Option<String>) -> String {
    ns.as_ref()
        .map(|n| format!(" in namespace {n}"))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nftables: {0}")]
    Nft(String),
    #[error("cannot record the firewall digest: {0}")]
    Record(#[from] StoreError),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin}: {message}")]
    Discovery { plugin: String, message: String },
    #[error("plugin {plugin} at {addr} is unreachable ({call}): {message}")]
    Unreachable {
        plugin: String,
        addr: String,
        call: String,
        message: String,
    },
    #[error("plugin {plugin}: {call} for {what} failed: {message}")]
    Failed {
        plugin: String,
        call: String,
        what: String,
        message: String,
    },
    #[error("plugin {plugin} does not implement {call}")]
    NotImplemented { plugin: String, call: String },
    #[error("plugin {plugin}: {call}: {message}")]
    Protocol {
        plugin: String,
        call: String,
        message: String,
    },
}

impl PluginError {
    /// The plugin could not be reached at all (gone, not started).
    pub fn unreachable(&self) -> bool {
        matches!(self, PluginError::Unreachable { .. })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the resolver ({exe}): {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("the resolver {0}")]
    NotServing(String),
}
