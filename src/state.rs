//! The state store: every answer the provider gave, in sled, kept across runs.
//!
//! Layout: per provider host, tree `answers@HOST` maps a number (8 bytes, big-endian) to
//! `(checked_at, answer id)` and tree `dict@HOST` maps each id to a distinct answer, so an entry
//! takes a few bytes; tree `meta` holds the format version and a count of entries per host.
//!
//! Contract: the store is the checkpoint and the cache. [`StateStore::commit`] writes a batch of
//! answers atomically and flushes it to disk before returning: a number counts as answered only
//! once `commit` has returned. Answers are keyed by provider host and number, never by login.
//! Only terminal answers are stored (`Found`, `NotFound`, `Rejected`); a failure never is.
//! A state directory is held by one run at a time (a lock file naming its holder), and a store
//! written in another format is refused rather than misread.

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

/// Written to the `meta` tree; a store with another value is refused.
/// Version 2: an entry is `(checked_at, answer id)`, the distinct answers in a dictionary tree.
const FORMAT: &[u8] = b"phone-enrich-state/2";
const FORMAT_KEY: &[u8] = b"format";

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

/// An answer as stored: when it was checked (Unix milliseconds) and what it was.
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
        StoredAnswer::fresh(&self.answer, self.checked_at_ms, ttl, now_ms)
    }

    fn fresh(answer: &NumberAnswer, checked_at_ms: i64, ttl: Ttl, now_ms: i64) -> bool {
        let ttl = match answer {
            NumberAnswer::Found(_) => ttl.found,
            NumberAnswer::NotFound | NumberAnswer::Rejected => ttl.not_found,
        };
        now_ms.saturating_sub(checked_at_ms) < ttl.as_millis() as i64
    }
}

/// Distinct answers, each held once and known by its id: a few hundred operator answers serve
/// millions of numbers. The store keeps one per provider host (tree `dict@HOST`, ids dense from
/// 0); a run's [`AnswerBook`] starts from a copy of it.
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

/// Answers in memory for a run: numbers pointing into a [`Dictionary`].
#[derive(Debug, Default)]
pub struct AnswerBook {
    dictionary: Dictionary,
    numbers: PlHashMap<E164, (u32, i64)>,
}

impl AnswerBook {
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    pub fn contains(&self, n: &E164) -> bool {
        self.numbers.contains_key(n)
    }

    /// The answer for `n` and when it was checked (Unix milliseconds).
    pub fn get(&self, n: &E164) -> Option<(&NumberAnswer, i64)> {
        self.numbers
            .get(n)
            .map(|&(id, at)| (&self.dictionary.answers[id as usize], at))
    }

    pub fn insert(&mut self, n: E164, stored: StoredAnswer) {
        let encoded = postcard::to_stdvec(&stored.answer).expect("answers always encode");
        let (id, _) = self.dictionary.intern(&encoded, || stored.answer);
        self.numbers.insert(n, (id, stored.checked_at_ms));
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct StateStore {
    dir: PathBuf,
    db: sled::Db,
    /// Each host's answer dictionary, loaded on first use.
    dictionaries: Mutex<HashMap<String, Dictionary>>,
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

        // sled's default page cache is 1 GiB; answers are read once per run, so little is needed.
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(64 << 20)
            .open()
            .map_err(|e| io(format!("cannot open the sled database: {e}")))?;
        let meta = db.open_tree("meta").map_err(|e| io(e.to_string()))?;
        match meta.get(FORMAT_KEY).map_err(|e| io(e.to_string()))? {
            Some(found) if found.as_ref() != FORMAT => {
                return Err(StateError::Incompatible {
                    dir: dir.to_path_buf(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: String::from_utf8_lossy(FORMAT).into_owned(),
                })
            }
            Some(_) => {}
            None => {
                meta.insert(FORMAT_KEY, FORMAT)
                    .map_err(|e| io(e.to_string()))?;
                db.flush().map_err(|e| io(e.to_string()))?;
            }
        }
        Ok(StateStore {
            dir: dir.to_path_buf(),
            db,
            dictionaries: Mutex::new(HashMap::new()),
            _lock: lock,
        })
    }

    fn io(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Io {
            dir: self.dir.clone(),
            message: e.to_string(),
        }
    }

    fn tree(&self, host: &str) -> Result<sled::Tree, StateError> {
        self.db
            .open_tree(format!("answers@{host}"))
            .map_err(|e| self.io(e))
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

    /// An entry's `(checked_at, answer id)`, the id checked against the dictionary.
    fn entry(&self, bytes: &[u8], dictionary: &Dictionary) -> Result<(i64, u32), StateError> {
        let (at, id): (i64, u32) = postcard::from_bytes(bytes)
            .map_err(|e| self.io(format!("an entry does not decode: {e}")))?;
        if id as usize >= dictionary.answers.len() {
            return Err(self.io(format!(
                "an entry refers to answer {id}, which the dictionary lacks"
            )));
        }
        Ok((at, id))
    }

    /// The stored answers for the numbers keyed in `numbers` that are still fresh. When the numbers are a good share
    /// of the store, one sequential scan is far cheaper than a lookup each.
    pub fn get_fresh<V>(
        &self,
        host: &str,
        numbers: &PlHashMap<E164, V>,
        ttl: Ttl,
        now_ms: i64,
    ) -> Result<AnswerBook, StateError> {
        let tree = self.tree(host)?;
        // Sized for every number up front: no doubling while millions load.
        let mut book = AnswerBook {
            dictionary: self.dictionary(host)?,
            numbers: PlHashMap::with_capacity_and_hasher(numbers.len(), Default::default()),
        };
        let mut add = |n: E164, bytes: &[u8]| -> Result<(), StateError> {
            let (at, id) = self.entry(bytes, &book.dictionary)?;
            if StoredAnswer::fresh(&book.dictionary.answers[id as usize], at, ttl, now_ms) {
                book.numbers.insert(n, (id, at));
            }
            Ok(())
        };
        // A store without a count is scanned, and counted.
        if self
            .entries_estimate(host)?
            .is_none_or(|count| count <= 4 * numbers.len() as u64)
        {
            let mut count = 0u64;
            for item in tree.iter() {
                count += 1;
                let (key, bytes) = item.map_err(|e| self.io(e))?;
                let n = E164(u64::from_be_bytes(
                    key.as_ref()
                        .try_into()
                        .map_err(|_| self.io("a key is not a number"))?,
                ));
                if numbers.contains_key(&n) {
                    add(n, &bytes)?;
                }
            }
            self.set_entries_estimate(host, |_| count)?;
        } else {
            for &n in numbers.keys() {
                if let Some(bytes) = tree.get(n.0.to_be_bytes()).map_err(|e| self.io(e))? {
                    add(n, &bytes)?;
                }
            }
        }
        Ok(book)
    }

    /// About how many answers the store holds for `host` (at least as many as it holds: every
    /// commit adds its size; a purge counts again).
    fn entries_estimate(&self, host: &str) -> Result<Option<u64>, StateError> {
        let meta = self.db.open_tree("meta").map_err(|e| self.io(e))?;
        let value = meta.get(format!("count@{host}")).map_err(|e| self.io(e))?;
        Ok(value.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
    }

    fn set_entries_estimate(
        &self,
        host: &str,
        update: impl Fn(u64) -> u64,
    ) -> Result<(), StateError> {
        let meta = self.db.open_tree("meta").map_err(|e| self.io(e))?;
        meta.fetch_and_update(format!("count@{host}"), |old| {
            let old = old
                .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            Some(update(old).to_be_bytes().to_vec())
        })
        .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Writes a batch of answers atomically and flushes it to disk. New distinct answers go
    /// into the dictionary first (an unreferenced one is harmless), then every number at once.
    pub fn commit(&self, host: &str, answers: &[(E164, StoredAnswer)]) -> Result<(), StateError> {
        let tree = self.tree(host)?;
        let dictionary_tree = self
            .db
            .open_tree(format!("dict@{host}"))
            .map_err(|e| self.io(e))?;
        let _ = self.dictionary(host)?;
        let mut dictionaries = self.dictionaries.lock().unwrap();
        let dictionary = dictionaries.get_mut(host).expect("loaded just above");
        let mut batch = sled::Batch::default();
        for (n, stored) in answers {
            let encoded = postcard::to_stdvec(&stored.answer).map_err(|e| self.io(e))?;
            let (id, new) = dictionary.intern(&encoded, || stored.answer.clone());
            if new {
                dictionary_tree
                    .insert(id.to_be_bytes(), encoded)
                    .map_err(|e| self.io(e))?;
            }
            let entry = postcard::to_stdvec(&(stored.checked_at_ms, id)).map_err(|e| self.io(e))?;
            batch.insert(&n.0.to_be_bytes(), entry);
        }
        tree.apply_batch(batch).map_err(|e| self.io(e))?;
        drop(dictionaries);
        self.set_entries_estimate(host, |n| n + answers.len() as u64)?;
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
    fn answer_trees(&self) -> impl Iterator<Item = (String, sled::Tree)> + '_ {
        self.db.tree_names().into_iter().filter_map(|name| {
            let name = String::from_utf8_lossy(&name).into_owned();
            let host = name.strip_prefix("answers@")?.to_string();
            self.db.open_tree(&name).ok().map(|t| (host, t))
        })
    }

    /// Entries by host, status and age, and the store's size on disk.
    pub fn stats(&self, now_ms: i64) -> Result<CacheStats, StateError> {
        let mut stats = CacheStats::default();
        for (host, tree) in self.answer_trees() {
            let dictionary = self.dictionary(&host)?;
            let host_stats = stats.hosts.entry(host).or_default();
            for item in tree.iter() {
                let (_, bytes) = item.map_err(|e| self.io(e))?;
                let (at, id) = self.entry(&bytes, &dictionary)?;
                *host_stats
                    .by_status
                    .entry(status_name(&dictionary.answers[id as usize]).into())
                    .or_default() += 1;
                host_stats.by_age.count(now_ms - at);
                stats.entries += 1;
            }
        }
        stats.size_on_disk_bytes = self.db.size_on_disk().map_err(|e| self.io(e))?;
        Ok(stats)
    }

    /// Removes every answer checked more than `age` ago; returns how many.
    pub fn purge_older_than(&self, age: Duration, now_ms: i64) -> Result<u64, StateError> {
        let cutoff = now_ms - age.as_millis() as i64;
        let mut removed = 0;
        for (host, tree) in self.answer_trees() {
            let dictionary = self.dictionary(&host)?;
            let mut batch = sled::Batch::default();
            for item in tree.iter() {
                let (key, bytes) = item.map_err(|e| self.io(e))?;
                if self.entry(&bytes, &dictionary)?.0 < cutoff {
                    batch.remove(key);
                    removed += 1;
                }
            }
            tree.apply_batch(batch).map_err(|e| self.io(e))?;
            let left = tree.len() as u64;
            self.set_entries_estimate(&host, |_| left)?;
        }
        self.db.flush().map_err(|e| self.io(e))?;
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

    #[test]
    fn commits_survive_reopening_and_are_keyed_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let n = E164(79161234567);
        {
            let store = StateStore::open(dir.path()).unwrap();
            store
                .commit(
                    "smsc.ru",
                    &[(
                        n,
                        StoredAnswer {
                            checked_at_ms: 5,
                            answer: info(),
                        },
                    )],
                )
                .unwrap();
        }
        let store = StateStore::open(dir.path()).unwrap();
        let ttl = Ttl {
            found: Duration::from_secs(60),
            not_found: Duration::from_secs(60),
        };
        let one: PlHashMap<E164, ()> = [(n, ())].into_iter().collect();
        let book = store.get_fresh("smsc.ru", &one, ttl, 5).unwrap();
        assert_eq!(book.get(&n), Some((&info(), 5)));
        assert!(store.get_fresh("smsc.kz", &one, ttl, 5).unwrap().is_empty());
        // Stale answers are left out.
        assert!(store
            .get_fresh("smsc.ru", &one, ttl, 61_000)
            .unwrap()
            .is_empty());
        // Whether scanned (a good share of the store) or looked up one by one, the same answers.
        let many: Vec<(E164, StoredAnswer)> = (0..50)
            .map(|i| {
                (
                    E164(79_100_000_000 + i),
                    StoredAnswer {
                        checked_at_ms: 5,
                        answer: NumberAnswer::NotFound,
                    },
                )
            })
            .collect();
        store.commit("smsc.ru", &many).unwrap();
        let few: PlHashMap<E164, ()> = [(n, ()), (E164(79_100_000_007), ())].into_iter().collect();
        let looked_up = store.get_fresh("smsc.ru", &few, ttl, 5).unwrap();
        let all: PlHashMap<E164, ()> = many
            .iter()
            .map(|(n, _)| (*n, ()))
            .chain([(n, ())])
            .collect();
        let scanned = store.get_fresh("smsc.ru", &all, ttl, 5).unwrap();
        assert_eq!(looked_up.len(), 2);
        assert_eq!(scanned.len(), 51);
        assert_eq!(
            looked_up.get(&E164(79_100_000_007)),
            scanned.get(&E164(79_100_000_007))
        );
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
            StateStore::open(dir.path()),
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
        assert_eq!(store.stats(now).unwrap().entries, 2);
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
