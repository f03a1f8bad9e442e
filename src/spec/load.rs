//! Reading a topology file: regular files or standard input only, bounded
//! in size, UTF-8 checked with a located message.

use super::parse::parse_with;
use super::{Diagnostic, Loc, SpecError, Topology, MAX_FILE_BYTES};
use crate::drivers::Registry;
use std::path::Path;

/// Why a topology file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a regular file (a directory, a device, a FIFO, ...).
    #[error("{path} is not a regular file; give a topology file, or - for standard input")]
    NotRegular {
        /// The file as given.
        path: String,
    },
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("{path} is larger than 16 MiB, more than any topology needs; cnm does not read it")]
    TooLarge {
        /// The file as given.
        path: String,
    },
    /// Read, but not a valid topology.
    #[error("{0}")]
    Invalid(SpecError),
}

/// Read and validate a topology file (`-`: standard input). Only regular
/// files (through links, as any input) or standard input, at most
/// [`MAX_FILE_BYTES`]; nothing else is read at all.
pub fn load(path: &Path) -> Result<Topology, LoadError> {
    load_with(Registry::builtin(), path)
}

/// [`load`], with the drivers of `reg`.
pub fn load_with(reg: &Registry, path: &Path) -> Result<Topology, LoadError> {
    let shown = path.display().to_string();
    let bytes = read_bounded(path)?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let bytes = e.as_bytes();
            let at = e.utf8_error().valid_up_to();
            return Err(LoadError::Invalid(SpecError {
                file: shown,
                diagnostics: vec![Diagnostic::new(
                    crate::errors::ErrorKind::Syntax,
                    loc_of_offset(bytes, at),
                    format!(
                        "the file is not UTF-8 text (byte 0x{:02x}); save it as UTF-8",
                        bytes[at]
                    ),
                )],
            }));
        }
    };
    let mut t = parse_with(reg, &shown, &text).map_err(LoadError::Invalid)?;
    if path.as_os_str() != "-" {
        t.source = std::fs::canonicalize(path)
            .ok()
            .map(|p| p.display().to_string());
    }
    Ok(t)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display().to_string();
    let read_err = |source| LoadError::Read {
        path: shown.clone(),
        source,
    };
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
    } else {
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(read_err)?;
        let meta = f.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(LoadError::NotRegular { path: shown });
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(LoadError::TooLarge { path: shown });
        }
        f.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
    }
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { path: shown });
    }
    Ok(buf)
}

/// Line and column (1-based, in characters) of byte `offset`.
fn loc_of_offset(bytes: &[u8], offset: usize) -> Loc {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() as u64 + 1;
    Loc { line, col }
}
