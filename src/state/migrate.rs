//! The store's format, and stores of earlier formats converted when opened.
//!
//! Contract: `meta`'s `format` key says how a database is laid out; a store is read only in the
//! format it says. Format 2 (an entry per number in `answers@HOST`) and format 3 (a version 1
//! snapshot without the dictionary, a log, no manifest) become format 4 the same way: every
//! host's answers are written as a snapshot of generation 1 and recorded in a new MANIFEST,
//! then `meta` says format 4 (the moment the store changes format: interrupted before, the
//! migration starts over on the next open), then what the old format kept is removed.

use std::path::Path;

use super::log::{load_dictionary, log_tree_name, write_snapshot_file, HostParts};
use super::manifest::{HostRecord, Manifest, ManifestFile};
use super::snapshot;
use super::vacuum::VACUUM_KEY;
use super::{AnswerBook, Damage, NumberTable, Part, StateError};

/// Written to the `meta` tree; a store with another value is refused (2 and 3 are migrated).
/// Version 4: MANIFEST beside sled, snapshots by generation holding their dictionary.
pub(super) const FORMAT: &[u8] = b"phone-enrich-state/4";
const FORMAT_3: &[u8] = b"phone-enrich-state/3";
const FORMAT_2: &[u8] = b"phone-enrich-state/2";
const FORMAT_KEY: &[u8] = b"format";

/// The format a database says it is in.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Format {
    Current,
    Three,
    Two,
    /// No format recorded: a new database, or one that lost everything.
    Unset,
    Other(String),
}

fn sled_error<'a>(dir: &'a Path, doing: &'static str) -> impl Fn(sled::Error) -> StateError + 'a {
    move |e| StateError::sled(dir, doing, e)
}

/// The format `db` records.
pub(super) fn format_of(dir: &Path, db: &sled::Db) -> Result<Format, StateError> {
    let found = db
        .open_tree("meta")
        .and_then(|meta| meta.get(FORMAT_KEY))
        .map_err(sled_error(dir, "reading the store's format"))?;
    Ok(match found.as_deref() {
        None => Format::Unset,
        Some(FORMAT) => Format::Current,
        Some(FORMAT_3) => Format::Three,
        Some(FORMAT_2) => Format::Two,
        Some(other) => Format::Other(String::from_utf8_lossy(other).into_owned()),
    })
}

/// Records the current format in `db`, flushed.
pub(super) fn set_format(dir: &Path, db: &sled::Db) -> Result<(), StateError> {
    let meta = db
        .open_tree("meta")
        .map_err(sled_error(dir, "recording the store's format"))?;
    meta.insert(FORMAT_KEY, FORMAT)
        .and_then(|_| db.flush())
        .map_err(sled_error(dir, "recording the store's format"))?;
    Ok(())
}

/// The hosts whose trees in `db` are named `prefix` + host.
pub(super) fn hosts_with(db: &sled::Db, prefix: &str) -> Vec<String> {
    db.tree_names()
        .into_iter()
        .filter_map(|name| {
            String::from_utf8_lossy(&name)
                .strip_prefix(prefix)
                .map(str::to_string)
        })
        .collect()
}

/// Format 3 to 4: each host's version 1 snapshot and log, read as format 3 read them, become
/// its snapshot of generation 1, covering every log key.
pub(super) fn from_3(dir: &Path, db: &sled::Db) -> Result<ManifestFile, StateError> {
    let mut manifest = Manifest::default();
    let hosts = hosts_with(db, "log@");
    for host in &hosts {
        let parts = HostParts {
            dir,
            db,
            host,
            snapshot: Some(dir.join(snapshot::file_name(host, None))),
            record: None,
        };
        let (book, seen) = parts.read(load_dictionary(dir, db, host)?)?;
        tracing::info!(
            host,
            answers = book.len(),
            "migrating the state store from format 3 to format 4"
        );
        manifest
            .hosts
            .insert(host.clone(), installed(dir, host, seen.next, &book)?);
    }
    let old_trees: Vec<String> = hosts.iter().map(|h| log_tree_name(h)).collect();
    let manifest = install(dir, db, manifest, &old_trees, b"logged@")?;
    for host in &hosts {
        let legacy = dir.join(snapshot::file_name(host, None));
        match std::fs::remove_file(&legacy) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StateError::io(&legacy, "removing", e))
            }
            _ => {}
        }
    }
    Ok(manifest)
}

/// Format 2 to 4: format 2 kept one sled entry per number (`answers@HOST`: number → postcard
/// `(checked_at_ms, answer id)`) with the same dictionaries.
pub(super) fn from_2(dir: &Path, db: &sled::Db) -> Result<ManifestFile, StateError> {
    let mut manifest = Manifest::default();
    let hosts = hosts_with(db, "answers@");
    for host in &hosts {
        let damaged =
            |what: String| StateError::damaged(dir, Damage::new(Part::Log, Some(host), what));
        let read_error =
            |e| StateError::sled(dir, format!("reading the format 2 answers of {host}"), e);
        let old = db
            .open_tree(format!("answers@{host}"))
            .map_err(read_error)?;
        tracing::info!(
            host,
            entries = old.len(),
            "migrating the state store from format 2 to format 4"
        );
        let mut book = AnswerBook::new(
            load_dictionary(dir, db, host)?,
            NumberTable::with_capacity(1 << 16),
        );
        for item in old.iter() {
            let (key, bytes) = item.map_err(read_error)?;
            let number = <[u8; 8]>::try_from(key.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| damaged("a format 2 key is not a number".into()))?;
            let (at_ms, id): (i64, u32) = postcard::from_bytes(&bytes)
                .map_err(|e| damaged(format!("a format 2 entry does not decode: {e}")))?;
            if id as usize >= book.answer_ids() {
                return Err(damaged(format!(
                    "an entry names answer {id}, beyond the dictionary"
                )));
            }
            book.numbers
                .insert(number, id, super::book::to_second(at_ms));
        }
        manifest
            .hosts
            .insert(host.clone(), installed(dir, host, 0, &book)?);
    }
    let old_trees: Vec<String> = hosts.iter().map(|h| format!("answers@{h}")).collect();
    install(dir, db, manifest, &old_trees, b"count@")
}

/// Writes `book` as `host`'s snapshot of generation 1, covering the log below `log_next`.
fn installed(
    dir: &Path,
    host: &str,
    log_next: u64,
    book: &AnswerBook,
) -> Result<HostRecord, StateError> {
    Ok(HostRecord {
        snapshot: Some(write_snapshot_file(dir, host, 1, log_next, book)?),
        log_next,
        log_entries: 0,
        answers: book.answer_ids() as u32,
    })
}

/// Puts a migrated store in force (MANIFEST, then the format in `meta`), then removes what the
/// old format kept: `old_trees` and `meta` keys starting with `old_meta_prefix`.
fn install(
    dir: &Path,
    db: &sled::Db,
    manifest: Manifest,
    old_trees: &[String],
    old_meta_prefix: &[u8],
) -> Result<ManifestFile, StateError> {
    let manifest = ManifestFile::create(dir, manifest)?;
    set_format(dir, db)?;
    let cleaning = sled_error(dir, "removing what the old format kept");
    for tree in old_trees {
        db.drop_tree(tree).map_err(&cleaning)?;
    }
    let meta = db.open_tree("meta").map_err(&cleaning)?;
    for key in meta.scan_prefix(old_meta_prefix).keys() {
        meta.remove(key.map_err(&cleaning)?).map_err(&cleaning)?;
    }
    meta.insert(VACUUM_KEY, b"1").map_err(&cleaning)?;
    db.flush().map_err(&cleaning)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::E164;
    use crate::provider::{NumberAnswer, OperatorInfo};
    use crate::state::{StateStore, Ttl};
    use std::time::Duration;

    fn info() -> NumberAnswer {
        NumberAnswer::Found(OperatorInfo::example())
    }

    fn ttl() -> Ttl {
        Ttl {
            found: Duration::from_secs(1_000_000),
            not_found: Duration::from_secs(1_000_000),
        }
    }

    /// A database recording `format`, with a dictionary of `info()` (id 0) and `NotFound` (id
    /// 1) for smsc.ru, as formats 2 and 3 kept it.
    fn database(dir: &Path, format: &[u8]) -> sled::Db {
        let db = sled::open(dir.join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(FORMAT_KEY, format)
            .unwrap();
        let dict = db
            .open_tree(super::super::log::dict_tree_name("smsc.ru"))
            .unwrap();
        for (id, answer) in [info(), NumberAnswer::NotFound].iter().enumerate() {
            dict.insert(
                (id as u32).to_be_bytes(),
                postcard::to_stdvec(answer).unwrap(),
            )
            .unwrap();
        }
        db.flush().unwrap();
        db
    }

    fn check_migrated(dir: &Path) {
        let store = StateStore::open(dir).unwrap();
        let book = store.load("smsc.ru", ttl(), 0).unwrap();
        assert_eq!(book.len(), 5000);
        assert_eq!(book.get(&E164(79_000_000_002)), Some((&info(), 2_000)));
        assert_eq!(
            book.get(&E164(79_000_000_003)),
            Some((&NumberAnswer::NotFound, 3_000))
        );
        let names = store.db.tree_names();
        assert!(!names.iter().any(|t| t.starts_with(b"answers@")));
        assert_eq!(format_of(dir, &store.db).unwrap(), Format::Current);
        drop(store);
        let files: Vec<_> = snapshot::files_in(dir)
            .unwrap()
            .into_iter()
            .map(|f| (f.1, f.2))
            .collect();
        assert_eq!(files, [("smsc.ru".to_string(), Some(1))]);
        // Opened again, it is a format 4 store (rewritten once, without the old trees).
        let store = StateStore::open(dir).unwrap();
        assert_eq!(store.stats(0).unwrap().entries, 5000);
    }

    #[test]
    fn a_format_2_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = database(dir.path(), FORMAT_2);
            let answers = db.open_tree("answers@smsc.ru").unwrap();
            for i in 0..5000u64 {
                let entry = postcard::to_stdvec(&(i as i64 * 1000, (i % 2) as u32)).unwrap();
                answers
                    .insert((79_000_000_000 + i).to_be_bytes(), entry)
                    .unwrap();
            }
            db.flush().unwrap();
        }
        check_migrated(dir.path());
    }

    /// A format 3 store as version 3 wrote it: a version 1 snapshot of the first 3000 numbers
    /// covering log keys below 4, and blocks 4 and 5 with the other 2000.
    fn write_format_3(dir: &Path) {
        let db = database(dir, FORMAT_3);
        let entry = |i: u64| {
            let mut e = (79_000_000_000 + i).to_le_bytes().to_vec();
            e.extend_from_slice(&(i as u32).to_le_bytes());
            e.extend_from_slice(&((i % 2) as u32).to_le_bytes());
            e
        };
        let log = db.open_tree(log_tree_name("smsc.ru")).unwrap();
        for (key, numbers) in [(4u64, 3000..4000u64), (5, 4000..5000)] {
            let mut block = vec![1u8];
            numbers.for_each(|i| block.extend(entry(i)));
            log.insert(key.to_be_bytes(), block).unwrap();
        }
        db.flush().unwrap();
        let entries: Vec<u8> = (0..3000).flat_map(entry).collect();
        let mut file = b"phone-enrich-snapshot/1\n".to_vec();
        file.extend_from_slice(&7u16.to_le_bytes());
        file.extend_from_slice(b"smsc.ru");
        file.extend_from_slice(&4u64.to_le_bytes());
        file.extend_from_slice(&3000u64.to_le_bytes());
        file.extend_from_slice(&entries);
        file.extend_from_slice(&super::super::checksum::Checksum::of(&entries).to_le_bytes());
        std::fs::write(dir.join(snapshot::file_name("smsc.ru", None)), file).unwrap();
    }

    #[test]
    fn a_format_3_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        write_format_3(dir.path());
        check_migrated(dir.path());
    }

    #[test]
    fn a_migration_interrupted_before_the_format_changes_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        write_format_3(dir.path());
        {
            // As far as a migration goes before `meta` says format 4.
            let mut manifest = Manifest::default();
            let book = AnswerBook::default();
            manifest.hosts.insert(
                "smsc.ru".into(),
                installed(dir.path(), "smsc.ru", 6, &book).unwrap(),
            );
            ManifestFile::create(dir.path(), manifest).unwrap();
        }
        check_migrated(dir.path());
    }

    #[test]
    fn another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(database(dir.path(), b"phone-enrich-state/0"));
        assert!(matches!(
            StateStore::open(dir.path()),
            Err(StateError::Incompatible { .. })
        ));
    }
}
