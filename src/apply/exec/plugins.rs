//! Objects plugins hold for cnm: asked for (recorded as pending first),
//! refused when a pool overlaps another topology's subnet, given back;
//! and what drivers learned making endpoints.

use super::{lock, Executor, R};
use crate::drivers::Kernel;
use crate::errors::ApplyError;

impl Executor {
    /// Keep what a driver learned making an endpoint (next plans use it).
    pub(super) fn learned(&self, endpoint: &str, learned: crate::drivers::Learned) -> R {
        if learned.is_empty() {
            return Ok(());
        }
        self.learned_now
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(self.store.record_learned(endpoint, &learned)?)
    }

    /// Record the plugin objects now (`key` set to `obj`, or removed).
    pub(super) fn record_plugin(&self, key: &str, obj: Option<crate::model::PluginRes>) -> R {
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
    pub(super) async fn create_plugin_object(&self, p: &crate::model::PluginRes) -> R {
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
    pub(super) async fn refuse_taken_pool(
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
        let Some((other, theirs)) =
            crate::apply::conflicts::subnet_taken(&self.topology, &pool, &store)
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
    pub(super) async fn delete_plugin_object(&self, p: &crate::model::PluginRes) -> R {
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
}
