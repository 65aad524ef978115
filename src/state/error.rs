//! The store's errors, in one style: a variant per thing a caller branches on (the directory is
//! in use, written by another version, damaged), and the file system's and sled's failures, each
//! naming the file or directory and what was being done, keeping the cause as its source.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Why the store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another run holds the state directory.
    #[error("state directory {} is in use by another run ({holder}); wait for it to finish or use another --state", dir.display())]
    Locked { dir: PathBuf, holder: String },
    /// Written by a version whose format this one does not read.
    #[error("state store {} was written by an incompatible version ({found}); this version reads {expected}. Move it away or point --state elsewhere", dir.display())]
    Incompatible {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    /// A file or directory of the store could not be read or written (the disk, permissions).
    #[error("state store: {doing} {}", path.display())]
    Io {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: io::Error,
    },
    /// sled failed for a reason other than damage (see [`StateError::Damaged`]).
    #[error("state store {}: {doing}", dir.display())]
    Sled {
        dir: PathBuf,
        doing: String,
        #[source]
        source: sled::Error,
    },
    /// A part of the store does not hold what it should: no answer is read from it until it is
    /// repaired, and none is bought again without the user saying so.
    #[error("state store {dir} is damaged: {damage}; no answer was read from it. `phone-enrich cache verify --state {dir}` reports on every part; `phone-enrich cache repair --state {dir}` rebuilds the store from every answer still readable, and the next run then asks only for those lost", dir = dir.display())]
    Damaged { dir: PathBuf, damage: Damage },
}

impl StateError {
    /// An I/O failure on `path` while `doing`.
    pub(super) fn io(path: &Path, doing: &'static str, source: io::Error) -> StateError {
        StateError::Io {
            path: path.to_path_buf(),
            doing,
            source,
        }
    }

    /// A failure of sled while `doing`: damage when sled found its own files corrupt.
    pub(super) fn sled(dir: &Path, doing: impl Into<String>, source: sled::Error) -> StateError {
        let doing = doing.into();
        let corrupt = match &source {
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => true,
            sled::Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ),
            _ => false,
        };
        if corrupt {
            let what = match &source {
                sled::Error::Corruption { at: Some(at), .. } => {
                    format!(
                        "{doing}: sled finds its data corrupt at offset {}",
                        at.lid()
                    )
                }
                sled::Error::Corruption { at: None, .. } => {
                    format!("{doing}: sled finds its data corrupt")
                }
                other => format!("{doing}: {other}"),
            };
            return StateError::damaged(dir, Damage::new(Part::Sled, None, what));
        }
        StateError::Sled {
            dir: dir.to_path_buf(),
            doing,
            source,
        }
    }

    pub(super) fn damaged(dir: &Path, damage: Damage) -> StateError {
        StateError::Damaged {
            dir: dir.to_path_buf(),
            damage,
        }
    }
}

/// What is damaged: a part of the store (of one provider host, for the per-host parts) and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub part: Part,
    pub host: Option<String>,
    /// What is wrong, in a sentence.
    pub what: String,
}

impl Damage {
    pub(super) fn new(part: Part, host: Option<&str>, what: impl Into<String>) -> Damage {
        Damage {
            part,
            host: host.map(str::to_string),
            what: what.into(),
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{} of {host}: {}", self.part, self.what),
            None => write!(f, "{}: {}", self.part, self.what),
        }
    }
}

/// The parts of a store, as `cache verify` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// `MANIFEST`: what the other parts should hold.
    Manifest,
    /// sled's database (`db/`), which holds the dictionaries and logs.
    Sled,
    /// A host's snapshot file.
    Snapshot,
    /// A host's answer dictionary (in sled).
    Dictionary,
    /// A host's log of batches answered since its snapshot (in sled).
    Log,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Manifest => "the manifest (MANIFEST)",
            Part::Sled => "sled's database (db/)",
            Part::Snapshot => "the snapshot",
            Part::Dictionary => "the answer dictionary",
            Part::Log => "the log",
        })
    }
}
