//! The store's errors, in one style: a variant per thing a caller branches on (the directory is
//! in use, written by another version, damaged, the environment in the way), and the file
//! system's and sled's failures, each naming the file or directory and what was being done,
//! keeping the cause as its source.
//!
//! Contract: an I/O failure that is the environment's ([`Fault`]: no space, a quota, a
//! read-only file system, a permission, too many open files), wherever it comes from (our own
//! files, sled's, a snapshot's), is [`StateError::Environment`], named as what it is with the
//! path and what to do, and never [`StateError::Damaged`]: nothing is wrong with the store, and
//! the advice must not be the one that moves the user's data (`cache repair`).

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
    /// The environment keeps the store from being read or written (see [`Fault`]); the store
    /// itself is not damaged.
    #[error("state store {}: {doing}: {fault}; {}", path.display(), fault.advice(path))]
    Environment {
        path: PathBuf,
        doing: String,
        fault: Fault,
        #[source]
        source: io::Error,
    },
    /// A file or directory of the store could not be read or written, for a reason other than
    /// the environment's (see [`StateError::Environment`]).
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
    /// Whether the environment, not the store, is at fault (see [`Fault`]).
    pub fn is_environment(&self) -> bool {
        matches!(self, StateError::Environment { .. })
    }

    /// An I/O failure on `path` while `doing`: the environment's, if it is one of [`Fault`].
    pub(super) fn io(path: &Path, doing: &'static str, source: io::Error) -> StateError {
        if let Some(fault) = Fault::of(&source) {
            return StateError::Environment {
                path: path.to_path_buf(),
                doing: doing.to_string(),
                fault,
                source,
            };
        }
        StateError::Io {
            path: path.to_path_buf(),
            doing,
            source,
        }
    }

    /// A failure of sled while `doing`: damage when sled found its own files corrupt.
    pub(super) fn sled(dir: &Path, doing: impl Into<String>, source: sled::Error) -> StateError {
        let doing = doing.into();
        if let sled::Error::Io(e) = &source {
            if let Some(fault) = Fault::of(e) {
                return StateError::Environment {
                    path: dir.to_path_buf(),
                    doing,
                    fault,
                    source: io::Error::new(e.kind(), e.to_string()),
                };
            }
        }
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

/// An I/O failure that is the environment's, not the store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// ENOSPC: the file system is full.
    NoSpace,
    /// EDQUOT: the user's disk quota is spent.
    Quota,
    /// EROFS: the file system is mounted read-only.
    ReadOnly,
    /// EACCES, EPERM: this user may not read or write there.
    Permission,
    /// EMFILE, ENFILE: the process (or the system) has too many files open.
    TooManyFiles,
}

/// `EMFILE` and `ENFILE`, the same numbers on every Unix.
const TOO_MANY_FILES: [i32; 2] = [24, 23];

impl Fault {
    /// The fault `e` is, if the environment's.
    pub fn of(e: &io::Error) -> Option<Fault> {
        match e.kind() {
            io::ErrorKind::StorageFull => Some(Fault::NoSpace),
            io::ErrorKind::QuotaExceeded => Some(Fault::Quota),
            io::ErrorKind::ReadOnlyFilesystem => Some(Fault::ReadOnly),
            io::ErrorKind::PermissionDenied => Some(Fault::Permission),
            _ if e
                .raw_os_error()
                .is_some_and(|n| TOO_MANY_FILES.contains(&n)) =>
            {
                Some(Fault::TooManyFiles)
            }
            _ => None,
        }
    }

    /// The first environment fault in `e`'s chain of causes, if any.
    pub fn in_chain(e: &(dyn std::error::Error + 'static)) -> Option<Fault> {
        let mut next = Some(e);
        while let Some(e) = next {
            if let Some(fault) = e.downcast_ref::<io::Error>().and_then(Fault::of) {
                return Some(fault);
            }
            next = e.source();
        }
        None
    }

    /// What to do about it, for `path`.
    pub fn advice(self, path: &Path) -> String {
        let path = path.display();
        match self {
            Fault::NoSpace => format!("free space on the file system holding {path}, then run again; the store is not damaged (do not run `cache repair`)"),
            Fault::Quota => format!("free space within your disk quota on the file system holding {path}, or have it raised, then run again; the store is not damaged"),
            Fault::ReadOnly => format!("{path} is on a read-only file system: remount it read-write or point the state directory elsewhere; the store is not damaged"),
            Fault::Permission => format!("give this user read and write access to {path}, or point the state directory elsewhere; the store is not damaged"),
            Fault::TooManyFiles => "raise the limit of open files (`ulimit -n`) and run again; the store is not damaged".to_string(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::NoSpace => "no space left on the device",
            Fault::Quota => "disk quota exceeded",
            Fault::ReadOnly => "read-only file system",
            Fault::Permission => "permission denied",
            Fault::TooManyFiles => "too many open files",
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environments_faults_are_told_apart_from_damage() {
        // (errno, the fault it is)
        let table = [
            (28, Some(Fault::NoSpace)),
            (122, Some(Fault::Quota)),
            (30, Some(Fault::ReadOnly)),
            (13, Some(Fault::Permission)),
            (1, Some(Fault::Permission)),
            (24, Some(Fault::TooManyFiles)),
            (23, Some(Fault::TooManyFiles)),
            (5, None),
            (2, None),
        ];
        let dir = Path::new("/var/lib/enrich/state");
        for (errno, fault) in table {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(Fault::of(&e), fault, "errno {errno}");
            let from_io = StateError::io(dir, "writing", io::Error::from_raw_os_error(errno));
            let from_sled = StateError::sled(dir, "flushing", sled::Error::Io(e));
            for error in [from_io, from_sled] {
                assert_eq!(error.is_environment(), fault.is_some(), "{error}");
                assert!(!matches!(error, StateError::Damaged { .. }), "{error}");
                if let Some(fault) = fault {
                    let text = error.to_string();
                    assert!(text.contains(&fault.to_string()), "{text}");
                    assert!(text.contains("/var/lib/enrich/state"), "{text}");
                    assert!(text.contains("not damaged"), "{text}");
                }
            }
        }
        let full = StateError::io(dir, "writing", io::Error::from_raw_os_error(28));
        assert!(full
            .to_string()
            .contains("free space on the file system holding /var/lib/enrich/state"));
    }
}
