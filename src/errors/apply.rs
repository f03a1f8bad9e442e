//! Why an apply, a destroy or a plan for them failed.

use super::{ControlError, NftError, ObserveError, PlanError, PluginError, StoreError};

/// Why an apply, a destroy or a plan for them failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Observing the kernel failed.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// The plan could not be made (a driver, a conflict, a prerequisite).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A netlink request failed.
    #[error("{action}: {source}")]
    Kernel {
        /// What cnm was doing (`delete br-shop-front`).
        action: String,
        /// The kernel's error.
        source: rtnetlink::Error,
    },
    /// A system call or a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What cnm was doing (`cannot enter namespace shop-web`).
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Planning again after apply still found changes: their labels, one a
    /// line.
    #[error("after apply, the kernel is not as planned:\n{0}")]
    NotConverged(String),
    /// An `nft` command failed, or recording what it wrote.
    #[error(transparent)]
    Firewall(#[from] NftError),
    /// Reading or writing cnm's records, or taking its lock, failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A plugin call failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Starting or updating the embedded resolver failed.
    #[error(transparent)]
    Resolver(#[from] ControlError),
    /// The front end could not show the plan.
    #[error("{0}")]
    Output(String),
    /// A CNI plugin of a delegated network failed (one line naming the
    /// network, endpoint, plugin and its error object).
    #[error("{0}")]
    Cni(String),
    /// A saved plan that no longer describes what applying would do.
    #[error("{0}")]
    Stale(String),
    /// A destroy removed the kernel objects, but plugins could not be
    /// reached to give back what they hold: its records are kept.
    #[error("topology {topology}: its kernel objects are gone, but these could not be given back to their plugins, which may still hold them (cnm keeps their records): {}; run `cnm destroy --topology {topology}` again once the plugins answer, or add --forget-unreachable to forget them", kept.join(", "))]
    Unreleased {
        /// The topology.
        topology: String,
        /// What was kept, described.
        kept: Vec<String>,
    },
    /// Something that should not happen (a poisoned lock, a plugin gone
    /// during apply).
    #[error("internal error: {0}")]
    Internal(String),
    /// Planning again with learned values failed, after changes were made.
    #[error(
        "{0}\n(planned again with what drivers and plugins answered, after changes were made)"
    )]
    AfterChanges(Box<ApplyError>),
}

impl ApplyError {
    /// Raised before anything was executed.
    pub fn before_changes(&self) -> bool {
        matches!(
            self,
            ApplyError::Plan(_)
                | ApplyError::Observe(_)
                | ApplyError::Output(_)
                | ApplyError::Stale(_)
                | ApplyError::Store(StoreError::BadName { .. })
        )
    }
}

impl ApplyError {
    /// A netlink request `action` failed: the adapter for `map_err`.
    pub fn kernel(action: &str) -> impl Fn(rtnetlink::Error) -> ApplyError + '_ {
        move |source| ApplyError::Kernel {
            action: action.to_string(),
            source,
        }
    }

    /// A system call or file access failed while doing `context`.
    pub fn io(context: String) -> impl Fn(std::io::Error) -> ApplyError {
        move |source| ApplyError::Io {
            context: context.clone(),
            source,
        }
    }
}
