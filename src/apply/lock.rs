//! One apply at a time per host: an exclusive flock on /run/cnm/lock.

use crate::naming::STATE_DIR;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;

pub struct Lock {
    _held: Flock<File>,
}

impl Lock {
    /// Take the lock, waiting (and saying so once) if another cnm holds it.
    pub fn acquire() -> std::io::Result<Lock> {
        std::fs::create_dir_all(STATE_DIR)?;
        let path = format!("{STATE_DIR}/lock");
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        };
        match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
            Ok(held) => Ok(Lock { _held: held }),
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                eprintln!("cnm: another cnm is changing this host ({path} is held); waiting for it to finish");
                Flock::lock(file, FlockArg::LockExclusive)
                    .map(|held| Lock { _held: held })
                    .map_err(|(_, e)| e.into())
            }
            Err((_, e)) => Err(e.into()),
        }
    }
}
