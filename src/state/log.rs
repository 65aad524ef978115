//! A host's answers on disk as a snapshot and a log: committing a batch, reading them back,
//! folding the log into a new snapshot.
//!
//! Contract: [`StateStore::commit`] appends a batch as one block of 16-byte entries `(number,
//! checked-at second, answer id)` under the host's next log key, flushes sled, then records the
//! block in MANIFEST: a number counts as answered only once `commit` has returned.
//! [`StateStore::load`] reads the snapshot, then the blocks from the snapshot's key up to the
//! manifest's end, a later entry replacing an earlier one, and refuses as damage any block,
//! chunk or dictionary entry the manifest records and the disk does not hold. Compaction writes
//! a snapshot of a new generation covering every block, records it in MANIFEST, then drops
//! the log: interrupted anywhere, the store reads the same answers.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::book::{encode, to_second, Dictionary};
use super::manifest::{HostRecord, SnapshotRecord};
use super::snapshot::{self, Snapshot, SnapshotError};
use super::vacuum::VACUUM_KEY;
use super::{AnswerBook, Damage, NumberTable, Part, StateError, StateStore, StoredAnswer, Ttl};
use crate::normalize::E164;

/// A block's first byte: the layout of the entries that follow.
const BLOCK_TAG: u8 = 1;
pub(super) const ENTRY_BYTES: usize = 16;
/// The log is folded into a new snapshot once it holds more entries than this and more than a
/// quarter of the answers: a log small beside the snapshot is not worth rewriting it for.
const COMPACT_SLACK: u64 = 100_000;

/// The name of `host`'s log tree in sled; the store knows its hosts by these.
pub(super) fn log_tree_name(host: &str) -> String {
    format!("log@{host}")
}

/// The name of `host`'s dictionary tree in sled.
pub(super) fn dict_tree_name(host: &str) -> String {
    format!("dict@{host}")
}

/// `host`'s log tree in `db`.
pub(super) fn log_tree(dir: &Path, db: &sled::Db, host: &str) -> Result<sled::Tree, StateError> {
    db.open_tree(log_tree_name(host))
        .map_err(|e| StateError::sled(dir, format!("opening the log of {host}"), e))
}

/// `host`'s answer dictionary as its tree in `db` holds it.
pub(super) fn load_dictionary(
    dir: &Path,
    db: &sled::Db,
    host: &str,
) -> Result<Dictionary, StateError> {
    let tree = db.open_tree(dict_tree_name(host)).map_err(|e| {
        StateError::sled(dir, format!("opening the answer dictionary of {host}"), e)
    })?;
    Dictionary::from_tree(dir, host, &tree)
}

/// The entries of a block, if it is one.
pub(super) fn block_entries(block: &[u8]) -> Option<&[u8]> {
    match block.split_first() {
        Some((&BLOCK_TAG, entries)) if entries.len() % ENTRY_BYTES == 0 => Some(entries),
        _ => None,
    }
}

/// A log key as sled holds it (big-endian, so keys sort as numbers).
pub(super) fn decode_key(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

/// The entry at `i` of a run of 16-byte entries: `(number, checked-at second, answer id)`.
#[inline]
pub(super) fn entry(entries: &[u8], i: usize) -> (u64, u32, u32) {
    let e = &entries[i * ENTRY_BYTES..(i + 1) * ENTRY_BYTES];
    (
        u64::from_le_bytes(e[0..8].try_into().expect("8 bytes")),
        u32::from_le_bytes(e[8..12].try_into().expect("4 bytes")),
        u32::from_le_bytes(e[12..16].try_into().expect("4 bytes")),
    )
}

fn push_entry(block: &mut Vec<u8>, number: u64, at_s: u32, id: u32) {
    block.extend_from_slice(&number.to_le_bytes());
    block.extend_from_slice(&at_s.to_le_bytes());
    block.extend_from_slice(&id.to_le_bytes());
}

/// Inserts 16-byte entries into `numbers`, each one's slot fetched a few entries ahead so the
/// memory waits overlap; an entry naming an answer id not below `answers` stops it.
fn insert_entries(numbers: &mut NumberTable, entries: &[u8], answers: usize) -> Result<(), String> {
    const AHEAD: usize = 16;
    let count = entries.len() / ENTRY_BYTES;
    for i in 0..count {
        if i + AHEAD < count {
            numbers.prefetch(entry(entries, i + AHEAD).0);
        }
        let (number, at_s, id) = entry(entries, i);
        if id as usize >= answers {
            return Err(missing_answer(id, answers));
        }
        numbers.insert(number, id, at_s);
    }
    Ok(())
}

/// Refuses entries naming an answer id not below `answers`.
pub(super) fn check_ids(entries: &[u8], answers: usize) -> Result<(), String> {
    match (0..entries.len() / ENTRY_BYTES).find(|&i| entry(entries, i).2 as usize >= answers) {
        Some(i) => Err(missing_answer(entry(entries, i).2, answers)),
        None => Ok(()),
    }
}

fn missing_answer(id: u32, answers: usize) -> String {
    format!("an entry names answer {id}, beyond the dictionary's {answers}")
}

/// What a log holds in a range of keys.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct LogSeen {
    pub(super) blocks: u64,
    pub(super) entries: u64,
    /// The key after the last block read.
    pub(super) next: u64,
}

/// Calls `each` with the entries of every block of `tree` in `keys`, in key order. With
/// `record`, the blocks must be those it records: one under every key of `keys`, holding its
/// entry count between them.
pub(super) fn read_log(
    dir: &Path,
    host: &str,
    tree: &sled::Tree,
    keys: Range<u64>,
    record: Option<&HostRecord>,
    mut each: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<LogSeen, StateError> {
    let damaged = |what: String| StateError::damaged(dir, Damage::new(Part::Log, Some(host), what));
    let mut seen = LogSeen {
        next: keys.start,
        ..Default::default()
    };
    // Block by block: sled's values are not held, so neither are the pages behind them.
    for item in tree.range(keys.start.to_be_bytes()..keys.end.to_be_bytes()) {
        let (key, block) =
            item.map_err(|e| StateError::sled(dir, format!("reading the log of {host}"), e))?;
        let key = decode_key(&key)
            .ok_or_else(|| damaged(format!("a key of {} bytes is not a log key", key.len())))?;
        if record.is_some() && key != seen.next {
            return Err(damaged(missing_blocks(seen.next, key)));
        }
        let entries =
            block_entries(&block).ok_or_else(|| damaged(format!("block {key} is corrupt")))?;
        each(entries).map_err(|why| damaged(format!("block {key}: {why}")))?;
        seen.blocks += 1;
        seen.entries += (entries.len() / ENTRY_BYTES) as u64;
        seen.next = key + 1;
    }
    if let Some(record) = record {
        if seen.next != keys.end {
            return Err(damaged(missing_blocks(seen.next, keys.end)));
        }
        if seen.entries != record.log_entries {
            return Err(damaged(format!(
                "its blocks hold {} entries where MANIFEST records {}",
                seen.entries, record.log_entries
            )));
        }
    }
    Ok(seen)
}

/// Calls `each` with the entries of `host`'s blocks from key `covers_below`: those `record`
/// records, checked as [`read_log`] checks them, or without a record every block there is.
pub(super) fn read_host_log(
    dir: &Path,
    db: &sled::Db,
    host: &str,
    covers_below: u64,
    record: Option<&HostRecord>,
    each: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<LogSeen, StateError> {
    let tree = log_tree(dir, db, host)?;
    let end = record.map_or(u64::MAX, |r| r.log_next);
    read_log(dir, host, &tree, covers_below..end, record, each)
}

fn missing_blocks(from: u64, to: u64) -> String {
    format!(
        "blocks {from} to {} that MANIFEST records are missing ({} batches of answers)",
        to - 1,
        to - from
    )
}

/// Opens `host`'s snapshot at `path`, which must be the one `record` names when given.
pub(super) fn open_snapshot(
    dir: &Path,
    host: &str,
    path: &Path,
    record: Option<&SnapshotRecord>,
) -> Result<Option<Snapshot>, StateError> {
    let damaged =
        |what: String| StateError::damaged(dir, Damage::new(Part::Snapshot, Some(host), what));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let snapshot = Snapshot::open(path, host).map_err(|e| snapshot_error(dir, host, path, e))?;
    match (snapshot, record) {
        (None, Some(_)) => Err(damaged(format!("{name}, which MANIFEST names, is missing"))),
        (Some(s), Some(r)) if (s.covers_below, s.entries, s.checksum) != (r.covers_below, r.entries, r.checksum) => {
            Err(damaged(format!(
                "{name} holds {} entries below log key {} (checksum {:016x}) where MANIFEST records {} below {} ({:016x})",
                s.entries, s.covers_below, s.checksum, r.entries, r.covers_below, r.checksum
            )))
        }
        (snapshot, _) => Ok(snapshot),
    }
}

/// A snapshot's failure: damage when its content is wrong, an I/O error otherwise.
pub(super) fn snapshot_error(dir: &Path, host: &str, path: &Path, e: SnapshotError) -> StateError {
    match e {
        SnapshotError::Io(e) => StateError::io(path, "reading", e),
        SnapshotError::Invalid(why) => {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            StateError::damaged(
                dir,
                Damage::new(Part::Snapshot, Some(host), format!("{name}: {why}")),
            )
        }
    }
}

/// Refuses a dictionary that lacks, or holds otherwise, an answer a snapshot's holds.
pub(super) fn check_dictionary(
    dir: &Path,
    host: &str,
    dictionary: &Dictionary,
    from_snapshot: &[Vec<u8>],
) -> Result<(), StateError> {
    let damaged =
        |what: String| StateError::damaged(dir, Damage::new(Part::Dictionary, Some(host), what));
    if dictionary.len() < from_snapshot.len() {
        return Err(damaged(format!(
            "it holds {} answers, fewer than the snapshot's {}",
            dictionary.len(),
            from_snapshot.len()
        )));
    }
    match (0..from_snapshot.len()).find(|&id| encode(&dictionary.answers[id]) != from_snapshot[id])
    {
        Some(id) => Err(damaged(format!("answer {id} differs from the snapshot's"))),
        None => Ok(()),
    }
}

/// Refuses a dictionary holding fewer answers than MANIFEST records.
pub(super) fn check_dictionary_length(
    dir: &Path,
    host: &str,
    dictionary: &Dictionary,
    record: &HostRecord,
) -> Result<(), StateError> {
    if dictionary.len() >= record.answers as usize {
        return Ok(());
    }
    let what = format!(
        "it holds {} answers where MANIFEST records {}",
        dictionary.len(),
        record.answers
    );
    Err(StateError::damaged(
        dir,
        Damage::new(Part::Dictionary, Some(host), what),
    ))
}

/// Where a host's answers are read from: the snapshot file, if any, and the log's keys after
/// it (to its end when `record` is `None`: a store without a manifest, being migrated).
pub(super) struct HostParts<'a> {
    pub(super) dir: &'a Path,
    pub(super) db: &'a sled::Db,
    pub(super) host: &'a str,
    pub(super) snapshot: Option<PathBuf>,
    pub(super) record: Option<&'a HostRecord>,
}

impl HostParts<'_> {
    /// Every answer the parts hold, into a book over `dictionary`; also what the log held.
    pub(super) fn read(&self, dictionary: Dictionary) -> Result<(AnswerBook, LogSeen), StateError> {
        let (dir, host) = (self.dir, self.host);
        let snapshot = match &self.snapshot {
            Some(path) => open_snapshot(
                dir,
                host,
                path,
                self.record.and_then(|r| r.snapshot.as_ref()),
            )?,
            None => None,
        };
        if let Some(record) = self.record {
            check_dictionary_length(dir, host, &dictionary, record)?;
        }
        if let Some(s) = &snapshot {
            check_dictionary(dir, host, &dictionary, &s.dictionary)?;
        }
        let covers_below = snapshot.as_ref().map_or(0, |s| s.covers_below);
        let hint =
            snapshot.as_ref().map_or(0, |s| s.entries) + self.record.map_or(0, |r| r.log_entries);
        let mut numbers = NumberTable::with_capacity(hint as usize);
        let answers = dictionary.len();
        if let (Some(s), Some(path)) = (snapshot, &self.snapshot) {
            s.read_chunks(|entries| insert_entries(&mut numbers, entries, answers))
                .map_err(|e| snapshot_error(dir, host, path, e))?;
        }
        let seen = read_host_log(dir, self.db, host, covers_below, self.record, |entries| {
            insert_entries(&mut numbers, entries, answers)
        })?;
        Ok((AnswerBook::new(dictionary, numbers), seen))
    }
}

/// Writes `book` as `host`'s snapshot of `generation`, covering the log below `covers_below`.
pub(super) fn write_snapshot_file(
    dir: &Path,
    host: &str,
    generation: u64,
    covers_below: u64,
    book: &AnswerBook,
) -> Result<SnapshotRecord, StateError> {
    let path = dir.join(snapshot::file_name(host, Some(generation)));
    let encodings = book.dictionary.encodings();
    let checksum = Snapshot::write(
        &path,
        host,
        covers_below,
        &encodings,
        book.len(),
        book.numbers.iter(),
    )
    .map_err(|e| StateError::io(&path, "writing", e))?;
    Ok(SnapshotRecord {
        generation,
        covers_below,
        entries: book.len() as u64,
        checksum,
    })
}

impl StateStore {
    /// `host`'s log tree.
    pub(super) fn log(&self, host: &str) -> Result<sled::Tree, StateError> {
        log_tree(&self.dir, &self.db, host)
    }

    /// `host`'s answer dictionary (a copy), loaded from its tree on first use.
    pub(super) fn dictionary(&self, host: &str) -> Result<Dictionary, StateError> {
        let mut dictionaries = self.dictionaries.lock().unwrap();
        if let Some(d) = dictionaries.get(host) {
            return Ok(d.clone());
        }
        let dictionary = load_dictionary(&self.dir, &self.db, host)?;
        dictionaries.insert(host.to_string(), dictionary.clone());
        Ok(dictionary)
    }

    /// What MANIFEST records of `host` (nothing yet, for a host never committed).
    pub(super) fn record(&self, host: &str) -> HostRecord {
        let manifest = self.manifest.lock().unwrap();
        manifest
            .current()
            .hosts
            .get(host)
            .cloned()
            .unwrap_or_default()
    }

    /// Every stored answer of `host`; [`AnswerBook::get`] then returns those fresh under `ttl`
    /// at `now_ms`. Compacts first when the log has grown past a quarter of the answers
    /// (and 100,000 entries).
    pub fn load(&self, host: &str, ttl: Ttl, now_ms: i64) -> Result<AnswerBook, StateError> {
        let (mut book, logged) = self.replay(host)?;
        if logged > COMPACT_SLACK.max(book.len() as u64 / 4) {
            tracing::info!(
                host,
                logged,
                answers = book.len(),
                "compacting the state store: a new snapshot, the log emptied"
            );
            self.write_snapshot(host, &book)?;
        }
        book.freshness = Some((ttl, now_ms));
        Ok(book)
    }

    /// Every stored answer of `host`, fresh or not ([`AnswerBook::get`] returns them all),
    /// without compacting: for reading a store rather than running on it.
    pub fn answers(&self, host: &str) -> Result<AnswerBook, StateError> {
        self.replay(host).map(|(book, _)| book)
    }

    /// Every stored answer of `host` (fresh or not), as MANIFEST records them; also how many
    /// entries the log held.
    pub(super) fn replay(&self, host: &str) -> Result<(AnswerBook, u64), StateError> {
        let record = self.record(host);
        let parts = HostParts {
            dir: &self.dir,
            db: &self.db,
            host,
            snapshot: record
                .snapshot
                .map(|s| self.snapshot_path(host, s.generation)),
            record: Some(&record),
        };
        let (book, seen) = parts.read(self.dictionary(host)?)?;
        Ok((book, seen.entries))
    }

    pub(super) fn snapshot_path(&self, host: &str, generation: u64) -> PathBuf {
        self.dir.join(snapshot::file_name(host, Some(generation)))
    }

    /// Makes `book`'s answers the whole of `host`'s store: a snapshot of the next generation
    /// covering every block logged so far, recorded in MANIFEST, after which the old snapshot
    /// and the blocks go. Interrupted before the manifest is written, the old snapshot and the
    /// log are in force (the new file is left over, removed on the next open); after it, the
    /// new snapshot (blocks below its key are never read).
    pub(super) fn write_snapshot(&self, host: &str, book: &AnswerBook) -> Result<(), StateError> {
        let mut manifest = self.manifest.lock().unwrap();
        let mut next = manifest.current().clone();
        let record = next.hosts.entry(host.to_string()).or_default();
        let generation = record.snapshot.map_or(1, |s| s.generation + 1);
        let written = write_snapshot_file(&self.dir, host, generation, record.log_next, book)?;
        let superseded = record.snapshot.replace(written);
        record.log_entries = 0;
        record.answers = record.answers.max(book.answer_ids() as u32);
        manifest.write(next)?;
        drop(manifest);
        if let Some(old) = superseded {
            self.remove_snapshot_file(host, Some(old.generation))?;
        }
        // Every block is covered: the whole tree goes at once, which costs sled far less than
        // removing its entries one by one; present again, empty.
        self.db
            .drop_tree(log_tree_name(host))
            .map_err(|e| StateError::sled(&self.dir, format!("dropping the log of {host}"), e))?;
        self.log(host)?;
        // sled keeps the space the removed blocks took: the next open rewrites the database,
        // now small, into a fresh one.
        let sled_error = |e| StateError::sled(&self.dir, "marking the database for a rewrite", e);
        let meta = self.db.open_tree("meta").map_err(sled_error)?;
        meta.insert(VACUUM_KEY, b"1").map_err(sled_error)?;
        self.db.flush().map_err(sled_error)?;
        Ok(())
    }

    /// Removes a snapshot file no longer in force, if present.
    pub(super) fn remove_snapshot_file(
        &self,
        host: &str,
        generation: Option<u64>,
    ) -> Result<(), StateError> {
        let path = self.dir.join(snapshot::file_name(host, generation));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StateError::io(&path, "removing", e))
            }
            _ => Ok(()),
        }
    }

    /// Appends a batch of answers as one block and flushes it to disk, then records it in
    /// MANIFEST (written at once for a host's first batch, then at most once a second and when
    /// the store closes). New distinct answers go into the dictionary first (an unreferenced
    /// one is harmless), then the block.
    pub fn commit(&self, host: &str, answers: &[(E164, StoredAnswer)]) -> Result<(), StateError> {
        let sled_error =
            |e| StateError::sled(&self.dir, format!("committing a batch of {host}"), e);
        let log = self.log(host)?;
        let dictionary_tree = self
            .db
            .open_tree(dict_tree_name(host))
            .map_err(sled_error)?;
        let _ = self.dictionary(host)?;
        let mut dictionaries = self.dictionaries.lock().unwrap();
        let dictionary = dictionaries.get_mut(host).expect("loaded just above");
        let mut block = Vec::with_capacity(1 + answers.len() * ENTRY_BYTES);
        block.push(BLOCK_TAG);
        for (n, stored) in answers {
            let encoded = encode(&stored.answer);
            let (id, new) = dictionary.intern(&encoded, || stored.answer.clone());
            if new {
                dictionary_tree
                    .insert(id.to_be_bytes(), encoded)
                    .map_err(sled_error)?;
            }
            push_entry(&mut block, n.0, to_second(stored.checked_at_ms), id);
        }
        let mut manifest = self.manifest.lock().unwrap();
        let mut next = manifest.current().clone();
        let record = next.hosts.entry(host.to_string()).or_default();
        let first = record.entries() == 0;
        log.insert(record.log_next.to_be_bytes(), block)
            .map_err(sled_error)?;
        self.db.flush().map_err(sled_error)?;
        record.log_next += 1;
        record.log_entries += answers.len() as u64;
        record.answers = dictionary.len() as u32;
        // A host's first answers are recorded at once: a store that had answers and reads none
        // is then never taken for a new one.
        match first {
            true => manifest.write(next),
            false => manifest.stage(next),
        }
    }
}
