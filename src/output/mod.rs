//! The enriched Parquet file: input columns untouched, enrichment columns added per phone column.
//!
//! Contract: only this module writes the output. [`OutputFile::create`] writes to a temporary
//! file beside the target; row groups are encoded and compressed on any thread by its
//! [`RowGroupEncoder`] and appended in order by [`OutputFile::write`]; [`OutputFile::finish`]
//! writes the footer, syncs the file and renames it into place, so the
//! target path holds either nothing new or a complete file. A file that is never finished is
//! removed. [`added_arrays`] (in `added.rs`) builds the added columns of one frame for the
//! encoder, typed as documented in [`ENRICHMENT_COLUMNS`], the same [`enrichment_columns`] gives
//! as polars columns. [`refuse_writing_input`] (in `guard.rs`) refuses a job whose writing
//! could touch its input.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use polars_arrow::array::{new_empty_array, Array};
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema};
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    array_to_columns, fallible_streaming_iterator, to_parquet_schema, CompressedPage,
    CompressionOptions, Compressor, DynIter, DynStreamingIterator, Encoding as ParquetEncoding,
    FileWriter, KeyValue, SchemaDescriptor, StatisticsOptions, Version, WriteOptions, ZstdLevel,
};

use crate::input::{restore, InputTypes};
use crate::provider::{NumberAnswer, OperatorInfo};

mod added;
mod guard;

pub use added::added_arrays;
pub use guard::refuse_writing_input;

/// The added columns, by suffix after the prefix, with their types.
pub const ENRICHMENT_COLUMNS: &[&str] = &[
    "e164",
    "status",
    "country",
    "operator",
    "region",
    "mcc",
    "mnc",
    "tz",
    "checked_at",
];

fn enrichment_dtype(suffix: &str) -> DataType {
    match suffix {
        "mcc" => DataType::UInt16,
        "tz" => DataType::Int8,
        "checked_at" => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        _ => DataType::String,
    }
}

/// A number's status in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Ok,
    InvalidNumber,
    NotFound,
    Failed,
}

impl Status {
    /// The status of a provider's answer.
    pub fn of(answer: &NumberAnswer) -> Status {
        match answer {
            NumberAnswer::Found(_) => Status::Ok,
            NumberAnswer::NotFound => Status::NotFound,
            NumberAnswer::Rejected => Status::InvalidNumber,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::InvalidNumber => "invalid_number",
            Status::NotFound => "not_found",
            Status::Failed => "failed",
        }
    }
}

/// What the output says of one phone cell.
#[derive(Debug, Clone, Copy)]
pub struct Enrichment<'a> {
    /// The E.164 digits of a valid number (written with a `+` in the output).
    pub e164: Option<u64>,
    /// `None` for an empty cell.
    pub status: Option<Status>,
    pub info: Option<&'a OperatorInfo>,
    /// Unix milliseconds of the provider's answer.
    pub checked_at_ms: Option<i64>,
}

impl Enrichment<'_> {
    pub const EMPTY: Enrichment<'static> = Enrichment {
        e164: None,
        status: None,
        info: None,
        checked_at_ms: None,
    };
}

/// The output schema: the input's, then each phone column's enrichment columns.
pub fn output_schema(input: &Schema, prefixes: &[String]) -> Result<Schema> {
    let mut schema = input.clone();
    for prefix in prefixes {
        for suffix in ENRICHMENT_COLUMNS {
            let name = format!("{prefix}{suffix}");
            if schema.contains(&name) {
                bail!(
                    "output column `{name}` would clash with an input column of that name; set output.column_prefix (or output.column_prefixes) to another prefix"
                );
            }
            schema.with_column(name.into(), enrichment_dtype(suffix));
        }
    }
    Ok(schema)
}

/// One phone column's enrichment columns for a frame, one `Enrichment` per row, as polars
/// columns named with `prefix` (the output's encoder takes [`added_arrays`] instead).
pub fn enrichment_columns<'a>(
    prefix: &str,
    rows: impl ExactSizeIterator<Item = Enrichment<'a>>,
) -> Vec<Column> {
    ENRICHMENT_COLUMNS
        .iter()
        .zip(added_arrays(rows))
        .map(|(suffix, array)| {
            Series::from_arrow(
                format!("{prefix}{suffix}").into(),
                added::undictionary(array),
            )
            .expect("added arrays are of polars' types")
            .into_column()
        })
        .collect()
}

/// The `ARROW:schema` metadata entry: an input column's own type where polars read it as
/// another (see [`InputTypes`]), and text declared as `string` (not polars' `string_view`) so
/// that every Arrow reader, old or new, sees plain strings. The Parquet data is the same.
fn portable_arrow_schema(schema: &Schema, types: &InputTypes) -> (String, String) {
    use polars_arrow::datatypes::ArrowDataType;
    let mut arrow = schema.to_arrow(CompatLevel::oldest());
    for field in arrow.iter_values_mut() {
        field.dtype = match (types.declared(&field.name), &field.dtype) {
            (Some(declared), _) => declared.dtype.clone(),
            (None, ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View) => ArrowDataType::Utf8,
            (None, ArrowDataType::LargeBinary | ArrowDataType::BinaryView) => ArrowDataType::Binary,
            (None, other) => other.clone(),
        };
    }
    let kv = polars_parquet::write::schema_to_metadata_key(&arrow);
    (kv.key, kv.value.unwrap_or_default())
}

/// The temporary file this process writes the output `target` to, beside it.
fn temporary_path(target: &Path) -> PathBuf {
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output_dir(target).join(format!(".{file_name}.{}.tmp", std::process::id()))
}

/// The directory the output `target` is written in.
fn output_dir(target: &Path) -> &Path {
    target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Removes temporary files of this output left by runs that were killed (their process is gone).
fn remove_stale_temporaries(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
        else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            tracing::info!(file = %entry.path().display(), "removing a temporary output left by a killed run");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The output's zstd level. Level 1 rather than zstd's default 3 (polars' and DuckDB's): as
/// measured on the generator's exports, compressing costs a fifth less CPU and the file comes
/// out 1–2% smaller, not larger (BENCHMARKS.md, issue 11).
const ZSTD_LEVEL: i32 = 1;

/// How the output's row groups are encoded: shared by every thread that encodes.
struct Encoding {
    /// The columns as polars turns them into Arrow arrays.
    polars_schema: ArrowSchema,
    /// For each column, the input's own type when its values must be restored to it.
    declared: Vec<Option<ArrowDataType>>,
    /// The columns as encoded: polars' types, input types restored.
    arrow_schema: ArrowSchema,
    parquet_schema: SchemaDescriptor,
    encodings: Vec<Vec<ParquetEncoding>>,
    options: WriteOptions,
}

/// Turns frames into compressed Parquet row groups, on any thread: encoding and compressing
/// are most of the cost of writing, so they happen where the frame was made, in parallel, and
/// [`OutputFile::write`] only appends bytes.
#[derive(Clone)]
pub struct RowGroupEncoder {
    encoding: Arc<Encoding>,
}

/// A row group ready to be appended to the file.
pub struct EncodedRowGroup {
    rows: usize,
    columns: Vec<Vec<CompressedPage>>,
}

impl RowGroupEncoder {
    /// Encodes `input` (the input's columns, in the output schema's order) and `added` (the
    /// added columns, see [`added_arrays`]) as one row group: pages per column,
    /// zstd-compressed, with min/max/null statistics as polars writes them.
    pub fn encode(&self, input: &DataFrame, added: Vec<Box<dyn Array>>) -> Result<EncodedRowGroup> {
        let e = &*self.encoding;
        if input.width() + added.len() != e.arrow_schema.len() {
            bail!(
                "a frame of {} columns for an output of {}",
                input.width() + added.len(),
                e.arrow_schema.len()
            );
        }
        let mut columns = Vec::with_capacity(e.arrow_schema.len());
        for (i, column) in input.columns().iter().enumerate() {
            let field = e.polars_schema.get_at_index(i).expect("checked above").1;
            let mut array = column
                .as_materialized_series()
                .rechunk()
                .to_arrow_with_field(0, std::borrow::Cow::Borrowed(field), true)?;
            if let Some(declared) = &e.declared[i] {
                array = restore(array, declared)?;
            }
            self.encode_column(i, array, &e.encodings[i], &mut columns)?;
        }
        for (i, array) in (input.width()..).zip(added) {
            // Made a dictionary, or plain where its values hardly repeat (see `added`).
            let encodings = match array.dtype() {
                ArrowDataType::Dictionary(..) => &e.encodings[i],
                _ => &[ParquetEncoding::Plain][..],
            };
            self.encode_column(i, array, encodings, &mut columns)?;
        }
        Ok(EncodedRowGroup {
            rows: input.height(),
            columns,
        })
    }

    /// Encodes column `i` with `encodings` (one per leaf) and compresses it, appending its
    /// leaves' pages to `columns`.
    fn encode_column(
        &self,
        i: usize,
        array: Box<dyn Array>,
        encodings: &[ParquetEncoding],
        columns: &mut Vec<Vec<CompressedPage>>,
    ) -> Result<()> {
        let e = &*self.encoding;
        let pages = array_to_columns(
            array,
            e.parquet_schema.fields()[i].clone(),
            e.options,
            encodings,
        )?;
        for leaf in pages {
            let pages =
                leaf.map(|page| page.map_err(|e| ParquetError::FeatureNotSupported(e.to_string())));
            let compressed: Vec<CompressedPage> =
                Compressor::new_from_vec(pages, e.options.compression, vec![])
                    .collect::<Result<_, ParquetError>>()
                    .map_err(|e| anyhow::anyhow!("compressing a column: {e}"))?;
            columns.push(compressed);
        }
        Ok(())
    }
}

/// The output being written: a temporary file until [`OutputFile::finish`].
pub struct OutputFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<FileWriter<BufWriter<File>>>,
    encoder: RowGroupEncoder,
    /// The `ARROW:schema` entry written in the footer.
    arrow_schema: (String, String),
    rows: u64,
}

impl OutputFile {
    /// Starts the output at `target` with `schema`, its input columns declared with the
    /// input's own `types` where polars read them as others.
    pub fn create(target: &Path, schema: &Schema, types: &InputTypes) -> Result<OutputFile> {
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the output directory {}", dir.display()))?;
        let file_name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        remove_stale_temporaries(dir, &file_name);
        let temp = temporary_path(target);
        let file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let polars_schema = schema.to_arrow(CompatLevel::newest());
        let declared: Vec<Option<ArrowDataType>> = polars_schema
            .iter_values()
            .map(|f| types.declared(&f.name).map(|d| d.dtype.clone()))
            .collect();
        let mut arrow_schema = polars_schema.clone();
        for (field, declared) in arrow_schema.iter_values_mut().zip(&declared) {
            if let Some(declared) = declared {
                field.dtype = restore(new_empty_array(field.dtype.clone()), declared)?
                    .dtype()
                    .clone();
            }
        }
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            version: Version::V1,
            compression: CompressionOptions::Zstd(Some(
                ZstdLevel::try_new(ZSTD_LEVEL).expect("a level zstd has"),
            )),
            data_page_size: None,
        };
        let encoding = Encoding {
            polars_schema,
            declared,
            parquet_schema: to_parquet_schema(&arrow_schema)?,
            encodings: polars::io::parquet::write::get_encodings(&arrow_schema).to_vec(),
            arrow_schema: arrow_schema.clone(),
            options,
        };
        let writer = FileWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            arrow_schema,
            options,
        )
        .map_err(anyhow::Error::from)
        .with_context(|| format!("starting the Parquet writer for {}", temp.display()))?;
        Ok(OutputFile {
            target: target.to_path_buf(),
            temp,
            writer: Some(writer),
            encoder: RowGroupEncoder {
                encoding: Arc::new(encoding),
            },
            arrow_schema: portable_arrow_schema(schema, types),
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The encoder for this file's row groups, for any thread.
    pub fn encoder(&self) -> RowGroupEncoder {
        self.encoder.clone()
    }

    /// Appends a row group made by [`OutputFile::encoder`]. Row groups are written in the order
    /// they are given.
    pub fn write(&mut self, group: EncodedRowGroup) -> Result<()> {
        let writer = self.writer.as_mut().expect("written after finish");
        let columns = group.columns.iter().map(|pages| {
            Ok(DynStreamingIterator::new(
                fallible_streaming_iterator::convert(pages.iter().map(PolarsResult::Ok)),
            ))
        });
        writer
            .write(group.rows as u64, DynIter::new(columns))
            .map_err(anyhow::Error::from)
            .with_context(|| format!("writing {}", self.temp.display()))?;
        self.rows += group.rows as u64;
        Ok(())
    }

    /// Completes the file with `metadata` (the run's figures are known only at its end) and
    /// moves it into place. Returns the rows written.
    pub fn finish(mut self, metadata: Vec<(String, String)>) -> Result<u64> {
        let mut writer = self.writer.take().expect("finished once");
        let key_values = std::iter::once(self.arrow_schema.clone())
            .chain(metadata)
            .map(|(key, value)| KeyValue {
                key,
                value: Some(value),
            })
            .collect();
        writer
            .end(Some(key_values))
            .map_err(anyhow::Error::from)
            .with_context(|| format!("finishing {}", self.temp.display()))?;
        let file = writer
            .into_inner()
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", self.temp.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", self.temp.display()))?;
        drop(file);
        std::fs::rename(&self.temp, &self.target).with_context(|| {
            format!(
                "moving {} to {}",
                self.temp.display(),
                self.target.display()
            )
        })?;
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(self.rows)
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
