//! The files under `/etc/netns/<netns>/` cnm writes (hosts, resolv.conf):
//! which are cnm's, and which paths it must not write. A file is cnm's when
//! its inode is the one cnm recorded or it carries cnm's `trusted.cnm`
//! mark; files of namespaces recorded before version 1 are recognized by
//! the header cnm wrote then. Links are never followed, and the content of
//! a file that is not cnm's is never read.

use crate::files;
use crate::model::FileRes;
use crate::naming::{self, MarkKind};
use crate::safe::{Dir, FileId, Kind, SafeError};
use crate::store::FilesRecord;
use std::collections::BTreeMap;
use std::path::Path;

/// The names cnm writes in a sandbox's directory.
pub const FILE_NAMES: [&str; 2] = ["hosts", "resolv.conf"];

/// Largest hosts or resolv.conf cnm reads back.
const MAX_FILE: u64 = 16 << 20;

/// One sandbox whose files to look at.
pub struct Want<'a> {
    pub sandbox: &'a str,
    pub netns: &'a str,
    /// Owned through a record from before version 1.
    pub legacy: bool,
}

#[derive(Default)]
pub struct Seen {
    pub files: Vec<FileRes>,
    /// Path → why cnm must not write it.
    pub blocked: BTreeMap<String, String>,
    /// netns → identity of `/etc/netns/<netns>` when cnm created it.
    pub dirs: BTreeMap<String, FileId>,
}

pub fn observe(
    topology: &str,
    wants: &[Want<'_>],
    records: &BTreeMap<String, FilesRecord>,
) -> Result<Seen, SafeError> {
    let mut seen = Seen::default();
    let etc = match Dir::open(Path::new(naming::ETC_NETNS_DIR)) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(seen),
        Err(e) => {
            // /etc/netns itself is a link: every file below is off limits.
            for w in wants {
                block_all(&mut seen, w.netns, &e.to_string());
            }
            return Ok(seen);
        }
    };
    let none = FilesRecord::default();
    for w in wants {
        let rec = records.get(w.sandbox).unwrap_or(&none);
        look(&etc, topology, w, rec, &mut seen)?;
    }
    Ok(seen)
}

fn block_all(seen: &mut Seen, netns: &str, why: &str) {
    for name in FILE_NAMES {
        seen.blocked.insert(
            format!("{}/{netns}/{name}", naming::ETC_NETNS_DIR),
            why.to_string(),
        );
    }
}

fn look(
    etc: &Dir,
    topology: &str,
    w: &Want<'_>,
    rec: &FilesRecord,
    seen: &mut Seen,
) -> Result<(), SafeError> {
    let dir = match etc.subdir(w.netns) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(()),
        Err(e @ (SafeError::Symlink(_) | SafeError::WrongType { .. })) => {
            block_all(seen, w.netns, &e.to_string());
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mark = naming::mark(topology, MarkKind::Sandbox, w.sandbox);
    let dir_id = dir.id()?;
    if rec.dir == Some(dir_id) || dir.own_mark().as_deref() == Some(mark.as_str()) {
        seen.dirs.insert(w.netns.to_string(), dir_id);
    }
    for name in FILE_NAMES {
        look_at(&dir, topology, w, rec, &mark, name, seen)?;
    }
    Ok(())
}

/// One file of a sandbox directory: cnm's (recorded identity or mark,
/// or unchanged since written), else blocked, with the reason.
fn look_at(
    dir: &Dir,
    topology: &str,
    w: &Want<'_>,
    rec: &FilesRecord,
    mark: &str,
    name: &str,
    seen: &mut Seen,
) -> Result<(), SafeError> {
    let path = dir.join(name).display().to_string();
    let Some(entry) = dir.stat(name)? else {
        return Ok(());
    };
    let why = match entry.kind {
        Kind::Symlink => Some(SafeError::Symlink(path.clone()).to_string()),
        Kind::File => None,
        _ => Some(format!(
            "{path} is not a regular file; cnm will not replace it"
        )),
    };
    if let Some(why) = why {
        seen.blocked.insert(path, why);
        return Ok(());
    }
    let foreign = format!(
        "{path} exists and cnm did not write it; cnm will not overwrite it: remove it or rename the sandbox"
    );
    // Unchanged since cnm wrote it: its content is the recorded one.
    if let Some(stamp) = rec.written.get(name).filter(|st| {
        st.id == entry.id
            && st.ctime == entry.ctime
            && st.size == entry.size
            && rec.files.get(name) == Some(&entry.id)
    }) {
        seen.files.push(FileRes {
            path,
            sandbox: w.sandbox.to_string(),
            content: stamp.content.clone(),
            id: Some(entry.id),
        });
        return Ok(());
    }
    let by_id =
        rec.files.get(name) == Some(&entry.id) || dir.mark_of(name).as_deref() == Some(mark);
    if !by_id && !w.legacy {
        seen.blocked.insert(path, foreign);
        return Ok(());
    }
    let read = match dir.read_string(name, MAX_FILE) {
        Ok(r) => r,
        Err(SafeError::WrongType { .. } | SafeError::TooLarge { .. }) => None,
        Err(e) => return Err(e),
    };
    let Some((content, id)) = read.filter(|(_, id)| *id == entry.id) else {
        seen.blocked.insert(path, foreign);
        return Ok(());
    };
    if by_id || content.starts_with(&files::header(topology, w.sandbox)) {
        seen.files.push(FileRes {
            path,
            sandbox: w.sandbox.to_string(),
            content,
            id: Some(id),
        });
    } else {
        seen.blocked.insert(path, foreign);
    }
    Ok(())
}
