//! The state store: every answer the provider gave, kept across runs.
//!
//! Layout (format `phone-enrich-state/3`), per provider host: a snapshot file
//! (`answers@HEXHOST.snapshot`, see [`snapshot`]) holds the answers as of its writing, 16 bytes
//! each `(number, checked-at second, answer id)`; in sled, tree `log@HOST` holds the batches
//! answered since, one block of such entries each, keyed by a monotonic id, and tree `dict@HOST`
//! maps each answer id to a distinct answer, so a few hundred operator answers serve millions of
//! numbers; tree `meta` holds the format version. The snapshot, then the log in key order, a
//! later entry replacing an earlier one, give the current answers.
//!
//! Contract: the store is the checkpoint and the cache. [`StateStore::commit`] appends a batch
//! of answers as one block and flushes it to disk before returning: a number counts as answered
//! only once `commit` has returned. [`StateStore::load`] reads a host's answers whole, a file
//! read sequentially and a few sled values, into an [`AnswerBook`]; when the log has grown past
//! a quarter of the answers (and 100,000 entries) it is folded into a new snapshot and emptied
//! (compaction), so reruns do not grow the store without bound. Answers are keyed by provider host and number,
//! never by login, and timed to the second. Only terminal answers are stored (`Found`,
//! `NotFound`, `Rejected`); a failure never is. A state directory is held by one run at a time
//! (a lock file naming its holder). A store in format 2 is migrated when opened; any other
//! format is refused rather than misread.

mod snapshot;
mod table;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polars::prelude::PlHashMap;
use serde::{Deserialize, Serialize};

use crate::normalize::E164;
use crate::provider::NumberAnswer;
use snapshot::Snapshot;
pub use table::NumberTable;

/// Written to the `meta` tree; a store with another value is refused (format 2 is migrated).
/// Version 3: answers in blocks of `(number, second, answer id)`, answers in a dictionary tree.
const FORMAT: &[u8] = b"phone-enrich-state/3";
const FORMAT_2: &[u8] = b"phone-enrich-state/2";
const FORMAT_KEY: &[u8] = b"format";
/// Set in `meta` when the database holds much less than its files take (after a compaction).
const VACUUM_KEY: &[u8] = b"vacuum";
/// A block's first byte: the layout of the entries that follow.
const BLOCK_TAG: u8 = 1;
const ENTRY_BYTES: usize = 16;
/// The log is folded into a new snapshot once it holds more entries than this and more than a
/// quarter of the answers: a log small beside the snapshot is not worth rewriting it for.
const COMPACT_SLACK: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {dir} is in use by another run ({holder}); wait for it to finish or use another --state")]
    Locked { dir: PathBuf, holder: String },
    #[error("state store {dir} was written by an incompatible version ({found}); this version reads {expected}. Move it away or point --state elsewhere")]
    Incompatible {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("state store {dir}: {message}")]
    Io { dir: PathBuf, message: String },
}

/// An answer as stored: when it was checked (Unix milliseconds; the store keeps seconds) and
/// what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub checked_at_ms: i64,
    pub answer: NumberAnswer,
}

/// How long answers stay fresh.
#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    pub found: Duration,
    /// For `NotFound` and `Rejected`.
    pub not_found: Duration,
}

impl StoredAnswer {
    pub fn is_fresh(&self, ttl: Ttl, now_ms: i64) -> bool {
        fresh(&self.answer, self.checked_at_ms, ttl, now_ms)
    }
}

fn fresh(answer: &NumberAnswer, checked_at_ms: i64, ttl: Ttl, now_ms: i64) -> bool {
    let ttl = match answer {
        NumberAnswer::Found(_) => ttl.found,
        NumberAnswer::NotFound | NumberAnswer::Rejected => ttl.not_found,
    };
    now_ms.saturating_sub(checked_at_ms) < ttl.as_millis() as i64
}

/// Milliseconds to the stored second (clamped to what 32 bits of seconds hold: 1970–2106).
fn to_second(ms: i64) -> u32 {
    (ms.div_euclid(1000)).clamp(0, u32::MAX as i64) as u32
}

/// Distinct answers, each held once and known by its id. The store keeps one per provider host
/// (tree `dict@HOST`, ids dense from 0); a run's [`AnswerBook`] starts from a copy of it.
#[derive(Debug, Default, Clone)]
struct Dictionary {
    answers: Vec<NumberAnswer>,
    by_encoding: PlHashMap<Vec<u8>, u32>,
}

impl Dictionary {
    /// The id of an answer given in its postcard encoding, adding it when new; `true` if new.
    fn intern(&mut self, encoded: &[u8], answer: impl FnOnce() -> NumberAnswer) -> (u32, bool) {
        if let Some(&id) = self.by_encoding.get(encoded) {
            return (id, false);
        }
        let id = self.answers.len() as u32;
        self.answers.push(answer());
        self.by_encoding.insert(encoded.to_vec(), id);
        (id, true)
    }
}

/// A host's answers in memory: numbers pointing into a [`Dictionary`]. It holds every stored
/// answer, fresh or not; [`AnswerBook::get`] returns only those fresh at the book's clock.
#[derive(Debug)]
pub struct AnswerBook {
    dictionary: Dictionary,
    numbers: NumberTable,
    /// The freshness rule and the time it is judged at; `None`: every answer counts.
    freshness: Option<(Ttl, i64)>,
}

impl Default for AnswerBook {
    fn default() -> Self {
        AnswerBook {
            dictionary: Dictionary::default(),
            numbers: NumberTable::with_capacity(0),
            freshness: None,
        }
    }
}

impl AnswerBook {
    /// Every answer held, fresh or not.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// The fresh answer for `n` and when it was checked (Unix milliseconds).
    #[inline]
    pub fn get(&self, n: &E164) -> Option<(&NumberAnswer, i64)> {
        self.lookup(*n).map(|k| (k.answer, k.checked_at_ms))
    }

    /// The fresh answer for `n`, with where it is held: its slot (below [`Self::slots`]) and its
    /// answer id (below [`Self::answer_ids`]).
    #[inline]
    pub fn lookup(&self, n: E164) -> Option<Known<'_>> {
        let (slot, id, at_s) = self.numbers.find(n.0)?;
        let answer = &self.dictionary.answers[id as usize];
        let at_ms = at_s as i64 * 1000;
        match self.freshness {
            Some((ttl, now_ms)) if !fresh(answer, at_ms, ttl, now_ms) => None,
            _ => Some(Known {
                slot,
                id,
                answer,
                checked_at_ms: at_ms,
            }),
        }
    }

    /// Makes room for `additional` more numbers at once (growing costs a copy of the table).
    pub fn reserve(&mut self, additional: usize) {
        self.numbers.reserve(additional);
    }

    /// Starts fetching `n`'s slot from memory, for a [`Self::lookup`] a little later.
    #[inline]
    pub fn prefetch(&self, n: E164) {
        self.numbers.prefetch(n.0);
    }

    /// How many slots numbers are held in (see [`Self::lookup`]).
    pub fn slots(&self) -> usize {
        self.numbers.slots()
    }

    /// How many distinct answers there are (see [`Self::lookup`]).
    pub fn answer_ids(&self) -> usize {
        self.dictionary.answers.len()
    }

    pub fn answer(&self, id: u32) -> &NumberAnswer {
        &self.dictionary.answers[id as usize]
    }

    pub fn insert(&mut self, n: E164, stored: StoredAnswer) {
        let encoded = postcard::to_stdvec(&stored.answer).expect("answers always encode");
        let (id, _) = self.dictionary.intern(&encoded, || stored.answer);
        self.numbers
            .insert(n.0, id, to_second(stored.checked_at_ms));
    }

    /// Every answer held: `(number, answer, checked-at milliseconds)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (E164, &NumberAnswer, i64)> + '_ {
        self.numbers.iter().map(|(n, id, at_s)| {
            (
                E164(n),
                &self.dictionary.answers[id as usize],
                at_s as i64 * 1000,
            )
        })
    }
}

/// A fresh answer found in an [`AnswerBook`].
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub slot: usize,
    pub id: u32,
    pub answer: &'a NumberAnswer,
    pub checked_at_ms: i64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Appends one entry to a block.
fn push_entry(block: &mut Vec<u8>, number: u64, at_s: u32, id: u32) {
    block.extend_from_slice(&number.to_le_bytes());
    block.extend_from_slice(&at_s.to_le_bytes());
    block.extend_from_slice(&id.to_le_bytes());
}

/// Inserts 16-byte entries into `numbers`, each one's slot fetched a few entries ahead so the
/// memory waits overlap; the id of the first entry naming an answer not in the dictionary
/// (`answers` long) stops it.
fn insert_entries(numbers: &mut NumberTable, entries: &[u8], answers: usize) -> Result<(), u32> {
    const AHEAD: usize = 16;
    let number_at = |i: usize| {
        u64::from_le_bytes(
            entries[i * ENTRY_BYTES..i * ENTRY_BYTES + 8]
                .try_into()
                .expect("8"),
        )
    };
    let count = entries.len() / ENTRY_BYTES;
    for i in 0..count {
        if i + AHEAD < count {
            numbers.prefetch(number_at(i + AHEAD));
        }
        let e = &entries[i * ENTRY_BYTES..(i + 1) * ENTRY_BYTES];
        let at_s = u32::from_le_bytes(e[8..12].try_into().expect("4 bytes"));
        let id = u32::from_le_bytes(e[12..16].try_into().expect("4 bytes"));
        if id as usize >= answers {
            return Err(id);
        }
        numbers.insert(number_at(i), id, at_s);
    }
    Ok(())
}

/// sled's default page cache is 1 GiB; the log is read once per run, so little is needed.
fn open_sled(path: &Path) -> sled::Result<sled::Db> {
    let config = sled::Config::new().path(path).cache_capacity(64 << 20);
    // A database this process just closed may still be locked for a moment by sled's flusher.
    for _ in 0..250 {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => return other,
        }
    }
    config.open()
}

/// Rewrites the database into a fresh one holding the same trees (sled never gives back the
/// space of removed entries): `db.new` is written and synced, then `db` becomes `db.old`,
/// `db.new` becomes `db`, and `db.old` is removed. [`finish_vacuum`] completes any of those
/// steps an interruption left undone.
fn vacuum(dir: &Path, db: sled::Db) -> Result<sled::Db, Box<dyn std::error::Error>> {
    let (path, new) = (dir.join("db"), dir.join("db.new"));
    if new.exists() {
        std::fs::remove_dir_all(&new)?;
    }
    let fresh = open_sled(&new)?;
    for name in db.tree_names() {
        let (from, to) = (db.open_tree(&name)?, fresh.open_tree(&name)?);
        for item in from.iter() {
            let (key, value) = item?;
            to.insert(key, value)?;
        }
    }
    fresh.open_tree("meta")?.remove(VACUUM_KEY)?;
    fresh.flush()?;
    drop((db, fresh));
    std::fs::rename(&path, dir.join("db.old"))?;
    finish_vacuum(dir)?;
    Ok(open_sled(&path)?)
}

/// Completes an interrupted [`vacuum`]: a `db.new` beside `db` was not finished (removed); a
/// `db.new` without `db` was (moved into place); a `db.old` is garbage.
fn finish_vacuum(dir: &Path) -> std::io::Result<()> {
    let (path, new, old) = (dir.join("db"), dir.join("db.new"), dir.join("db.old"));
    if new.exists() {
        if path.exists() {
            std::fs::remove_dir_all(&new)?;
        } else {
            std::fs::rename(&new, &path)?;
            File::open(dir)?.sync_all()?;
        }
    }
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

pub struct StateStore {
    dir: PathBuf,
    db: sled::Db,
    /// Each host's answer dictionary, loaded on first use.
    dictionaries: Mutex<HashMap<String, Dictionary>>,
    /// Each host's snapshot's `covers_below` (0: no snapshot), read on first use.
    covers_below: Mutex<HashMap<String, u64>>,
    /// Held for the store's lifetime: the OS lock is what keeps a second run out.
    _lock: File,
}

impl StateStore {
    /// Opens (or creates) the store in `dir`, taking its lock.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        let io = |message: String| StateError::Io {
            dir: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| io(format!("cannot create the directory: {e}")))?;
        let lock_path = dir.join("LOCK");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io(format!("cannot open {}: {e}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "holder unknown".to_string()
                } else {
                    holder.trim().to_string()
                };
                return Err(StateError::Locked {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io(format!("cannot lock {}: {e}", lock_path.display())))
            }
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown host".into());
        let holder = format!(
            "pid {} on {host}, since {}",
            std::process::id(),
            humantime::format_rfc3339_seconds(SystemTime::now())
        );
        let _ = lock
            .set_len(0)
            .and_then(|_| lock.rewind())
            .and_then(|_| lock.write_all(holder.as_bytes()));

        finish_vacuum(dir).map_err(|e| io(format!("finishing a rewrite of the database: {e}")))?;
        let mut db = open_sled(&dir.join("db"))
            .map_err(|e| io(format!("cannot open the sled database: {e}")))?;
        let wanted = db
            .open_tree("meta")
            .and_then(|meta| meta.contains_key(VACUUM_KEY))
            .map_err(|e| io(e.to_string()))?;
        if wanted {
            db = vacuum(dir, db).map_err(|e| io(format!("rewriting the database: {e}")))?;
        }
        let store = StateStore {
            dir: dir.to_path_buf(),
            db,
            dictionaries: Mutex::new(HashMap::new()),
            covers_below: Mutex::new(HashMap::new()),
            _lock: lock,
        };
        let meta = store.db.open_tree("meta").map_err(|e| io(e.to_string()))?;
        match meta.get(FORMAT_KEY).map_err(|e| io(e.to_string()))? {
            Some(found) if found.as_ref() == FORMAT => {}
            Some(found) if found.as_ref() == FORMAT_2 => store.migrate_from_2()?,
            Some(found) => {
                return Err(StateError::Incompatible {
                    dir: dir.to_path_buf(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: String::from_utf8_lossy(FORMAT).into_owned(),
                })
            }
            None => {
                meta.insert(FORMAT_KEY, FORMAT)
                    .map_err(|e| io(e.to_string()))?;
                store.db.flush().map_err(|e| io(e.to_string()))?;
            }
        }
        Ok(store)
    }

    fn io(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Io {
            dir: self.dir.clone(),
            message: e.to_string(),
        }
    }

    fn log(&self, host: &str) -> Result<sled::Tree, StateError> {
        self.db
            .open_tree(format!("log@{host}"))
            .map_err(|e| self.io(e))
    }

    /// The hosts the store holds answers for.
    fn hosts(&self) -> Vec<String> {
        self.db
            .tree_names()
            .into_iter()
            .filter_map(|name| {
                String::from_utf8_lossy(&name)
                    .strip_prefix("log@")
                    .map(str::to_string)
            })
            .collect()
    }

    /// `host`'s answer dictionary (a copy), loaded from its tree on first use.
    fn dictionary(&self, host: &str) -> Result<Dictionary, StateError> {
        let mut dictionaries = self.dictionaries.lock().unwrap();
        if let Some(d) = dictionaries.get(host) {
            return Ok(d.clone());
        }
        let tree = self
            .db
            .open_tree(format!("dict@{host}"))
            .map_err(|e| self.io(e))?;
        let mut dictionary = Dictionary::default();
        for (expected, item) in tree.iter().enumerate() {
            let (key, encoded) = item.map_err(|e| self.io(e))?;
            let id = key
                .as_ref()
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| self.io("a dictionary key is not an id"))?;
            if id as usize != expected {
                return Err(self.io(format!(
                    "the answer dictionary of {host} lacks id {expected}"
                )));
            }
            let answer: NumberAnswer = postcard::from_bytes(&encoded)
                .map_err(|e| self.io(format!("answer {id} does not decode: {e}")))?;
            dictionary.intern(&encoded, || answer);
        }
        dictionaries.insert(host.to_string(), dictionary.clone());
        Ok(dictionary)
    }

    /// Every stored answer of `host`; [`AnswerBook::get`] then returns those fresh under `ttl`
    /// at `now_ms`. Compacts first when the log has grown (see [`COMPACT_SLACK`]).
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

    fn snapshot_path(&self, host: &str) -> PathBuf {
        let hex: String = host.bytes().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("answers@{hex}.snapshot"))
    }

    /// Every stored answer of `host` (fresh or not): the snapshot, then the log's blocks
    /// written after it. Also how many entries those blocks hold.
    fn replay(&self, host: &str) -> Result<(AnswerBook, u64), StateError> {
        let dictionary = self.dictionary(host)?;
        let snapshot = Snapshot::open(&self.snapshot_path(host), host)
            .map_err(|e| self.io(format!("the snapshot of {host}: {e}")))?;
        let after = snapshot.as_ref().map_or(0, |s| s.covers_below);
        self.covers_below
            .lock()
            .unwrap()
            .insert(host.to_string(), after);
        // Sized once: the snapshot's count and the log's (a hint kept in `meta`).
        let hint = self.logged_hint(host)?;
        let from_snapshot = snapshot.as_ref().map_or(0, |s| s.entries);
        let mut numbers = NumberTable::with_capacity((from_snapshot + hint) as usize);
        let answers = dictionary.answers.len();
        let bad_id = |id: u32| {
            format!("an entry refers to answer {id}, which the dictionary of {host} lacks")
        };
        if let Some(snapshot) = snapshot {
            snapshot
                .read_chunks(|entries| {
                    insert_entries(&mut numbers, entries, answers)
                        .map_err(|id| std::io::Error::other(bad_id(id)))
                })
                .map_err(|e| self.io(format!("the snapshot of {host}: {e}")))?;
        }
        // Block by block: sled's values are not held, so neither are the pages behind them.
        let mut logged = 0u64;
        for block in self.log(host)?.range(after.to_be_bytes()..).values() {
            let block = block.map_err(|e| self.io(e))?;
            let entries = match block.split_first() {
                Some((&BLOCK_TAG, entries)) if entries.len() % ENTRY_BYTES == 0 => entries,
                _ => return Err(self.io("a block of the log is corrupt")),
            };
            insert_entries(&mut numbers, entries, answers).map_err(|id| self.io(bad_id(id)))?;
            logged += (entries.len() / ENTRY_BYTES) as u64;
        }
        let book = AnswerBook {
            dictionary,
            numbers,
            freshness: None,
        };
        Ok((book, logged))
    }

    /// How many entries the log holds, about (commits add, compaction resets; a crash between a
    /// commit and its count only misjudges the table's first size).
    fn logged_hint(&self, host: &str) -> Result<u64, StateError> {
        let meta = self.db.open_tree("meta").map_err(|e| self.io(e))?;
        let value = meta.get(format!("logged@{host}")).map_err(|e| self.io(e))?;
        Ok(value
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    fn set_logged_hint(&self, host: &str, update: impl Fn(u64) -> u64) -> Result<(), StateError> {
        let meta = self.db.open_tree("meta").map_err(|e| self.io(e))?;
        meta.fetch_and_update(format!("logged@{host}"), |old| {
            let old = old
                .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            Some(update(old).to_be_bytes().to_vec())
        })
        .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// The key the next block of `host`'s log gets: above every key in the log and every key a
    /// snapshot covers. Kept by the store itself (not sled's id generator), so it survives a
    /// rewrite of the database. Commits are one at a time (the caller holds the dictionaries).
    fn next_key(&self, host: &str, log: &sled::Tree) -> Result<u64, StateError> {
        let after_log = match log.last().map_err(|e| self.io(e))? {
            Some((key, _)) => {
                let key: [u8; 8] = key
                    .as_ref()
                    .try_into()
                    .map_err(|_| self.io("a log key is not 8 bytes"))?;
                u64::from_be_bytes(key) + 1
            }
            None => 0,
        };
        Ok(after_log.max(self.covers_below(host)?))
    }

    fn covers_below(&self, host: &str) -> Result<u64, StateError> {
        let mut known = self.covers_below.lock().unwrap();
        if let Some(&c) = known.get(host) {
            return Ok(c);
        }
        let covers = Snapshot::open(&self.snapshot_path(host), host)
            .map_err(|e| self.io(format!("the snapshot of {host}: {e}")))?
            .map_or(0, |s| s.covers_below);
        known.insert(host.to_string(), covers);
        Ok(covers)
    }

    /// Makes `book`'s answers the whole of `host`'s store: a new snapshot (written beside,
    /// synced, then renamed over the old one), covering every block logged so far, which are
    /// then removed. Interrupted anywhere, the store reads the same answers: before the rename
    /// the old snapshot and the log, after it the new snapshot (blocks it covers are skipped).
    fn write_snapshot(&self, host: &str, book: &AnswerBook) -> Result<(), StateError> {
        let log = self.log(host)?;
        let covers_below = self.next_key(host, &log)?;
        let path = self.snapshot_path(host);
        Snapshot::write(&path, host, covers_below, book.len(), book.numbers.iter())
            .map_err(|e| self.io(format!("writing {}: {e}", path.display())))?;
        self.covers_below
            .lock()
            .unwrap()
            .insert(host.to_string(), covers_below);
        // Every block is covered (`covers_below` is above them all): the whole tree goes at once,
        // which costs sled far less than removing its entries one by one.
        drop(log);
        self.db
            .drop_tree(format!("log@{host}"))
            .map_err(|e| self.io(e))?;
        // Present again, empty: the host is known by its log tree.
        self.log(host)?;
        self.set_logged_hint(host, |_| 0)?;
        // sled keeps the space the removed blocks took: the next open rewrites the database,
        // now small, into a fresh one.
        let meta = self.db.open_tree("meta").map_err(|e| self.io(e))?;
        meta.insert(VACUUM_KEY, b"1").map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Appends a batch of answers as one block and flushes it to disk. New distinct answers go
    /// into the dictionary first (an unreferenced one is harmless), then the block.
    pub fn commit(&self, host: &str, answers: &[(E164, StoredAnswer)]) -> Result<(), StateError> {
        let log = self.log(host)?;
        let dictionary_tree = self
            .db
            .open_tree(format!("dict@{host}"))
            .map_err(|e| self.io(e))?;
        let _ = self.dictionary(host)?;
        let mut dictionaries = self.dictionaries.lock().unwrap();
        let dictionary = dictionaries.get_mut(host).expect("loaded just above");
        let mut block = Vec::with_capacity(1 + answers.len() * ENTRY_BYTES);
        block.push(BLOCK_TAG);
        for (n, stored) in answers {
            let encoded = postcard::to_stdvec(&stored.answer).map_err(|e| self.io(e))?;
            let (id, new) = dictionary.intern(&encoded, || stored.answer.clone());
            if new {
                dictionary_tree
                    .insert(id.to_be_bytes(), encoded)
                    .map_err(|e| self.io(e))?;
            }
            push_entry(&mut block, n.0, to_second(stored.checked_at_ms), id);
        }
        let key = self.next_key(host, &log)?;
        log.insert(key.to_be_bytes(), block)
            .map_err(|e| self.io(e))?;
        drop(dictionaries);
        self.set_logged_hint(host, |n| n + answers.len() as u64)?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Format 2 kept one sled entry per number (`answers@HOST`: number → postcard
    /// `(checked_at_ms, answer id)`) with the same dictionaries: its entries become a snapshot.
    /// Rerunnable: an interrupted migration leaves format 2 in `meta` and starts over.
    fn migrate_from_2(&self) -> Result<(), StateError> {
        let old_trees: Vec<(String, sled::Tree)> = self
            .db
            .tree_names()
            .into_iter()
            .filter_map(|name| {
                let name = String::from_utf8_lossy(&name).into_owned();
                let host = name.strip_prefix("answers@")?.to_string();
                self.db.open_tree(&name).ok().map(|t| (host, t))
            })
            .collect();
        for (host, old) in &old_trees {
            tracing::info!(
                host,
                entries = old.len(),
                "migrating the state store from format 2 to format 3"
            );
            self.log(host)?.clear().map_err(|e| self.io(e))?;
            let mut book = AnswerBook {
                dictionary: self.dictionary(host)?,
                numbers: NumberTable::with_capacity(1 << 16),
                freshness: None,
            };
            for item in old.iter() {
                let (key, bytes) = item.map_err(|e| self.io(e))?;
                let number = u64::from_be_bytes(
                    key.as_ref()
                        .try_into()
                        .map_err(|_| self.io("a format 2 key is not a number"))?,
                );
                let (at_ms, id): (i64, u32) = postcard::from_bytes(&bytes)
                    .map_err(|e| self.io(format!("a format 2 entry does not decode: {e}")))?;
                book.numbers.insert(number, id, to_second(at_ms));
            }
            self.write_snapshot(host, &book)?;
        }
        let meta = self.db.open_tree("meta").map_err(|e| self.io(e))?;
        meta.insert(FORMAT_KEY, FORMAT).map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        for (host, _) in old_trees {
            self.db
                .drop_tree(format!("answers@{host}"))
                .map_err(|e| self.io(e))?;
        }
        for key in meta.scan_prefix(b"count@").keys().flatten() {
            let _ = meta.remove(key);
        }
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }
}

/// What the cache holds, as `phone-enrich cache stats` shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CacheStats {
    /// Per provider host: entries by status and by age.
    pub hosts: BTreeMap<String, HostStats>,
    pub entries: u64,
    pub size_on_disk_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HostStats {
    pub by_status: BTreeMap<String, u64>,
    pub by_age: AgeBuckets,
}

/// Entries by the age of their answer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AgeBuckets {
    pub under_1d: u64,
    pub from_1d_to_7d: u64,
    pub from_7d_to_30d: u64,
    pub over_30d: u64,
}

impl AgeBuckets {
    fn count(&mut self, age_ms: i64) {
        const DAY: i64 = 86_400_000;
        *match age_ms {
            a if a < DAY => &mut self.under_1d,
            a if a < 7 * DAY => &mut self.from_1d_to_7d,
            a if a < 30 * DAY => &mut self.from_7d_to_30d,
            _ => &mut self.over_30d,
        } += 1;
    }

    /// (label, count) in age order.
    pub fn rows(&self) -> [(&'static str, u64); 4] {
        [
            ("under 1 day", self.under_1d),
            ("1 to 7 days", self.from_1d_to_7d),
            ("7 to 30 days", self.from_7d_to_30d),
            ("over 30 days", self.over_30d),
        ]
    }
}

fn status_name(answer: &NumberAnswer) -> &'static str {
    match answer {
        NumberAnswer::Found(_) => "ok",
        NumberAnswer::NotFound => "not_found",
        NumberAnswer::Rejected => "invalid_number",
    }
}

impl StateStore {
    /// Answers by host, status and age, and the store's size on disk (sled's files and the
    /// snapshots).
    pub fn stats(&self, now_ms: i64) -> Result<CacheStats, StateError> {
        let mut stats = CacheStats::default();
        for host in self.hosts() {
            let (book, _) = self.replay(&host)?;
            let host_stats = stats.hosts.entry(host).or_default();
            for (_, answer, at_ms) in book.iter() {
                *host_stats
                    .by_status
                    .entry(status_name(answer).into())
                    .or_default() += 1;
                host_stats.by_age.count(now_ms - at_ms);
                stats.entries += 1;
            }
        }
        let snapshots: u64 = stats
            .hosts
            .keys()
            .filter_map(|host| std::fs::metadata(self.snapshot_path(host)).ok())
            .map(|m| m.len())
            .sum();
        stats.size_on_disk_bytes = self.db.size_on_disk().map_err(|e| self.io(e))? + snapshots;
        Ok(stats)
    }

    /// Removes every answer checked more than `age` ago; returns how many.
    pub fn purge_older_than(&self, age: Duration, now_ms: i64) -> Result<u64, StateError> {
        let cutoff = now_ms - age.as_millis() as i64;
        let mut removed = 0;
        for host in self.hosts() {
            let (book, _) = self.replay(&host)?;
            let mut kept = AnswerBook {
                dictionary: book.dictionary.clone(),
                numbers: NumberTable::with_capacity(book.len()),
                freshness: None,
            };
            for (number, id, at_s) in book.numbers.iter() {
                if (at_s as i64) * 1000 < cutoff {
                    removed += 1;
                } else {
                    kept.numbers.insert(number, id, at_s);
                }
            }
            if kept.len() < book.len() {
                self.write_snapshot(&host, &kept)?;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::OperatorInfo;

    fn info() -> NumberAnswer {
        NumberAnswer::Found(OperatorInfo::example())
    }

    /// Opens a store that a handle in the test just closed: sled's flusher thread lets go of
    /// the database's file lock a moment after the handle is dropped.
    fn reopen(dir: &Path) -> Result<StateStore, StateError> {
        for _ in 0..100 {
            match StateStore::open(dir) {
                Err(StateError::Io { message, .. }) if message.contains("lock") => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => return other,
            }
        }
        StateStore::open(dir)
    }

    fn ttl(secs: u64) -> Ttl {
        Ttl {
            found: Duration::from_secs(secs),
            not_found: Duration::from_secs(secs),
        }
    }

    fn not_found_at(numbers: std::ops::Range<u64>, at_ms: i64) -> Vec<(E164, StoredAnswer)> {
        numbers
            .map(|i| {
                (
                    E164(79_100_000_000 + i),
                    StoredAnswer {
                        checked_at_ms: at_ms,
                        answer: NumberAnswer::NotFound,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn commits_survive_reopening_and_are_keyed_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let n = E164(79161234567);
        {
            let store = StateStore::open(dir.path()).unwrap();
            let stored = StoredAnswer {
                checked_at_ms: 5_999,
                answer: info(),
            };
            store.commit("smsc.ru", &[(n, stored)]).unwrap();
        }
        let store = reopen(dir.path()).unwrap();
        // Kept to the second.
        let book = store.load("smsc.ru", ttl(60), 6_000).unwrap();
        assert_eq!(book.get(&n), Some((&info(), 5_000)));
        assert!(store.load("smsc.kz", ttl(60), 6_000).unwrap().is_empty());
        // Stale answers are held but not given.
        let later = store.load("smsc.ru", ttl(60), 65_000).unwrap();
        assert_eq!((later.len(), later.get(&n)), (1, None));
        // A later commit replaces an earlier answer for the same number.
        store
            .commit("smsc.ru", &not_found_at(0..50, 7_000))
            .unwrap();
        let replaced = StoredAnswer {
            checked_at_ms: 9_000,
            answer: info(),
        };
        store
            .commit("smsc.ru", &[(E164(79_100_000_007), replaced)])
            .unwrap();
        let book = store.load("smsc.ru", ttl(60), 10_000).unwrap();
        assert_eq!(book.len(), 51);
        assert_eq!(book.get(&E164(79_100_000_007)), Some((&info(), 9_000)));
        assert_eq!(
            book.get(&E164(79_100_000_008)),
            Some((&NumberAnswer::NotFound, 7_000))
        );
    }

    #[test]
    fn a_log_grown_past_its_answers_is_compacted_to_the_same_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let numbers = 40_000;
        let day = 86_400_000;
        // Four nights of the same numbers (160,000 entries for 40,000 answers), then one more.
        for night in 0..4 {
            store
                .commit("h", &not_found_at(0..numbers, night * day))
                .unwrap();
        }
        let late = StoredAnswer {
            checked_at_ms: 4 * day,
            answer: info(),
        };
        store.commit("h", &[(E164(79_100_000_001), late)]).unwrap();
        assert_eq!(store.log("h").unwrap().len(), 5);
        let book = store.load("h", ttl(7 * 86_400), 4 * day).unwrap();
        assert_eq!(store.log("h").unwrap().len(), 0, "folded into the snapshot");
        assert!(store.snapshot_path("h").exists());
        // Answers after the snapshot go to the log again, and both are read.
        store
            .commit("h", &not_found_at(numbers..numbers + 10, 5 * day))
            .unwrap();
        let bytes_before = store.db.size_on_disk().unwrap();
        drop(store);
        // Reopened, the database is rewritten without the space the removed blocks held.
        let store = reopen(dir.path()).unwrap();
        let meta = store.db.open_tree("meta").unwrap();
        assert!(!meta.contains_key(VACUUM_KEY).unwrap());
        let bytes_after = store.db.size_on_disk().unwrap();
        assert!(
            bytes_after < bytes_before / 2,
            "{bytes_after} bytes after, {bytes_before} before"
        );
        // Blocks keep coming after the snapshot's, the database rewritten or not.
        store
            .commit("h", &not_found_at(numbers + 10..numbers + 12, 6 * day))
            .unwrap();
        let (again, logged) = store.replay("h").unwrap();
        assert_eq!(logged, 12);
        assert_eq!(again.len(), book.len() + 12);
        assert_eq!(store.stats(0).unwrap().entries, book.len() as u64 + 12);
        for (n, answer, at) in book.iter() {
            let (id, s) = again.numbers.get(n.0).unwrap();
            assert_eq!((again.answer(id), s as i64 * 1000), (answer, at), "{n:?}");
        }
        assert_eq!(
            again
                .numbers
                .get(79_100_000_001)
                .map(|(_, s)| s as i64 * 1000),
            Some(4 * day)
        );
        assert_eq!(
            again
                .numbers
                .get(79_100_000_000)
                .map(|(_, s)| s as i64 * 1000),
            Some(3 * day)
        );
    }

    #[test]
    fn an_interrupted_rewrite_of_the_database_is_completed() {
        // (directories present, what is `db` afterwards: the one marked "new" or "current")
        let cases: &[(&[&str], &str)] = &[
            (&["db", "db.new"], "current"),
            (&["db.new", "db.old"], "new"),
            (&["db", "db.old"], "current"),
            (&["db"], "current"),
        ];
        for (present, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            for name in *present {
                let mark = if *name == "db.new" { "new" } else { "current" };
                std::fs::create_dir(dir.path().join(name)).unwrap();
                std::fs::write(dir.path().join(name).join("mark"), mark).unwrap();
            }
            finish_vacuum(dir.path()).unwrap();
            let left: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(left, ["db"], "{present:?}");
            let mark = std::fs::read_to_string(dir.path().join("db/mark")).unwrap();
            assert_eq!(&mark, expected, "{present:?}");
        }
    }

    #[test]
    fn a_compaction_interrupted_before_the_log_is_emptied_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.commit("h", &not_found_at(0..100, 1_000)).unwrap();
        store.commit("h", &not_found_at(50..150, 2_000)).unwrap();
        let (book, _) = store.replay("h").unwrap();
        // The snapshot as compaction writes it, the covered blocks left in the log.
        let covers_below = store.next_key("h", &store.log("h").unwrap()).unwrap();
        let path = store.snapshot_path("h");
        Snapshot::write(&path, "h", covers_below, book.len(), book.numbers.iter()).unwrap();
        store.commit("h", &not_found_at(0..1, 3_000)).unwrap();
        let (again, logged) = store.replay("h").unwrap();
        assert_eq!((again.len(), logged), (150, 1), "covered blocks skipped");
        assert_eq!(again.numbers.get(79_100_000_000).map(|(_, s)| s), Some(3));
        assert_eq!(again.numbers.get(79_100_000_060).map(|(_, s)| s), Some(2));
        assert_eq!(again.numbers.get(79_100_000_010).map(|(_, s)| s), Some(1));
    }

    #[test]
    fn a_format_2_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert(FORMAT_KEY, FORMAT_2)
                .unwrap();
            let dict = db.open_tree("dict@smsc.ru").unwrap();
            dict.insert(0u32.to_be_bytes(), postcard::to_stdvec(&info()).unwrap())
                .unwrap();
            dict.insert(
                1u32.to_be_bytes(),
                postcard::to_stdvec(&NumberAnswer::NotFound).unwrap(),
            )
            .unwrap();
            let answers = db.open_tree("answers@smsc.ru").unwrap();
            for i in 0..5000u64 {
                let entry = postcard::to_stdvec(&(i as i64 * 1000, (i % 2) as u32)).unwrap();
                answers
                    .insert((79_000_000_000 + i).to_be_bytes(), entry)
                    .unwrap();
            }
            db.flush().unwrap();
        }
        let store = reopen(dir.path()).unwrap();
        let book = store.load("smsc.ru", ttl(1_000_000), 0).unwrap();
        assert_eq!(book.len(), 5000);
        assert_eq!(book.get(&E164(79_000_000_002)), Some((&info(), 2_000)));
        assert_eq!(
            book.get(&E164(79_000_000_003)),
            Some((&NumberAnswer::NotFound, 3_000))
        );
        assert!(!store
            .db
            .tree_names()
            .iter()
            .any(|t| t.starts_with(b"answers@")));
        drop(store);
        // Opened again, it is a format 3 store.
        let store = reopen(dir.path()).unwrap();
        assert_eq!(store.stats(0).unwrap().entries, 5000);
    }

    #[test]
    fn a_second_opener_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateStore::open(dir.path()).unwrap();
        match StateStore::open(dir.path()) {
            Err(StateError::Locked { holder, .. }) => assert!(
                holder.contains(&format!("pid {}", std::process::id())),
                "{holder}"
            ),
            other => panic!("expected Locked, got {:?}", other.err()),
        }
    }

    #[test]
    fn another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert(FORMAT_KEY, b"phone-enrich-state/0".as_slice())
                .unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            reopen(dir.path()),
            Err(StateError::Incompatible { .. })
        ));
    }

    #[test]
    fn stats_and_purge_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let day = 86_400_000;
        let now = 100 * day;
        let entries: Vec<(E164, StoredAnswer)> = [
            (1, info(), 0),
            (2, NumberAnswer::NotFound, 3),
            (3, info(), 40),
        ]
        .into_iter()
        .map(|(n, answer, age)| {
            (
                E164(79_000_000_000 + n),
                StoredAnswer {
                    checked_at_ms: now - age * day,
                    answer,
                },
            )
        })
        .collect();
        store.commit("smsc.ru", &entries).unwrap();
        let stats = store.stats(now).unwrap();
        assert_eq!(stats.entries, 3);
        let host = &stats.hosts["smsc.ru"];
        assert_eq!(host.by_status["ok"], 2);
        assert_eq!(host.by_status["not_found"], 1);
        assert_eq!(
            (
                host.by_age.under_1d,
                host.by_age.from_1d_to_7d,
                host.by_age.over_30d
            ),
            (1, 1, 1)
        );
        assert_eq!(
            store
                .purge_older_than(Duration::from_secs(30 * 86400), now)
                .unwrap(),
            1
        );
        let after = store.stats(now).unwrap();
        assert_eq!(after.entries, 2);
        // The purge wrote a snapshot; the size on disk counts it.
        let snapshot = std::fs::metadata(store.snapshot_path("smsc.ru"))
            .unwrap()
            .len();
        assert!(after.size_on_disk_bytes > snapshot, "{after:?}");
    }

    #[test]
    fn freshness_follows_the_ttl_by_status() {
        let ttl = Ttl {
            found: Duration::from_secs(30 * 86400),
            not_found: Duration::from_secs(7 * 86400),
        };
        let day = 86_400_000;
        let cases: &[(NumberAnswer, i64, bool)] = &[
            (info(), 29 * day, true),
            (info(), 31 * day, false),
            (NumberAnswer::NotFound, 6 * day, true),
            (NumberAnswer::NotFound, 8 * day, false),
            (NumberAnswer::Rejected, 8 * day, false),
        ];
        for (answer, age, fresh) in cases {
            let stored = StoredAnswer {
                checked_at_ms: 0,
                answer: answer.clone(),
            };
            assert_eq!(stored.is_fresh(ttl, *age), *fresh, "{answer:?} at {age}");
        }
    }
}
