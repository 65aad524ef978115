//! The enriched Parquet file: input columns untouched, enrichment columns added per phone column.
//!
//! Contract: only this module writes the output. [`OutputFile::create`] writes to a temporary
//! file beside the target; [`OutputFile::finish`] syncs it and renames it into place, so the
//! target path holds either nothing new or a complete file. A file that is never finished is
//! removed. [`enrichment_columns`] builds the added columns for one batch, typed as documented
//! in [`ENRICHMENT_COLUMNS`].

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use polars::prelude::*;

use crate::provider::OperatorInfo;

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

/// A text field, null when missing or empty.
fn text(v: Option<&String>) -> Option<&str> {
    v.filter(|s| !s.is_empty()).map(String::as_str)
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

/// Builds one phone column's enrichment columns for a batch, one `Enrichment` per row.
pub fn enrichment_columns<'a>(
    prefix: &str,
    rows: impl ExactSizeIterator<Item = Enrichment<'a>>,
) -> Vec<Column> {
    let n = rows.len();
    let name = |s: &str| PlSmallStr::from(format!("{prefix}{s}"));
    let mut e164 = StringChunkedBuilder::new(name("e164"), n);
    let mut status = StringChunkedBuilder::new(name("status"), n);
    let mut country = StringChunkedBuilder::new(name("country"), n);
    let mut operator = StringChunkedBuilder::new(name("operator"), n);
    let mut region = StringChunkedBuilder::new(name("region"), n);
    let mut mcc = PrimitiveChunkedBuilder::<UInt16Type>::new(name("mcc"), n);
    let mut mnc = StringChunkedBuilder::new(name("mnc"), n);
    let mut tz = PrimitiveChunkedBuilder::<Int8Type>::new(name("tz"), n);
    let mut checked = PrimitiveChunkedBuilder::<Int64Type>::new(name("checked_at"), n);
    let mut digits = String::with_capacity(16);
    for row in rows {
        match row.e164 {
            Some(d) => {
                use std::fmt::Write;
                digits.clear();
                let _ = write!(digits, "+{d}");
                e164.append_value(&digits);
            }
            None => e164.append_null(),
        }
        status.append_option(row.status.map(Status::as_str));
        let info = row.info;
        country.append_option(text(info.map(|i| &i.country)));
        operator.append_option(text(info.map(|i| &i.operator)));
        region.append_option(text(info.map(|i| &i.region)));
        mcc.append_option(info.and_then(|i| i.mcc));
        mnc.append_option(text(info.map(|i| &i.mnc)));
        tz.append_option(info.and_then(|i| i.tz));
        checked.append_option(row.checked_at_ms.map(|ms| ms * 1000));
    }
    vec![
        e164.finish().into_column(),
        status.finish().into_column(),
        country.finish().into_column(),
        operator.finish().into_column(),
        region.finish().into_column(),
        mcc.finish().into_column(),
        mnc.finish().into_column(),
        tz.finish().into_column(),
        checked
            .finish()
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column(),
    ]
}

/// The `ARROW:schema` metadata entry, declaring text as `string` (not polars' `string_view`)
/// so that every Arrow reader, old or new, sees plain strings. The Parquet data is the same.
fn portable_arrow_schema(schema: &Schema) -> (String, String) {
    use polars_arrow::datatypes::ArrowDataType;
    let mut arrow = schema.to_arrow(CompatLevel::oldest());
    for field in arrow.iter_values_mut() {
        field.dtype = match &field.dtype {
            ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View => ArrowDataType::Utf8,
            ArrowDataType::LargeBinary | ArrowDataType::BinaryView => ArrowDataType::Binary,
            other => other.clone(),
        };
    }
    let kv = polars_parquet::write::schema_to_metadata_key(&arrow);
    (kv.key, kv.value.unwrap_or_default())
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

/// The output being written: a temporary file until [`OutputFile::finish`].
pub struct OutputFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<polars::io::parquet::write::BatchedWriter<File>>,
    /// The `ARROW:schema` entry written in the footer.
    arrow_schema: (String, String),
    rows: u64,
}

impl OutputFile {
    pub fn create(target: &Path, schema: &Schema) -> Result<OutputFile> {
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
        let temp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(schema)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("starting the Parquet writer for {}", temp.display()))?;
        Ok(OutputFile {
            target: target.to_path_buf(),
            temp,
            writer: Some(writer),
            arrow_schema: portable_arrow_schema(schema),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &mut DataFrame) -> Result<()> {
        batch.align_chunks_par();
        let writer = self.writer.as_mut().expect("written after finish");
        writer
            .write_batch(batch)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("writing {}", self.temp.display()))?;
        self.rows += batch.height() as u64;
        Ok(())
    }

    /// Completes the file with `metadata` (the run's figures are known only at its end) and
    /// moves it into place. Returns the rows written.
    pub fn finish(mut self, metadata: Vec<(String, String)>) -> Result<u64> {
        let writer = self.writer.take().expect("finished once");
        let key_values = std::iter::once(self.arrow_schema.clone())
            .chain(metadata)
            .map(|(key, value)| polars_parquet::write::KeyValue {
                key,
                value: Some(value),
            })
            .collect();
        writer
            .get_writer()
            .lock()
            .unwrap()
            .end(Some(key_values))
            .map_err(anyhow::Error::from)
            .with_context(|| format!("finishing {}", self.temp.display()))?;
        drop(writer);
        // fsync through a fresh handle flushes the file's pages all the same.
        File::open(&self.temp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", self.temp.display()))?;
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
