//! What the cache holds (`cache stats`) and trimming it by age (`cache purge`).
//!
//! Contract: both read every host's answers as a run would, so a damaged store is refused here
//! too; a purge keeps the answers checked within the age as a new snapshot (see
//! [`StateStore::write_snapshot`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{AnswerBook, NumberTable, StateError, StateStore};
use crate::provider::NumberAnswer;

/// What the cache holds, as `phone-enrich cache stats` shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CacheStats {
    /// Per provider host: entries by status and by age.
    pub hosts: BTreeMap<String, HostStats>,
    pub entries: u64,
    pub size_on_disk_bytes: u64,
}

/// One provider host's answers by status (`ok`, `not_found`, `invalid_number`) and by age.
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
    /// snapshots in force).
    pub fn stats(&self, now_ms: i64) -> Result<CacheStats, StateError> {
        let mut stats = CacheStats::default();
        let mut snapshots = 0;
        for host in self.hosts() {
            if let Some(s) = self.record(&host).snapshot {
                let path = self.snapshot_path(&host, s.generation);
                snapshots += std::fs::metadata(&path)
                    .map_err(|e| StateError::io(&path, "reading the size of", e))?
                    .len();
            }
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
        let sled_size = self
            .db
            .size_on_disk()
            .map_err(|e| StateError::sled(&self.dir, "reading the database's size", e))?;
        stats.size_on_disk_bytes = sled_size + snapshots;
        Ok(stats)
    }

    /// Removes every answer checked more than `age` ago; returns how many.
    pub fn purge_older_than(&self, age: Duration, now_ms: i64) -> Result<u64, StateError> {
        let cutoff = now_ms - age.as_millis() as i64;
        let mut removed = 0;
        for host in self.hosts() {
            let (book, _) = self.replay(&host)?;
            let mut kept = AnswerBook::new(
                book.dictionary.clone(),
                NumberTable::with_capacity(book.len()),
            );
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
