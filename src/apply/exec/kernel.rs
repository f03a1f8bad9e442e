//! The kernel work drivers do goes through the executor's connections.

use super::{lock, Executor};
use crate::drivers::Kernel;
use crate::errors::ApplyError;
use crate::{netlink, netns};
use rtnetlink::Handle;

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

/// A namespace the plan relies on is not there (any more).
pub(super) fn missing_ns(netns: &str) -> ApplyError {
    ApplyError::Io {
        context: format!("cannot open namespace {netns}"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}
