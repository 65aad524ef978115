//! `cache export` and `cache import`: a state store's answers as a Parquet file any reader can
//! query, and such files merged into a store. How shards meet again (`run --shard I/N`, one
//! export per shard, every export imported into one state, a last run writes the output).
//!
//! Contract: [`export`] writes every stored answer of every host, one row each: `host`, then the
//! columns a run's output adds, without prefix and with the output's types and statuses
//! (`e164` as `+79161234567`, `status` `ok`/`not_found`/`invalid_number`, `country`,
//! `operator`, `region`, `mcc`, `mnc`, `tz`, `checked_at` in µs UTC), to a temporary file
//! renamed into place, so the path only ever holds a whole file. [`import`] reads every file
//! whole and checks every row before it changes anything: a file or row that is not such an
//! answer is an [`ExchangeError`] naming it, and nothing is merged. Then, per host, an answer
//! replaces the stored one only when it was checked at a later second (the newer wins; an
//! older or equally old one never replaces what the store holds), committed as a run commits.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::normalize::E164;
use crate::output::{enrichment_columns, Enrichment, Status};
use crate::progress::thousands;
use crate::provider::{NumberAnswer, OperatorInfo};
use crate::state::{StateError, StateStore, StoredAnswer};

/// Rows per row group written, and answers per block committed.
const CHUNK: usize = 100_000;

/// Why an export or an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The state store could not be read or written.
    #[error(transparent)]
    Store(#[from] StateError),
    /// A file could not be read as Parquet, or written.
    #[error("{doing} {}", path.display())]
    File {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file's columns are not an export's.
    #[error("{}: {what}", path.display())]
    Columns { path: PathBuf, what: String },
    /// A row is not an answer.
    #[error("{}, row {row}: {what}", path.display())]
    Row {
        path: PathBuf,
        row: usize,
        what: String,
    },
}

/// What an export wrote: answers per host.
#[derive(Debug, Default)]
pub struct Exported {
    pub hosts: BTreeMap<String, u64>,
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.hosts.values().sum();
        write!(f, "exported {} answers", thousands(total))?;
        for (host, n) in &self.hosts {
            write!(f, "\n  {host}  {}", thousands(*n))?;
        }
        Ok(())
    }
}

/// What an import read and merged.
#[derive(Debug, Default)]
pub struct Imported {
    pub files: usize,
    /// Rows read, over every file.
    pub rows: u64,
    /// Answers committed: newer than the store's, or for numbers it did not hold.
    pub newer: u64,
    /// Answers left out: the store's (or another file's) was as new or newer.
    pub kept_out: u64,
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} files, {} answers: {} newer than the store's, {} older or as old left out",
            self.files,
            thousands(self.rows),
            thousands(self.newer),
            thousands(self.kept_out)
        )
    }
}

impl ExchangeError {
    /// `path` could not be used while `doing`.
    fn file<'a, E>(path: &'a Path, doing: &'static str) -> impl Fn(E) -> ExchangeError + 'a
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        move |source| ExchangeError::File {
            path: path.to_path_buf(),
            doing,
            source: source.into(),
        }
    }
}

/// Writes every answer `store` holds to `path`, as the module's contract says; a temporary
/// file left by a failure is removed.
pub fn export(store: &StateStore, path: &Path) -> Result<Exported, ExchangeError> {
    let temporary = path.with_extension("parquet.tmp");
    let exported = write_export(store, &temporary).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })?;
    std::fs::rename(&temporary, path).map_err(ExchangeError::file(path, "moving into place"))?;
    Ok(exported)
}

/// Every answer of `store` written and synced to `temporary`, a row group per [`CHUNK`].
fn write_export(store: &StateStore, temporary: &Path) -> Result<Exported, ExchangeError> {
    let writing = ExchangeError::file(temporary, "writing");
    let file = File::create(temporary).map_err(ExchangeError::file(temporary, "creating"))?;
    let mut writer = ParquetWriter::new(&file)
        .with_compression(ParquetCompression::Zstd(None))
        .batched(&export_schema())
        .map_err(&writing)?;
    let mut exported = Exported::default();
    for host in store.hosts() {
        let book = store.answers(&host)?;
        let mut chunk = Vec::with_capacity(CHUNK.min(book.len()));
        let mut answers = book.iter().peekable();
        while let Some(answer) = answers.next() {
            chunk.push(answer);
            if chunk.len() == CHUNK || answers.peek().is_none() {
                let df = answers_frame(&host, &chunk).map_err(&writing)?;
                writer.write_batch(&df).map_err(&writing)?;
                chunk.clear();
            }
        }
        exported.hosts.insert(host, book.len() as u64);
    }
    writer.finish().map_err(&writing)?;
    file.sync_all()
        .map_err(ExchangeError::file(temporary, "syncing"))?;
    Ok(exported)
}

/// One row group of an export: `host`, then the added columns of `answers`.
fn answers_frame(host: &str, answers: &[(E164, &NumberAnswer, i64)]) -> PolarsResult<DataFrame> {
    let rows = answers.iter().map(|(n, answer, at_ms)| Enrichment {
        e164: Some(n.0),
        status: Some(Status::of(answer)),
        info: match answer {
            NumberAnswer::Found(info) => Some(info),
            _ => None,
        },
        checked_at_ms: Some(*at_ms),
    });
    let mut columns = vec![Column::new("host".into(), vec![host; answers.len()])];
    columns.extend(enrichment_columns("", rows));
    DataFrame::new(answers.len(), columns)
}

/// The columns of an export, in order.
fn export_schema() -> Schema {
    let mut columns = vec![Column::new_empty("host".into(), &DataType::String)];
    columns.extend(enrichment_columns("", std::iter::empty()));
    columns
        .iter()
        .map(|c| Field::new(c.name().clone(), c.dtype().clone()))
        .collect()
}

/// Merges the answers in `files` into `store`, as the module's contract says.
pub fn import(store: &StateStore, files: &[PathBuf]) -> Result<Imported, ExchangeError> {
    let mut imported = Imported {
        files: files.len(),
        ..Default::default()
    };
    // The newest answer per host and number over every file.
    let mut newest: BTreeMap<String, HashMap<E164, StoredAnswer>> = BTreeMap::new();
    for path in files {
        for (host, number, answer) in read_answers(path)? {
            imported.rows += 1;
            let by_number = newest.entry(host).or_default();
            if by_number
                .get(&number)
                .is_none_or(|held| second(held) < second(&answer))
            {
                by_number.insert(number, answer);
            }
        }
    }
    for (host, answers) in newest {
        let book = store.answers(&host)?;
        let newer: Vec<(E164, StoredAnswer)> = answers
            .into_iter()
            .filter(|(n, answer)| {
                book.get(n)
                    .is_none_or(|(_, at_ms)| at_ms.div_euclid(1000) < second(answer))
            })
            .collect();
        for chunk in newer.chunks(CHUNK) {
            store.commit(&host, chunk)?;
        }
        imported.newer += newer.len() as u64;
    }
    imported.kept_out = imported.rows - imported.newer;
    Ok(imported)
}

/// The second an answer was checked at (the store keeps seconds).
fn second(answer: &StoredAnswer) -> i64 {
    answer.checked_at_ms.div_euclid(1000)
}

/// Every row of the export `path` as (host, number, answer), or the first that is not one.
fn read_answers(path: &Path) -> Result<Vec<(String, E164, StoredAnswer)>, ExchangeError> {
    let file = File::open(path).map_err(ExchangeError::file(path, "opening"))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(ExchangeError::file(path, "reading"))?;
    let columns = ExportColumns::of(&df, path)?;
    (0..df.height())
        .map(|i| {
            columns.row(i).map_err(|what| ExchangeError::Row {
                path: path.to_path_buf(),
                row: i + 1,
                what,
            })
        })
        .collect()
}

/// An export's columns, each in the type an export writes.
struct ExportColumns {
    text: [StringChunked; 7],
    mcc: UInt16Chunked,
    tz: Int8Chunked,
    checked_at: Int64Chunked,
}

/// The text columns, in the order `ExportColumns::text` holds them.
const TEXT: [&str; 7] = [
    "host", "e164", "status", "country", "operator", "region", "mnc",
];

impl ExportColumns {
    fn of(df: &DataFrame, path: &Path) -> Result<ExportColumns, ExchangeError> {
        let wrong = |what: String| ExchangeError::Columns {
            path: path.to_path_buf(),
            what,
        };
        let column = |name: &str, dtype: &DataType| -> Result<Column, ExchangeError> {
            let column = df.column(name).map_err(|_| {
                wrong(format!(
                    "no column `{name}`: not a file `phone-enrich cache export` wrote"
                ))
            })?;
            column.strict_cast(dtype).map_err(|_| {
                wrong(format!(
                    "column `{name}` is {}, not {dtype}",
                    column.dtype()
                ))
            })
        };
        let text = |name: &str| -> Result<StringChunked, ExchangeError> {
            Ok(column(name, &DataType::String)?
                .str()
                .expect("cast")
                .clone())
        };
        let checked_at = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
        Ok(ExportColumns {
            text: [
                text(TEXT[0])?,
                text(TEXT[1])?,
                text(TEXT[2])?,
                text(TEXT[3])?,
                text(TEXT[4])?,
                text(TEXT[5])?,
                text(TEXT[6])?,
            ],
            mcc: column("mcc", &DataType::UInt16)?
                .u16()
                .expect("cast")
                .clone(),
            tz: column("tz", &DataType::Int8)?.i8().expect("cast").clone(),
            checked_at: column("checked_at", &checked_at)?
                .datetime()
                .expect("cast")
                .physical()
                .clone(),
        })
    }

    /// Row `i` as an answer, or what is wrong with it.
    fn row(&self, i: usize) -> Result<(String, E164, StoredAnswer), String> {
        let text = |c: usize| self.text[c].get(i).unwrap_or("");
        let host = text(0);
        if host.is_empty() {
            return Err("no host".into());
        }
        let number =
            E164::from_digits(text(1)).ok_or_else(|| format!("`{}` is not a number", text(1)))?;
        let answer = match text(2) {
            "ok" => NumberAnswer::Found(OperatorInfo {
                country: text(3).into(),
                operator: text(4).into(),
                region: text(5).into(),
                mcc: self.mcc.get(i),
                mnc: text(6).into(),
                tz: self.tz.get(i),
            }),
            "not_found" => NumberAnswer::NotFound,
            "invalid_number" => NumberAnswer::Rejected,
            other => return Err(format!("`{other}` is not a stored answer's status")),
        };
        let at_us = self.checked_at.get(i).ok_or("no checked_at")?;
        let stored = StoredAnswer {
            checked_at_ms: at_us.div_euclid(1000),
            answer,
        };
        Ok((host.to_string(), number, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(operator: &str) -> NumberAnswer {
        NumberAnswer::Found(OperatorInfo {
            operator: operator.into(),
            ..OperatorInfo::example()
        })
    }

    fn at(second: i64, answer: NumberAnswer) -> StoredAnswer {
        StoredAnswer {
            checked_at_ms: second * 1000,
            answer,
        }
    }

    /// Every answer of `host` in `store`: number → (second, answer).
    fn answers(store: &StateStore, host: &str) -> BTreeMap<u64, (i64, NumberAnswer)> {
        let book = store.answers(host).unwrap();
        book.iter()
            .map(|(n, a, ms)| (n.0, (ms / 1000, a.clone())))
            .collect()
    }

    #[test]
    fn an_export_imported_into_another_store_gives_every_answer_back() {
        let dir = tempfile::tempdir().unwrap();
        let from = StateStore::open(&dir.path().join("from")).unwrap();
        let kinds = [found("МТС"), NumberAnswer::NotFound, NumberAnswer::Rejected];
        let batch: Vec<(E164, StoredAnswer)> = (0..30u64)
            .map(|i| {
                let answer = kinds[i as usize % 3].clone();
                (E164(79161234500 + i), at(1_700_000_000 + i as i64, answer))
            })
            .collect();
        from.commit("smsc.ru", &batch).unwrap();
        from.commit("sandbox", &batch[..5]).unwrap();
        let file = dir.path().join("answers.parquet");
        let exported = export(&from, &file).unwrap();
        assert_eq!(exported.hosts.values().sum::<u64>(), 35);
        let into = StateStore::open(&dir.path().join("into")).unwrap();
        let imported = import(&into, std::slice::from_ref(&file)).unwrap();
        assert_eq!(
            (imported.rows, imported.newer, imported.kept_out),
            (35, 35, 0)
        );
        for host in ["smsc.ru", "sandbox"] {
            assert_eq!(answers(&into, host), answers(&from, host), "{host}");
        }
        // Again: nothing is newer.
        let again = import(&into, &[file]).unwrap();
        assert_eq!((again.newer, again.kept_out), (0, 35));
    }

    #[test]
    fn the_newer_answer_per_number_wins_and_an_older_never_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (E164(79161234567), E164(79031234567));
        /// When an answer for the number was checked, if there is one.
        type At = Option<i64>;
        // (stored, in the first file, in the second file, kept)
        let cases: &[(At, At, At, i64)] = &[
            (None, Some(10), None, 10),
            (Some(20), Some(10), None, 20),
            (Some(10), Some(20), None, 20),
            (Some(10), Some(10), None, 10),
            (None, Some(10), Some(30), 30),
            (None, Some(30), Some(10), 30),
            (Some(40), Some(30), Some(20), 40),
        ];
        for (i, (stored, first, second, kept)) in cases.iter().enumerate() {
            let case = dir.path().join(i.to_string());
            let files: Vec<PathBuf> = [first, second]
                .iter()
                .enumerate()
                .filter_map(|(f, s)| s.map(|s| (f, s)))
                .map(|(f, s)| {
                    let store = StateStore::open(&case.join(format!("file{f}"))).unwrap();
                    let answer = found(&format!("from file {f}"));
                    store
                        .commit(
                            "smsc.ru",
                            &[(a, at(s, answer)), (b, at(s, NumberAnswer::NotFound))],
                        )
                        .unwrap();
                    let path = case.join(format!("file{f}.parquet"));
                    export(&store, &path).unwrap();
                    path
                })
                .collect();
            let store = StateStore::open(&case.join("into")).unwrap();
            if let Some(s) = stored {
                store
                    .commit("smsc.ru", &[(a, at(*s, found("stored")))])
                    .unwrap();
            }
            import(&store, &files).unwrap();
            let held = answers(&store, "smsc.ru");
            assert_eq!(held[&a.0].0, *kept, "case {i}");
            let from_store = stored == &Some(*kept);
            let NumberAnswer::Found(info) = &held[&a.0].1 else {
                panic!("case {i}: {:?}", held[&a.0]);
            };
            assert_eq!(info.operator == "stored", from_store, "case {i}: {info:?}");
        }
    }

    #[test]
    fn a_file_that_is_no_export_is_refused_naming_it_and_nothing_is_merged() {
        let dir = tempfile::tempdir().unwrap();
        let good = StateStore::open(&dir.path().join("good")).unwrap();
        good.commit(
            "sandbox",
            &[(E164(79161234567), at(10, NumberAnswer::NotFound))],
        )
        .unwrap();
        let good_file = dir.path().join("good.parquet");
        export(&good, &good_file).unwrap();
        let write = |name: &str, mut df: DataFrame| {
            let path = dir.path().join(name);
            ParquetWriter::new(File::create(&path).unwrap())
                .finish(&mut df)
                .unwrap();
            path
        };
        let exported = ParquetReader::new(File::open(&good_file).unwrap())
            .finish()
            .unwrap();
        let with = |column: &str, value: &str| {
            let mut df = exported.clone();
            df.with_column(Column::new(column.into(), [value])).unwrap();
            df
        };
        let not_parquet = dir.path().join("text.parquet");
        std::fs::write(&not_parquet, "host,e164\n").unwrap();
        let cases: Vec<(PathBuf, &str)> = vec![
            (not_parquet, "reading"),
            (
                write("no-host.parquet", exported.drop("host").unwrap()),
                "no column `host`",
            ),
            (
                write("status.parquet", with("status", "maybe")),
                "row 1: `maybe` is not",
            ),
            (
                write("number.parquet", with("e164", "+7abc")),
                "row 1: `+7abc` is not a number",
            ),
            (write("host.parquet", with("host", "")), "row 1: no host"),
        ];
        let store = StateStore::open(&dir.path().join("into")).unwrap();
        for (path, want) in cases {
            let err = import(&store, &[good_file.clone(), path.clone()]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(want), "{}: {text}", path.display());
            assert!(text.contains(&*path.to_string_lossy()), "{text}");
        }
        assert!(answers(&store, "sandbox").is_empty(), "nothing merged");
    }
}
