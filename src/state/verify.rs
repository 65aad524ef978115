//! Checking a store's parts against MANIFEST: the quick checks every open makes, and the full
//! reading `cache verify` makes.
//!
//! Contract: [`StateStore::open`] refuses a store whose snapshot (header, dictionary, size,
//! checksum), dictionary (length) or log (first and last recorded blocks) is not what MANIFEST
//! records, and takes in what a commit cut short left beyond it (a block flushed before its
//! manifest write, dictionary entries before their block). [`verify`] reads every part whole,
//! every chunk, block and answer, and reports on each, sound or not, changing nothing (it only
//! completes a repair or a rewrite of the database that was already committed). A part that
//! cannot be read because of the environment (a full disk, a permission, ...) is no verdict on
//! the store: [`verify`] stops with [`StateError::Environment`] instead of calling it damaged.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::book::Dictionary;
use super::lock::{open_sled, StoreLock};
use super::log::{
    check_dictionary, check_dictionary_length, check_ids, load_dictionary, log_tree, open_snapshot,
    read_host_log, read_log, snapshot_error,
};
use super::manifest::{self, Found, HostRecord, Manifest};
use super::migrate::{self, hosts_with, Format};
use super::{interrupted, snapshot, Damage, Part, StateError, StateStore};

impl StateStore {
    /// The checks every open makes (see the module's contract), and what a commit cut short
    /// left taken into MANIFEST.
    pub(super) fn check_parts(&self) -> Result<(), StateError> {
        let mut manifest = self.manifest.lock().unwrap();
        let mut next = manifest.current().clone();
        for host in hosts_with(&self.db, "log@") {
            next.hosts.entry(host).or_default();
        }
        for (host, record) in next.hosts.iter_mut() {
            let dictionary = self.dictionary(host)?;
            if let Some(s) = &record.snapshot {
                let path = self.snapshot_path(host, s.generation);
                if let Some(snapshot) = open_snapshot(&self.dir, host, &path, Some(s))? {
                    check_dictionary(&self.dir, host, &dictionary, &snapshot.dictionary)?;
                }
            }
            check_dictionary_length(&self.dir, host, &dictionary, record)?;
            let log = self.log(host)?;
            self.check_log_ends(host, &log, record)?;
            self.adopt(host, &log, record, &dictionary)?;
        }
        if next != *manifest.current() {
            manifest.write(next)?;
        }
        Ok(())
    }

    /// The first and the last block MANIFEST records must be in the log.
    fn check_log_ends(
        &self,
        host: &str,
        log: &sled::Tree,
        record: &HostRecord,
    ) -> Result<(), StateError> {
        let (first, end) = (record.covers_below(), record.log_next);
        for key in [first, end.saturating_sub(1)] {
            if key >= end {
                break;
            }
            let present = log.contains_key(key.to_be_bytes()).map_err(|e| {
                StateError::sled(&self.dir, format!("reading the log of {host}"), e)
            })?;
            if !present {
                let what = format!(
                    "block {key} is missing, of the blocks {first} to {} that MANIFEST records ({} batches of answers)",
                    end - 1,
                    end - first
                );
                return Err(StateError::damaged(
                    &self.dir,
                    Damage::new(Part::Log, Some(host), what),
                ));
            }
        }
        Ok(())
    }

    /// Takes into `record` the blocks after its end (one, from a commit whose manifest write
    /// did not happen) and the dictionary's answers beyond its count.
    fn adopt(
        &self,
        host: &str,
        log: &sled::Tree,
        record: &mut HostRecord,
        dictionary: &Dictionary,
    ) -> Result<(), StateError> {
        let from = record.log_next;
        let seen = read_log(&self.dir, host, log, from..u64::MAX, None, |entries| {
            check_ids(entries, dictionary.len())
        })?;
        if seen.blocks > 0 && seen.next - from != seen.blocks {
            let what = format!(
                "{} blocks after the last one MANIFEST records ({}) do not follow it",
                seen.blocks,
                from.saturating_sub(1)
            );
            return Err(StateError::damaged(
                &self.dir,
                Damage::new(Part::Log, Some(host), what),
            ));
        }
        if seen.blocks > 0 {
            tracing::info!(
                host,
                blocks = seen.blocks,
                "a commit cut short is kept: its block was on disk"
            );
        }
        record.log_next = seen.next.max(from);
        record.log_entries += seen.entries;
        record.answers = record.answers.max(dictionary.len() as u32);
        Ok(())
    }
}

/// What `cache verify` found: every part of a store, sound or not.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub dir: PathBuf,
    /// Every part is sound.
    pub sound: bool,
    pub parts: Vec<PartReport>,
}

/// One part of a store, as `cache verify` found it.
#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    pub part: Part,
    /// The provider host, for a host's snapshot, dictionary or log.
    pub host: Option<String>,
    pub sound: bool,
    /// What it holds, or what is wrong with it.
    pub detail: String,
}

impl Verification {
    /// Adds what was found of `part`; an environment fault is no finding about the store: it
    /// stops the verification, as an error.
    fn add(
        &mut self,
        part: Part,
        host: Option<&str>,
        found: Result<String, StateError>,
    ) -> Result<(), StateError> {
        let (sound, detail) = match found {
            Err(e) if e.is_environment() => return Err(e),
            Ok(detail) => (true, detail),
            Err(StateError::Damaged { damage, .. }) if damage.part == part => (false, damage.what),
            Err(StateError::Damaged { damage, .. }) => (false, damage.to_string()),
            Err(e) => (false, error_chain(&e)),
        };
        self.sound &= sound;
        self.parts.push(PartReport {
            part,
            host: host.map(str::to_string),
            sound,
            detail,
        });
        Ok(())
    }
}

/// An error and its causes, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.sound { "sound" } else { "damaged" };
        writeln!(f, "state store {}: {verdict}", self.dir.display())?;
        for p in &self.parts {
            let status = if p.sound { "sound" } else { "DAMAGED" };
            let name = part_name(p.part);
            match &p.host {
                Some(host) => writeln!(f, "  {status:<8} {name} of {host}: {}", p.detail)?,
                None => writeln!(f, "  {status:<8} {name}: {}", p.detail)?,
            }
        }
        if !self.sound {
            write!(
                f,
                "`phone-enrich cache repair --state {}` rebuilds the store from every answer still readable; the next run then asks only for those lost",
                self.dir.display()
            )?;
        }
        Ok(())
    }
}

/// A part's short name in reports.
pub(super) fn part_name(part: Part) -> &'static str {
    match part {
        Part::Manifest => "manifest",
        Part::Sled => "sled",
        Part::Snapshot => "snapshot",
        Part::Dictionary => "dictionary",
        Part::Log => "log",
    }
}

/// Reads every part of the store in `dir` and reports on each (`cache verify`).
pub fn verify(dir: &Path) -> Result<Verification, StateError> {
    std::fs::metadata(dir).map_err(|e| StateError::io(dir, "opening", e))?;
    let _lock = StoreLock::acquire(dir)?;
    verify_locked(dir)
}

/// [`verify`], the directory's lock held.
pub(super) fn verify_locked(dir: &Path) -> Result<Verification, StateError> {
    interrupted::complete(dir)?;
    let mut report = Verification {
        dir: dir.to_path_buf(),
        sound: true,
        parts: Vec::new(),
    };
    let found = manifest::read(dir)?;
    let (db, format) = match open_sled(&dir.join("db")) {
        Ok(db) => {
            let format = migrate::format_of(dir, &db);
            (Some(db), format)
        }
        Err(e) => (None, Err(e)),
    };
    let damaged = |part, what| StateError::damaged(dir, Damage::new(part, None, what));
    let manifest_part = match (describe(&found), matches!(format, Ok(Format::Current))) {
        (Err(why), _) => Err(why),
        (Ok(None), true) => Err("it is missing, and sled's database is in format 4".to_string()),
        (Ok(None), false) => Ok("none (a new store, or one of an earlier format)".to_string()),
        (Ok(Some(text)), _) => Ok(text),
    };
    report.add(
        Part::Manifest,
        None,
        manifest_part.map_err(|w| damaged(Part::Manifest, w)),
    )?;
    let manifest = match found {
        Found::Sound { manifest, .. } => Some(manifest),
        _ => None,
    };
    let trees = db.as_ref().map_or(0, |db| db.tree_names().len());
    let sled_part = format.and_then(|format| {
        sled_text(format, trees, manifest.as_ref()).map_err(|w| damaged(Part::Sled, w))
    });
    report.add(Part::Sled, None, sled_part)?;
    let files = snapshot::files_in(dir).map_err(|e| StateError::io(dir, "listing", e))?;
    for host in hosts(db.as_ref(), manifest.as_ref(), &files) {
        let record = manifest.as_ref().and_then(|m| m.hosts.get(&host));
        // Without a record, the latest snapshot file is taken for the one in force.
        let latest = files.iter().rev().find(|f| f.1 == host).and_then(|f| f.2);
        let generation = record.map_or(latest, |r| r.snapshot.map(|s| s.generation));
        let snapshot = (record.is_none() || generation.is_some())
            .then(|| dir.join(snapshot::file_name(&host, generation)));
        let host_parts = HostCheck {
            dir,
            db: db.as_ref(),
            host: &host,
            record,
            snapshot,
        };
        host_parts.verify(&mut report)?;
    }
    Ok(report)
}

/// What MANIFEST holds, in a sentence: `Ok(None)` if there is none, `Err` if unreadable.
fn describe(found: &Found) -> Result<Option<String>, String> {
    match found {
        Found::Missing => Ok(None),
        Found::Damaged(why) => Err(why.clone()),
        Found::Sound { manifest, sequence } => {
            let entries: u64 = manifest.hosts.values().map(HostRecord::entries).sum();
            let hosts = manifest.hosts.len();
            let plural = if hosts == 1 { "" } else { "s" };
            Ok(Some(format!(
                "{entries} answers of {hosts} provider host{plural} recorded (version {sequence})"
            )))
        }
    }
}

/// What sled's database holds, in a sentence, or what is wrong with it.
fn sled_text(format: Format, trees: usize, manifest: Option<&Manifest>) -> Result<String, String> {
    match format {
        Format::Current => Ok(format!("format 4, {trees} trees")),
        Format::Three | Format::Two => Ok(format!(
            "an earlier format, converted by the next run; {trees} trees"
        )),
        Format::Unset => match manifest {
            Some(m) if m.records_answers() => Err(super::reads_empty(m)),
            _ => Ok("empty: a new store".to_string()),
        },
        Format::Other(found) => Err(format!("written by an incompatible version ({found})")),
    }
}

/// Every host any part names: MANIFEST, sled's logs and dictionaries, the snapshot files.
pub(super) fn hosts(
    db: Option<&sled::Db>,
    manifest: Option<&Manifest>,
    files: &[(PathBuf, String, Option<u64>)],
) -> BTreeSet<String> {
    let mut hosts: BTreeSet<String> = manifest
        .map(|m| m.hosts.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(db) = db {
        hosts.extend(hosts_with(db, "log@"));
        hosts.extend(hosts_with(db, "dict@"));
    }
    hosts.extend(files.iter().map(|f| f.1.clone()));
    hosts
}

/// One host's parts, to verify: its snapshot file is `snapshot` (`None`: MANIFEST names none).
struct HostCheck<'a> {
    dir: &'a Path,
    db: Option<&'a sled::Db>,
    host: &'a str,
    record: Option<&'a HostRecord>,
    snapshot: Option<PathBuf>,
}

impl HostCheck<'_> {
    /// Reports on the host's dictionary, snapshot and log, read whole.
    fn verify(&self, report: &mut Verification) -> Result<(), StateError> {
        let (dir, host) = (self.dir, self.host);
        let (dictionary, part) = match self.dictionary() {
            Ok(d) => {
                let text = format!("{} answers", d.len());
                let checked = match self.record {
                    Some(r) => check_dictionary_length(dir, host, &d, r).map(|_| text),
                    None => Ok(text),
                };
                (Some(d), checked)
            }
            Err(e) => (None, Err(e)),
        };
        report.add(Part::Dictionary, Some(host), part)?;
        let snapshot = self.snapshot(dictionary.as_ref());
        let covers_below = match &snapshot {
            Ok((_, covers_below)) => *covers_below,
            Err(_) => self.record.map_or(0, HostRecord::covers_below),
        };
        report.add(Part::Snapshot, Some(host), snapshot.map(|(text, _)| text))?;
        report.add(
            Part::Log,
            Some(host),
            self.log(covers_below, dictionary.as_ref()),
        )
    }

    fn unread(&self, part: Part) -> StateError {
        let what = "not read: sled's database did not open";
        StateError::damaged(self.dir, Damage::new(part, Some(self.host), what))
    }

    fn dictionary(&self) -> Result<Dictionary, StateError> {
        let db = self.db.ok_or_else(|| self.unread(Part::Dictionary))?;
        load_dictionary(self.dir, db, self.host)
    }

    /// The snapshot read whole: what it holds, and the log key it covers below.
    fn snapshot(&self, dictionary: Option<&Dictionary>) -> Result<(String, u64), StateError> {
        let (dir, host) = (self.dir, self.host);
        let Some(path) = &self.snapshot else {
            return Ok(("none yet".into(), 0));
        };
        let expected = self.record.and_then(|r| r.snapshot);
        let Some(s) = open_snapshot(dir, host, path, expected.as_ref())? else {
            return Ok(("none".into(), 0));
        };
        if let Some(d) = dictionary {
            check_dictionary(dir, host, d, &s.dictionary)?;
        }
        let answers = dictionary
            .map_or(0, Dictionary::len)
            .max(s.dictionary.len());
        let (entries, covers_below) = (s.entries, s.covers_below);
        s.read_chunks(|chunk| check_ids(chunk, answers))
            .map_err(|e| snapshot_error(dir, host, path, e))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let text = match covers_below {
            0 => format!("{name}: {entries} answers"),
            _ => format!("{name}: {entries} answers, covering the log below key {covers_below}"),
        };
        Ok((text, covers_below))
    }

    /// The log after `covers_below`: the blocks MANIFEST records, or all of them.
    fn log(
        &self,
        covers_below: u64,
        dictionary: Option<&Dictionary>,
    ) -> Result<String, StateError> {
        let (dir, host) = (self.dir, self.host);
        let db = self.db.ok_or_else(|| self.unread(Part::Log))?;
        let answers = dictionary.map_or(usize::MAX, Dictionary::len);
        let seen = read_host_log(dir, db, host, covers_below, self.record, |entries| {
            check_ids(entries, answers)
        })?;
        let mut text = match seen.blocks {
            0 => "empty".to_string(),
            n => format!(
                "{n} blocks (keys {covers_below} to {}), {} answers",
                seen.next - 1,
                seen.entries
            ),
        };
        if let Some(record) = self.record {
            let tree = log_tree(dir, db, host)?;
            let after = read_log(
                dir,
                host,
                &tree,
                record.log_next..u64::MAX,
                None,
                |entries| check_ids(entries, answers),
            )?;
            if after.blocks > 0 {
                text.push_str(&format!(
                    "; and {} blocks ({} answers) after the last MANIFEST records, from a run cut short: the next open takes them in",
                    after.blocks, after.entries
                ));
            }
        }
        Ok(text)
    }
}
