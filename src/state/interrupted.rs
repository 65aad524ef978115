//! Completing what an interrupted operation left in a state directory: a repair committed but
//! not moved into place, a repair not committed, a rewrite of sled's database.
//!
//! Contract: [`complete`] runs before anything reads a store (every open, `cache verify`,
//! `cache repair`), so each of them sees one whole store. It sits below the modules that start
//! those operations (`repair.rs`, `vacuum.rs`) and those that read the store (`mod.rs`,
//! `verify.rs`), so none of them imports another to finish its work. A repair is committed by
//! renaming `repair.tmp` to `repair.done`; [`finish_repair`] then moves the old parts into
//! `repair.done/old` and the new ones from `repair.done/new` into place, and renames
//! `repair.done` to `damaged-TIME`, where the old parts stay for the user.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::lock::LOCK_FILE;
use super::{vacuum, StateError};

/// Where a repair builds the new store, until it commits.
pub(super) const TEMP: &str = "repair.tmp";
/// A committed repair, not yet moved into place.
pub(super) const DONE: &str = "repair.done";
/// The prefix of the directories holding the parts a repair replaced.
const MOVED: &str = "damaged-";

/// Completes whatever an interruption left in `dir` (see the module's contract); returns where
/// a repair it completed moved the old parts.
pub(super) fn complete(dir: &Path) -> Result<Option<PathBuf>, StateError> {
    let moved = finish_repair(dir)?;
    vacuum::finish(dir)?;
    Ok(moved)
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StateError::io(dir, "syncing", e))
}

pub(super) fn remove_dir(dir: &Path) -> Result<(), StateError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StateError::io(dir, "removing", e))
        }
        _ => Ok(()),
    }
}

/// Moves every entry of `from` for which `take` holds into `to`.
fn move_entries(from: &Path, to: &Path, take: impl Fn(&str) -> bool) -> Result<(), StateError> {
    let listing = std::fs::read_dir(from).map_err(|e| StateError::io(from, "listing", e))?;
    for entry in listing {
        let entry = entry.map_err(|e| StateError::io(from, "listing", e))?;
        let name = entry.file_name();
        if take(&name.to_string_lossy()) {
            std::fs::rename(entry.path(), to.join(&name))
                .map_err(|e| StateError::io(&entry.path(), "moving", e))?;
        }
    }
    sync_dir(to)?;
    sync_dir(from)
}

/// Completes a committed repair (see the module's contract) and returns where the old parts
/// went; removes an uncommitted one.
pub(super) fn finish_repair(dir: &Path) -> Result<Option<PathBuf>, StateError> {
    remove_dir(&dir.join(TEMP))?;
    let done = dir.join(DONE);
    if !done.exists() {
        return Ok(None);
    }
    let (new, old, partial) = (done.join("new"), done.join("old"), done.join("old.partial"));
    if !old.exists() {
        std::fs::create_dir_all(&partial).map_err(|e| StateError::io(&partial, "creating", e))?;
        move_entries(dir, &partial, |name| {
            name != LOCK_FILE && name != DONE && !name.starts_with(MOVED)
        })?;
        std::fs::rename(&partial, &old).map_err(|e| StateError::io(&partial, "renaming", e))?;
        sync_dir(&done)?;
    }
    if new.exists() {
        move_entries(&new, dir, |_| true)?;
        std::fs::remove_dir(&new).map_err(|e| StateError::io(&new, "removing", e))?;
    }
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "-");
    let mut moved = dir.join(format!("{MOVED}{stamp}"));
    for n in 2.. {
        if !moved.exists() {
            break;
        }
        moved = dir.join(format!("{MOVED}{stamp}-{n}"));
    }
    std::fs::rename(&done, &moved).map_err(|e| StateError::io(&done, "renaming", e))?;
    sync_dir(dir)?;
    Ok(Some(moved))
}
