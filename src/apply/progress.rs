//! Where an apply is, for a front end that shows it (the CLI on a
//! terminal). One hook for the process: an apply runs once at a time
//! under cnm's lock, and the executor reports each step as it starts.

use std::sync::Mutex;

/// A step about to run: actions done so far, actions in the plan, and the
/// first object of the step.
pub struct Step<'a> {
    /// Actions done so far.
    pub done: usize,
    /// Actions in the plan.
    pub total: usize,
    /// The first object of the step (`endpoint e1`).
    pub label: &'a str,
}

type Hook = Box<dyn Fn(&Step<'_>) + Send>;

static HOOK: Mutex<Option<Hook>> = Mutex::new(None);

/// Report steps to `hook` from now on (`None`: stop).
pub fn set(hook: Option<Hook>) {
    if let Ok(mut h) = HOOK.lock() {
        *h = hook;
    }
}

pub(super) fn step(done: usize, total: usize, label: &str) {
    if let Ok(h) = HOOK.lock() {
        if let Some(h) = h.as_ref() {
            h(&Step { done, total, label });
        }
    }
}
