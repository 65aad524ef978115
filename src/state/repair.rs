//! Rebuilding a damaged store from every answer still readable (`cache repair`).
//!
//! Contract: [`repair`] leaves a sound store alone, and refuses to move anything when what
//! stops the store from being read is the environment (a full disk, a read-only file system,
//! a permission, too many open files: [`StateError::Environment`]), not damage. Otherwise it
//! reads every answer any part still yields (every chunk of every snapshot file whose checksum
//! matches, every block sled still gives, the answers of the snapshots' and sled's
//! dictionaries), keeps for each number its latest answer, and writes a new store of those answers in `repair.tmp/new` (a snapshot
//! per host, a fresh sled database, MANIFEST). Renaming `repair.tmp` to `repair.done` commits
//! it: `interrupted::finish_repair` then moves the old parts into `repair.done/old` and the new
//! ones into place, and renames `repair.done` to `damaged-TIME`, where the old parts stay for
//! the user to look at or remove. Interrupted before the commit, the old store is in force (and
//! `repair.tmp` is removed on the next open); after it, the next open completes the move.
//! Nothing is asked of the provider: answers that could not be read are asked again by the next
//! run.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::book::Dictionary;
use super::interrupted::{self, remove_dir, sync_dir, DONE, TEMP};
use super::lock::{open_sled, StoreLock};
use super::log::{
    block_entries, decode_key, dict_tree_name, entry, log_tree_name, write_snapshot_file,
    ENTRY_BYTES,
};
use super::manifest::{self, Found, HostRecord, Manifest, ManifestFile};
use super::migrate::{self, set_format, Format};
use super::snapshot::SnapshotError;
use super::verify::{hosts, verify_locked};
use super::{snapshot, AnswerBook, NumberTable, StateError};

/// What `cache repair` did.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    pub dir: PathBuf,
    /// Whether the store was damaged and rebuilt (`false`: it was sound and is untouched).
    pub repaired: bool,
    /// Answers kept and lost, by provider host.
    pub hosts: BTreeMap<String, HostRepair>,
    /// Where the damaged parts were moved.
    pub moved_to: Option<PathBuf>,
}

/// One host's answers after a repair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostRepair {
    /// Numbers with an answer in the rebuilt store.
    pub kept: u64,
    /// Answers MANIFEST recorded that could not be read, or whose answer text was lost;
    /// `None` when MANIFEST itself was unreadable, so what was there is unknown.
    pub lost: Option<u64>,
}

impl Repair {
    /// Answers lost over every host, if known for all.
    pub fn lost(&self) -> Option<u64> {
        self.hosts.values().map(|h| h.lost).sum()
    }

    /// Answers kept over every host.
    pub fn kept(&self) -> u64 {
        self.hosts.values().map(|h| h.kept).sum()
    }
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = self.dir.display();
        if !self.repaired {
            return write!(f, "state store {dir}: sound; nothing to repair");
        }
        let lost = match self.lost() {
            Some(n) => n.to_string(),
            None => "an unknown number of".to_string(),
        };
        writeln!(
            f,
            "state store {dir}: repaired; kept {} answers, lost {lost}",
            self.kept()
        )?;
        for (host, h) in &self.hosts {
            let lost = h
                .lost
                .map_or("unknown (MANIFEST was unreadable)".to_string(), |n| {
                    n.to_string()
                });
            writeln!(f, "  {host}: kept {}, lost {lost}", h.kept)?;
        }
        if let Some(moved) = &self.moved_to {
            writeln!(
                f,
                "the damaged parts are in {}; remove it once you no longer need it",
                moved.display()
            )?;
        }
        write!(
            f,
            "the next run asks the provider only for the answers lost"
        )
    }
}

/// Rebuilds the store in `dir` from every answer still readable, if it is damaged.
pub fn repair(dir: &Path) -> Result<Repair, StateError> {
    std::fs::metadata(dir).map_err(|e| StateError::io(dir, "opening", e))?;
    let _lock = StoreLock::acquire(dir)?;
    let mut report = Repair {
        dir: dir.to_path_buf(),
        repaired: false,
        hosts: BTreeMap::new(),
        moved_to: None,
    };
    if verify_locked(dir)?.sound {
        return Ok(report);
    }
    let temp = dir.join(TEMP);
    let new = temp.join("new");
    remove_dir(&temp)?;
    std::fs::create_dir_all(&new).map_err(|e| StateError::io(&new, "creating", e))?;
    let recorded = match manifest::read(dir)? {
        Found::Sound { manifest, .. } => Some(manifest),
        _ => None,
    };
    let db = open_sled(&dir.join("db")).ok();
    if let Some(db) = &db {
        refuse_another_format(dir, db)?;
    }
    let files = snapshot::files_in(dir).map_err(|e| StateError::io(dir, "listing", e))?;
    let mut books = Vec::new();
    for host in hosts(db.as_ref(), recorded.as_ref(), &files) {
        let record = recorded
            .as_ref()
            .map(|m| m.hosts.get(&host).cloned().unwrap_or_default());
        let (book, lost) = salvage(&files, db.as_ref(), &host, record.as_ref())?;
        let kept = book.len() as u64;
        tracing::info!(host, kept, lost, "answers salvaged");
        report.hosts.insert(host.clone(), HostRepair { kept, lost });
        books.push((host, book));
    }
    drop(db);
    write_store(&new, &books)?;
    sync_dir(&temp)?;
    let done = dir.join(DONE);
    std::fs::rename(&temp, &done)
        .map_err(|e| StateError::io(&temp, "renaming to repair.done", e))?;
    sync_dir(dir)?;
    report.repaired = true;
    report.moved_to = interrupted::finish_repair(dir)?;
    Ok(report)
}

/// Answers read so far: number → (answer id in the old store, checked-at second), the latest
/// kept; and the old ids' answers, from whichever dictionary still gives them.
#[derive(Default)]
struct Salvage {
    numbers: NumberTable,
    answers: HashMap<u32, Vec<u8>>,
    /// Entries read from the parts MANIFEST has in force: the snapshot, the recorded blocks.
    read_in_force: u64,
}

impl Salvage {
    fn add(&mut self, entries: &[u8]) {
        for i in 0..entries.len() / ENTRY_BYTES {
            let (number, at_s, id) = entry(entries, i);
            match self.numbers.get(number) {
                Some((_, earlier)) if earlier > at_s => {}
                _ => self.numbers.insert(number, id, at_s),
            }
        }
    }
}

/// A store written by a version whose format this one does not know is not "repaired".
fn refuse_another_format(dir: &Path, db: &sled::Db) -> Result<(), StateError> {
    match migrate::format_of(dir, db)? {
        Format::Other(found) => Err(StateError::Incompatible {
            dir: dir.to_path_buf(),
            found,
            expected: String::from_utf8_lossy(migrate::FORMAT).into_owned(),
        }),
        _ => Ok(()),
    }
}

/// Every answer of `host` still readable from the snapshot `files` and `db`; also how many of
/// those `record` recorded were lost (`None` without a record).
fn salvage(
    files: &[(PathBuf, String, Option<u64>)],
    db: Option<&sled::Db>,
    host: &str,
    record: Option<&HostRecord>,
) -> Result<(AnswerBook, Option<u64>), StateError> {
    let mut found = Salvage::default();
    let in_force = record.and_then(|r| r.snapshot).map(|s| s.generation);
    // Oldest first, so that of two answers checked the same second the later written wins.
    for (path, _, generation) in files.iter().filter(|f| f.1 == host) {
        let mut entries = 0;
        let salvaged = snapshot::salvage(path, host, |chunk| {
            entries += (chunk.len() / ENTRY_BYTES) as u64;
            found.add(chunk);
        });
        match salvaged {
            Ok(s) => {
                for (id, encoded) in s.dictionary.unwrap_or_default().into_iter().enumerate() {
                    found.answers.entry(id as u32).or_insert(encoded);
                }
                if generation.is_some() && *generation == in_force {
                    found.read_in_force += entries;
                }
            }
            // Nothing in it can be trusted; the disk failing is another matter.
            Err(SnapshotError::Invalid(_)) => {}
            Err(SnapshotError::Io(e)) => return Err(StateError::io(path, "reading", e)),
        }
    }
    if let Some(db) = db {
        salvage_sled(db, host, record, &mut found);
    }
    let (book, unknown) = rebuild(found.numbers, &found.answers);
    let lost = record.map(|r| r.entries().saturating_sub(found.read_in_force) + unknown);
    Ok((book, lost))
}

/// Adds what sled still gives of `host`'s dictionary and log, stopping at the first error.
fn salvage_sled(db: &sled::Db, host: &str, record: Option<&HostRecord>, found: &mut Salvage) {
    if let Ok(tree) = db.open_tree(dict_tree_name(host)) {
        for (key, encoded) in tree.iter().map_while(Result::ok) {
            if let Ok(id) = <[u8; 4]>::try_from(key.as_ref()) {
                found
                    .answers
                    .entry(u32::from_be_bytes(id))
                    .or_insert_with(|| encoded.to_vec());
            }
        }
    }
    let recorded = record.map_or(0..0, |r| r.covers_below()..r.log_next);
    if let Ok(tree) = db.open_tree(log_tree_name(host)) {
        for (key, block) in tree.iter().map_while(Result::ok) {
            let (Some(key), Some(entries)) = (decode_key(&key), block_entries(&block)) else {
                continue;
            };
            found.add(entries);
            if recorded.contains(&key) {
                found.read_in_force += (entries.len() / ENTRY_BYTES) as u64;
            }
        }
    }
}

/// The answers found as a book with a fresh dictionary; also how many numbers were dropped
/// because no dictionary still gives their answer.
fn rebuild(numbers: NumberTable, answers: &HashMap<u32, Vec<u8>>) -> (AnswerBook, u64) {
    let mut book = AnswerBook::new(
        Dictionary::default(),
        NumberTable::with_capacity(numbers.len()),
    );
    let mut new_ids = HashMap::new();
    let mut unknown = 0;
    for (number, old_id, at_s) in numbers.iter() {
        let new_id = *new_ids.entry(old_id).or_insert_with(|| {
            answers
                .get(&old_id)
                .and_then(|encoded| book.dictionary.intern_encoded(encoded).ok())
        });
        match new_id {
            Some(id) => book.numbers.insert(number, id, at_s),
            None => unknown += 1,
        }
    }
    (book, unknown)
}

/// Writes a store holding `books` into the empty directory `new`: a snapshot per host, sled's
/// database with the dictionaries, MANIFEST last.
fn write_store(new: &Path, books: &[(String, AnswerBook)]) -> Result<(), StateError> {
    let mut manifest = Manifest::default();
    let db = open_sled(&new.join("db"))?;
    for (host, book) in books.iter().filter(|(_, b)| !b.is_empty()) {
        let writing =
            |e| StateError::sled(new, format!("writing the answer dictionary of {host}"), e);
        let tree = db.open_tree(dict_tree_name(host)).map_err(writing)?;
        for (id, encoded) in book.dictionary.encodings().into_iter().enumerate() {
            tree.insert((id as u32).to_be_bytes(), encoded)
                .map_err(writing)?;
        }
        db.open_tree(log_tree_name(host)).map_err(writing)?;
        let record = HostRecord {
            snapshot: Some(write_snapshot_file(new, host, 1, 0, book)?),
            log_next: 0,
            log_entries: 0,
            answers: book.answer_ids() as u32,
        };
        manifest.hosts.insert(host.clone(), record);
    }
    set_format(new, &db)?;
    drop(db);
    ManifestFile::create(new, manifest)?;
    Ok(())
}
