//! The state store: every answer the provider gave, kept across runs.
//!
//! Layout (format `phone-enrich-state/4`), in the state directory: `LOCK` (`lock.rs`); per
//! provider host a snapshot file `answers@HEXHOST.GENERATION.snapshot` (`snapshot.rs`) holding
//! the host's answers and answer dictionary as of its writing, 16 bytes an answer `(number,
//! checked-at second, answer id)`; sled's database `db/`, where tree `log@HOST` holds the
//! batches answered since, one block each under consecutive keys (`log.rs`), tree `dict@HOST`
//! maps each answer id to a distinct answer, so a few hundred operator answers serve millions
//! of numbers, and tree `meta` holds the format; and `MANIFEST` (`manifest.rs`), which records
//! what the snapshot, the log and the dictionary should hold. The snapshot, then the log in key
//! order, a later entry replacing an earlier one, give the current answers.
//!
//! Contract: the store is the checkpoint and the cache. [`StateStore::commit`] appends a batch
//! and has it on disk, and recorded in MANIFEST, before returning: a number counts as answered
//! only once `commit` has returned. [`StateStore::load`] reads a host's answers whole into an
//! [`AnswerBook`], folding a grown log into a new snapshot (compaction), so reruns do not grow
//! the store without bound. Answers are keyed by provider host and number, never by login,
//! and timed to the second. Only terminal answers are stored (`Found`, `NotFound`,
//! `Rejected`); a failure never is. A state directory is held by one run at a time.
//!
//! A damaged store is never read as empty, nor as smaller than it is: [`StateStore::open`]
//! checks every part against MANIFEST (the snapshot's header and checksums, the dictionary,
//! the log's first and last recorded blocks) and [`StateStore::load`] every block and chunk it
//! reads, and any difference is [`StateError::Damaged`], naming the part. [`verify()`] reports on
//! every part; [`repair()`] rebuilds a sound store from every answer still readable. A store in
//! format 2 or 3 is migrated when opened; any other format is refused rather than misread.

mod book;
mod checksum;
mod error;
mod interrupted;
mod list_limit;
mod lock;
mod log;
mod manifest;
mod migrate;
mod repair;
mod snapshot;
mod stats;
mod table;
mod vacuum;
mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use book::{now_ms, AnswerBook, Known, StoredAnswer, Ttl};
pub use error::{Damage, Fault, Part, StateError};
pub use list_limit::ListLimit;
pub use repair::{repair, HostRepair, Repair};
pub use stats::{AgeBuckets, CacheStats, HostStats};
pub use table::NumberTable;
pub use verify::{verify, PartReport, Verification};

use book::Dictionary;
use lock::{open_sled, StoreLock};
use manifest::{Found, Manifest, ManifestFile};
use migrate::Format;

/// An open state store, held by this process until dropped.
pub struct StateStore {
    dir: PathBuf,
    db: sled::Db,
    /// What the store holds, as recorded; every commit and compaction writes its next version.
    manifest: Mutex<ManifestFile>,
    /// Each host's answer dictionary, loaded on first use.
    dictionaries: Mutex<HashMap<String, Dictionary>>,
    /// Held for the store's lifetime: the OS lock is what keeps a second run out.
    _lock: StoreLock,
}

impl StateStore {
    /// Opens (or creates) the store in `dir`, taking its lock; completes what an interrupted
    /// repair, rewrite, migration or commit left, and refuses a damaged store.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        let lock = StoreLock::acquire(dir)?;
        interrupted::complete(dir)?;
        let db = open_sled(&dir.join("db"))?;
        let manifest = match migrate::format_of(dir, &db)? {
            Format::Current => in_force(dir)?,
            Format::Three => migrate::from_3(dir, &db)?,
            Format::Two => migrate::from_2(dir, &db)?,
            Format::Unset => new_store(dir, &db)?,
            Format::Other(found) => {
                return Err(StateError::Incompatible {
                    dir: dir.to_path_buf(),
                    found,
                    expected: String::from_utf8_lossy(migrate::FORMAT).into_owned(),
                })
            }
        };
        let mut store = StateStore {
            dir: dir.to_path_buf(),
            db,
            manifest: Mutex::new(manifest),
            dictionaries: Mutex::default(),
            _lock: lock,
        };
        store.check_parts()?;
        store.remove_left_over_files()?;
        if vacuum::wanted(dir, &store.db)? {
            store.db = vacuum::rewrite(dir, store.db)?;
        }
        Ok(store)
    }

    /// The hosts the store holds answers for.
    pub fn hosts(&self) -> Vec<String> {
        let manifest = self.manifest.lock().unwrap();
        manifest.current().hosts.keys().cloned().collect()
    }

    /// Removes what an interrupted write left beside the parts in force: temporary files, and
    /// snapshot files of a host in MANIFEST other than the one it names (superseded, or written
    /// by a compaction cut short before its manifest).
    fn remove_left_over_files(&self) -> Result<(), StateError> {
        let listing = |e| StateError::io(&self.dir, "listing", e);
        let manifest = self.manifest.lock().unwrap();
        let hosts = &manifest.current().hosts;
        for (_, host, generation) in snapshot::files_in(&self.dir).map_err(listing)? {
            let in_force = hosts.get(&host).map(|h| h.snapshot.map(|s| s.generation));
            if in_force.is_some_and(|g| g.is_none() || g != generation) {
                self.remove_snapshot_file(&host, generation)?;
            }
        }
        for entry in std::fs::read_dir(&self.dir).map_err(listing)? {
            let path = entry.map_err(listing)?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let temporary =
                name.ends_with(".snapshot.tmp") || name == format!("{}.tmp", manifest::FILE);
            if temporary {
                std::fs::remove_file(&path).map_err(|e| StateError::io(&path, "removing", e))?;
            }
        }
        Ok(())
    }
}

/// The manifest of a format 4 database, which must be sound.
fn in_force(dir: &Path) -> Result<ManifestFile, StateError> {
    let damaged = |what: String| StateError::damaged(dir, Damage::new(Part::Manifest, None, what));
    match manifest::read(dir)? {
        Found::Sound { manifest, sequence } => ManifestFile::open(dir, manifest, sequence),
        Found::Missing => Err(damaged(
            "it is missing, and sled's database is in format 4".into(),
        )),
        Found::Damaged(why) => Err(damaged(why)),
    }
}

/// A database recording no format: a new store, unless anything says the store held answers.
fn new_store(dir: &Path, db: &sled::Db) -> Result<ManifestFile, StateError> {
    let damaged = |part, what: String| StateError::damaged(dir, Damage::new(part, None, what));
    let trees = db
        .tree_names()
        .into_iter()
        .filter(|t| t.as_ref() != b"__sled__default" && t.as_ref() != b"meta")
        .count();
    if trees > 0 {
        return Err(damaged(
            Part::Sled,
            format!("it holds {trees} trees but no format record"),
        ));
    }
    let snapshots = snapshot::files_in(dir).map_err(|e| StateError::io(dir, "listing", e))?;
    match manifest::read(dir)? {
        Found::Sound { manifest, .. } if manifest.records_answers() => {
            return Err(damaged(Part::Sled, reads_empty(&manifest)))
        }
        Found::Damaged(why) => return Err(damaged(Part::Manifest, why)),
        Found::Missing if !snapshots.is_empty() => {
            return Err(damaged(
                Part::Sled,
                format!(
                    "it reads empty and MANIFEST is missing, but {} snapshot files remain",
                    snapshots.len()
                ),
            ))
        }
        _ => {}
    }
    let manifest = ManifestFile::create(dir, Manifest::default())?;
    migrate::set_format(dir, db)?;
    Ok(manifest)
}

/// Says that sled reads empty where `manifest` records answers.
fn reads_empty(manifest: &Manifest) -> String {
    let (entries, blocks): (u64, u64) = manifest.hosts.values().fold((0, 0), |(e, b), h| {
        (e + h.entries(), b + h.log_next - h.covers_below())
    });
    format!("it reads empty, but MANIFEST records {entries} answers ({blocks} batches in the log)")
}

#[cfg(test)]
mod tests;
