//! The host-wide apply lock.

use crate::safe::SafeError;
use std::io::Write as _;
use std::path::Path;

/// One apply at a time per host: an exclusive flock.
pub struct Lock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl Lock {
    pub(super) fn take(file: std::fs::File, path: &Path) -> std::result::Result<Lock, SafeError> {
        use nix::fcntl::{Flock, FlockArg};
        let err = |e: nix::errno::Errno| SafeError::Io {
            path: path.display().to_string(),
            source: e.into(),
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => Ok(Lock { _held: held }),
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                // A closed stderr must not stop the wait.
                let _ = writeln!(
                    std::io::stderr(),
                    "cnm: another cnm is changing this host ({} is held); waiting for it to finish",
                    path.display()
                );
                Flock::lock(file, FlockArg::LockExclusive)
                    .map(|held| Lock { _held: held })
                    .map_err(|(_, e)| err(e))
            }
            Err((_, e)) => Err(err(e)),
        }
    }
}
