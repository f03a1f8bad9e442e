//! Files cnm writes for sandboxes, and the resolver that answers them.

use super::*;

/// A file cnm writes (a sandbox's hosts or resolv.conf).
#[derive(Debug, Clone, Serialize)]
pub struct FileRes {
    /// Absolute path (`/etc/netns/quick-alpha/hosts`).
    pub path: String,
    /// The sandbox it is written for.
    pub sandbox: String,
    /// The whole text of the file.
    pub content: String,
    /// Observed only: the identity of cnm's file, checked again before it
    /// is deleted.
    #[serde(skip)]
    pub id: Option<FileId>,
}

impl PartialEq for FileRes {
    fn eq(&self, o: &Self) -> bool {
        self.path == o.path && self.sandbox == o.sandbox && self.content == o.content
    }
}
impl Eq for FileRes {}

/// The embedded resolver as one topology needs it: its configuration
/// given to the host's resolver process, which runs and serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolverRes {
    /// The topology's name.
    pub topology: String,
    /// How many sandboxes it serves, and names it knows (plan's summary).
    pub sandboxes: usize,
    /// How many names it knows.
    pub names: usize,
    /// The configuration (JSON), as written for the resolver.
    #[serde(skip)]
    pub config: Vec<u8>,
    /// The resolver process runs (its recorded pid and start time match).
    pub running: bool,
    /// It serves this configuration, in the namespaces that exist now.
    pub current: bool,
}

/// 127.0.0.11:53 sent to the resolver's port inside a sandbox: the
/// `cnm-dns` table of its namespace (see `resolver::redirect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRes {
    /// The sandbox's name in the file.
    pub sandbox: String,
    /// Its namespace under /run/netns.
    pub netns: String,
    /// Where the resolver listens on 127.0.0.11 there (UDP and TCP).
    pub port: u16,
    /// Observed only: the table holds exactly cnm's rules for `port`
    /// (desired: always true).
    #[serde(skip)]
    pub intact: bool,
}
