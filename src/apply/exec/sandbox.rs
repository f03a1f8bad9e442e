//! Sandboxes: their namespaces and the files under `/etc/netns/<netns>/`.
//!
//! A namespace is created unnamed, its loopback marked and brought up, and
//! only then bound to `/run/netns/<netns>` (O_EXCL: nothing there is taken
//! over); its inode is recorded. Files are written through
//! [`crate::safe`] (no links followed, fixed modes, atomic), marked,
//! and their identities recorded; they are deleted only while they are
//! still the recorded ones.

use super::{lock, Executor, R};
use crate::model::{FileRes, NamespaceRes};
use crate::naming::{self, MarkKind};
use crate::netlink;
use crate::netns;
use crate::observe::FILE_NAMES;
use crate::safe::{Dir, FileId};
use crate::store::{FileStamp, NsRecord, RECORD_VERSION};
use rtnetlink::LinkUnspec;
use std::path::Path;

use super::ApplyError;

/// Mode of `/etc/netns/<netns>` (and `/etc/netns` when cnm creates it).
const ETC_DIR_MODE: u32 = 0o755;
/// Mode of hosts and resolv.conf: readable by every process in the sandbox.
const ETC_FILE_MODE: u32 = 0o644;

fn safe_err(context: String) -> impl Fn(crate::safe::SafeError) -> ApplyError {
    move |e| ApplyError::Io {
        context: context.clone(),
        source: std::io::Error::other(e),
    }
}

impl Executor {
    /// Create namespaces together (cnm's own) and bind the borrowed ones,
    /// then set the sysctls of both.
    pub(super) async fn create_namespaces(&self, wanted: &[&NamespaceRes]) -> R {
        let (borrowed, own): (Vec<&NamespaceRes>, Vec<&NamespaceRes>) =
            wanted.iter().partition(|n| n.borrowed.is_some());
        self.create_own(&own).await?;
        for n in borrowed {
            self.attach(n).await?;
        }
        for n in wanted.iter().filter(|n| !n.sysctls.is_empty()) {
            self.set_sysctls(n, &Default::default())?;
        }
        Ok(())
    }

    /// cnm's own namespaces: one thread makes them all, one thread
    /// connects to them all, their loopbacks are marked and brought up
    /// concurrently, then each is bound to its name and recorded.
    async fn create_own(&self, wanted: &[&NamespaceRes]) -> R {
        if wanted.is_empty() {
            return Ok(());
        }
        let files = netns::create_unnamed(wanted.len())
            .map_err(ApplyError::io("cannot create network namespaces".into()))?;
        let clones = files
            .iter()
            .map(|f| f.try_clone())
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApplyError::io("cannot create network namespaces".into()))?;
        let handles = netlink::connect_in_each(clones)
            .map_err(ApplyError::io("cannot enter the new namespaces".into()))?;
        let marks = futures::future::join_all(wanted.iter().zip(&handles).map(|(n, h)| {
            let mark = naming::mark(&self.topology, MarkKind::Sandbox, &n.sandbox);
            h.link()
                .set(LinkUnspec::new_with_name("lo").alias(mark).up().build())
                .execute()
        }))
        .await;
        for (n, r) in wanted.iter().zip(marks) {
            r.map_err(ApplyError::kernel(&format!(
                "mark the loopback of {}",
                n.netns
            )))?;
        }
        let dir = netns::prepare_dir()
            .map_err(safe_err(format!("cannot prepare {}", netns::NETNS_DIR)))?;
        for ((n, f), h) in wanted.iter().zip(&files).zip(handles) {
            let ino = netns::bind(&dir, &n.netns, f)
                .map_err(safe_err(format!("cannot create namespace {}", n.netns)))?;
            self.store.record_namespace(
                &n.sandbox,
                &NsRecord {
                    version: RECORD_VERSION,
                    netns: n.netns.clone(),
                    ino: Some(ino),
                    ..Default::default()
                },
            )?;
            lock(&self.sandboxes)?.insert(n.netns.clone(), h);
        }
        Ok(())
    }

    /// Give a borrowed namespace the sandbox's name: opened again and
    /// checked to be the one planned, recorded, then bound (a bind mount
    /// at /run/netns/<netns>; the namespace itself is not written). Its
    /// loopback is brought up (the embedded resolver listens there); it
    /// is not marked: it is not cnm's.
    async fn attach(&self, n: &NamespaceRes) -> R {
        let Some(b) = &n.borrowed else {
            return Ok(());
        };
        let fail = |message: String| ApplyError::Io {
            context: format!("sandbox {}: netns {}", n.sandbox, b.from),
            source: std::io::Error::other(message),
        };
        let (file, ino) = netns::open_checked(Path::new(&b.path)).map_err(fail)?;
        if ino != b.ino {
            return Err(fail(format!(
                "{} is another namespace than when the plan was made; plan again",
                b.path
            )));
        }
        // Recorded first: a binding found after a crash is known by it.
        self.store.record_namespace(
            &n.sandbox,
            &NsRecord {
                version: RECORD_VERSION,
                netns: n.netns.clone(),
                ino: Some(ino),
                borrowed: Some(b.from.clone()),
                sysctls: Vec::new(),
            },
        )?;
        let dir = netns::prepare_dir()
            .map_err(safe_err(format!("cannot prepare {}", netns::NETNS_DIR)))?;
        netns::bind(&dir, &n.netns, &file)
            .map_err(safe_err(format!("cannot name namespace {}", n.netns)))?;
        let h = netlink::connect_in(&file).map_err(ApplyError::io(format!(
            "cannot enter namespace {}",
            n.netns
        )))?;
        h.link()
            .set(LinkUnspec::new_with_name("lo").up().build())
            .execute()
            .await
            .map_err(ApplyError::kernel(&format!("loopback in {}", n.netns)))?;
        lock(&self.sandboxes)?.insert(n.netns.clone(), h);
        Ok(())
    }

    /// Set the sysctls of `n` that `o` lacks or has otherwise, inside its
    /// namespace, and record their keys (observe reads them back).
    pub(super) fn set_sysctls(
        &self,
        n: &NamespaceRes,
        o: &std::collections::BTreeMap<String, String>,
    ) -> R {
        let changed: Vec<(String, String)> = n
            .sysctls
            .iter()
            .filter(|(k, v)| o.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let file = netns::open(&n.netns)
            .map_err(ApplyError::io(format!("cannot open namespace {}", n.netns)))?
            .ok_or_else(|| super::missing_ns(&n.netns))?;
        let mut rec = self
            .store
            .namespaces()?
            .remove(&n.sandbox)
            .unwrap_or_default();
        for (k, _) in &changed {
            if !rec.sysctls.contains(k) {
                rec.sysctls.push(k.clone());
            }
        }
        if rec.netns == n.netns {
            self.store.record_namespace(&n.sandbox, &rec)?;
        }
        netns::inside(&file, move || -> Result<(), String> {
            for (k, v) in &changed {
                crate::safe::write_sysctl(k, v)
                    .map_err(|e| format!("sysctl {}: {e}", k.replace('/', ".")))?;
            }
            Ok(())
        })
        .map_err(ApplyError::io(format!(
            "cannot enter namespace {}",
            n.netns
        )))?
        .map_err(|e| ApplyError::Io {
            context: format!("sandbox {}", n.sandbox),
            source: std::io::Error::other(e),
        })
    }

    /// Loopback up again, with its addresses (drift).
    pub(super) async fn namespace_up(&self, o: &NamespaceRes, n: &NamespaceRes) -> R {
        self.set_sysctls(n, &o.sysctls)?;
        if o.lo_up == n.lo_up && (o.lo_addrs == n.lo_addrs || n.borrowed.is_some()) {
            return Ok(());
        }
        let what = format!("loopback in {}", n.netns);
        let h = self.sandbox_handle(&n.netns)?;
        h.link()
            .set(LinkUnspec::new_with_name("lo").up().build())
            .execute()
            .await
            .map_err(ApplyError::kernel(&what))?;
        if o.lo_addrs != n.lo_addrs && n.borrowed.is_none() {
            let idx = crate::netlink::index_of(&h, "lo")
                .await
                .map_err(ApplyError::kernel(&what))?;
            crate::netlink::sync_addrs(&h, idx, &o.lo_addrs, &n.lo_addrs)
                .await
                .map_err(ApplyError::kernel(&what))?;
        }
        Ok(())
    }

    /// Delete a namespace if it is still the one observed, then its
    /// directory under /etc/netns if cnm created it and nothing else is in
    /// it (files of others stay, and so does the directory).
    pub(super) fn delete_namespace(&self, n: &NamespaceRes) -> R {
        lock(&self.sandboxes)?.remove(&n.netns);
        let gone = netns::delete(&n.netns, n.ino)
            .map_err(safe_err(format!("cannot delete namespace {}", n.netns)))?;
        if !gone {
            tracing::warn!(netns = %n.netns, "not deleted: it is no longer the namespace cnm created");
        }
        let mut files = lock(&self.files)?;
        let rec = files.entry(n.sandbox.clone()).or_default();
        if let (Some(id), Some(etc)) = (n.etc_dir, etc_dir()?) {
            sweep_temps(
                &etc,
                &n.netns,
                id,
                &naming::mark(&self.topology, MarkKind::Sandbox, &n.sandbox),
            );
            if etc.remove_dir(&n.netns, id).map_err(safe_err(format!(
                "cannot remove {}/{}",
                naming::ETC_NETNS_DIR,
                n.netns
            )))? {
                rec.dir = None;
            }
        }
        if rec.files.is_empty() {
            rec.dir = None;
        }
        lock(&self.dirty)?.insert(n.sandbox.clone());
        drop(files);
        self.store.forget_namespace(&n.sandbox)?;
        Ok(())
    }
}

/// Delete what a killed cnm left in `/etc/netns/<netns>` between creating
/// a temporary file and renaming it, if that directory is still the one cnm
/// created (`id`). Best effort: a failure here only leaves a stray file.
fn sweep_temps(etc: &Dir, netns: &str, id: FileId, mark: &str) {
    let Ok(Some(dir)) = etc.subdir(netns) else {
        return;
    };
    if dir.id().ok() != Some(id) {
        return;
    }
    match dir.remove_own_temps(mark) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            netns,
            removed = n,
            "removed temporary files an interrupted run left"
        ),
        Err(e) => {
            tracing::warn!(netns, error = %e, "cannot remove temporary files an interrupted run left")
        }
    }
}

fn etc_dir() -> Result<Option<Dir>, ApplyError> {
    Dir::open(Path::new(naming::ETC_NETNS_DIR))
        .map_err(safe_err(format!("cannot open {}", naming::ETC_NETNS_DIR)))
}

/// `/etc/netns/<netns>/<name>` → (netns, name), both checked: the path
/// comes from cnm's own desired state, but is a path all the same.
fn split(path: &str) -> Result<(&str, &str), ApplyError> {
    let bad = || ApplyError::Internal(format!("not a sandbox file path: {path}"));
    let rest = path
        .strip_prefix(naming::ETC_NETNS_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(bad)?;
    let (netns, name) = rest.split_once('/').ok_or_else(bad)?;
    let netns_ok =
        crate::naming::valid_identifier(netns, 2 * crate::store::MAX_OBJECT_NAME).is_ok();
    if !netns_ok || !FILE_NAMES.contains(&name) {
        return Err(bad());
    }
    Ok((netns, name))
}

/// Write a sandbox file: create `/etc/netns/<netns>` if needed (0755,
/// marked, recorded), then replace the file atomically (0644, marked) and
/// record its identity.
pub(super) fn write_file(ex: &Executor, f: &FileRes) -> R {
    let (netns, name) = split(&f.path)?;
    let err = || safe_err(format!("cannot write {}", f.path));
    let etc = Dir::create_all(Path::new(naming::ETC_NETNS_DIR), ETC_DIR_MODE).map_err(err())?;
    let mark = naming::mark(&ex.topology, MarkKind::Sandbox, &f.sandbox);
    let (dir, created) = etc.create_subdir(netns, ETC_DIR_MODE).map_err(err())?;
    let dir_id = if created {
        dir.set_mark(&mark);
        Some(dir.id().map_err(err())?)
    } else {
        let recorded = lock(&ex.files)?.get(&f.sandbox).and_then(|r| r.dir);
        if let Some(id) = recorded {
            sweep_temps(&etc, netns, id, &mark);
        }
        None
    };
    // Not synced: apply writes it again whenever it is not as planned.
    let id = dir
        .write(
            name,
            f.content.as_bytes(),
            ETC_FILE_MODE,
            Some(&mark),
            false,
        )
        .map_err(err())?;
    // The stamp that lets observe skip reading it (only when nothing
    // replaced it since the rename).
    let stamp = dir
        .stat(name)
        .ok()
        .flatten()
        .filter(|e| e.id == id)
        .map(|e| FileStamp {
            id,
            ctime: e.ctime,
            size: e.size,
            content: f.content.clone(),
        });
    let mut files = lock(&ex.files)?;
    let rec = files.entry(f.sandbox.clone()).or_default();
    if dir_id.is_some() {
        rec.dir = dir_id;
    }
    rec.files.insert(name.to_string(), id);
    match stamp {
        Some(s) => rec.written.insert(name.to_string(), s),
        None => rec.written.remove(name),
    };
    lock(&ex.dirty)?.insert(f.sandbox.clone());
    Ok(())
}

/// Delete a sandbox file if it is still the one cnm wrote.
pub(super) fn remove_file(ex: &Executor, f: &FileRes) -> R {
    let (netns, name) = split(&f.path)?;
    let err = || safe_err(format!("cannot remove {}", f.path));
    if let Some(dir) = etc_dir()?
        .map(|e| e.subdir(netns))
        .transpose()
        .map_err(err())?
        .flatten()
    {
        if !dir.remove_file(name, f.id).map_err(err())? {
            tracing::warn!(path = %f.path, "not deleted: it is no longer the file cnm wrote");
        }
    }
    let mut files = lock(&ex.files)?;
    if let Some(rec) = files.get_mut(&f.sandbox) {
        rec.files.remove(name);
        rec.written.remove(name);
    }
    lock(&ex.dirty)?.insert(f.sandbox.clone());
    Ok(())
}

/// Remove the empty mount point an interrupted namespace create left.
pub(super) fn remove_mountpoint(netns: &str, id: Option<FileId>) -> R {
    let Some(dir) = netns::dir().map_err(safe_err(format!("cannot open {}", netns::NETNS_DIR)))?
    else {
        return Ok(());
    };
    dir.remove_file(netns, id)
        .map(|_| ())
        .map_err(safe_err(format!(
            "cannot remove {}/{netns}",
            netns::NETNS_DIR
        )))
}
