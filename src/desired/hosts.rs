//! Which of the topology's hosts this machine is.

use super::*;

/// The host of a multi-host file whose address is on this machine, when
/// `--host` did not name one (recorded with the apply, so that `show`
/// knows which sandboxes are here); `None` otherwise.
pub fn host_found_by_address(t: &Topology, obs: &Observed) -> Option<String> {
    if t.this_host.is_some() {
        return None;
    }
    this_host(t, obs).ok().flatten().map(|h| h.name.clone())
}

/// The host this machine is, in a multi-host file: the one `--host` named,
/// else the one whose address is on a local interface.
pub(super) fn this_host<'a>(
    t: &'a Topology,
    obs: &Observed,
) -> Result<Option<&'a Host>, PlanError> {
    if t.hosts.is_empty() {
        return Ok(None);
    }
    if let Some(h) = t.this_host.as_ref().and_then(|h| t.hosts.get(h)) {
        return Ok(Some(h));
    }
    let mine: Vec<&Host> = t
        .hosts
        .values()
        .filter(|h| obs.host.local_addrs.contains_key(&h.address))
        .collect();
    match mine.as_slice() {
        [h] => Ok(Some(h)),
        _ => Err(PlanError::of_file(
            &t.file,
            format!(
                "the file declares hosts ({}) and {}; say which one this machine is with --host NAME",
                t.hosts.keys().cloned().collect::<Vec<_>>().join(", "),
                if mine.is_empty() {
                    "none of their addresses is on this machine"
                } else {
                    "several of their addresses are on this machine"
                }
            ),
        )),
    }
}
