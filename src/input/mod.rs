//! Reading the input file as a stream of polars batches, in row order.
//!
//! Contract: [`InputReader::open`] checks the file and its header or schema (the phone columns
//! must exist) and yields the file in order as [`Piece`]s of at most `batch_rows` rows, each
//! turned into a [`DataFrame`] batch by [`Piece::into_batch`]: reading is sequential, parsing
//! can run on any thread. A CSV piece is a run of whole records, cut where a line feed falls
//! outside quotes (the `csv` crate's own reading of quotes), so parsing pieces apart gives the
//! records parsing the whole would. CSV: a header row, RFC 4180 quoting, `,` `;` tab or `|` (detected from
//! the header when not set), UTF-8 with or without BOM or windows-1251, plain or gzip; every
//! column is read as text, an empty field is null. Parquet: any schema, types kept. Phone
//! columns are also offered as text by [`phone_text`] (integer and float columns converted).
//! Every error names the file, and for CSV the line.
//!
//! The files: [`decode`] turns the file's bytes into UTF-8 text, [`records`] finds record ends
//! in that text, [`csv`] cuts and parses CSV pieces, [`parquet`] streams Parquet batches.

mod csv;
mod decode;
mod parquet;
mod records;

use std::num::NonZeroUsize;
use std::path::Path;

use anyhow::{bail, Result};
use polars::prelude::*;

use self::csv::{CsvChunk, CsvSource};
use self::parquet::ParquetSource;
use crate::config::{InputConfig, InputFormat};

/// The input file, open: its schema, and its pieces in file order.
pub struct InputReader {
    schema: Schema,
    source: Source,
}

enum Source {
    Csv(CsvSource),
    Parquet(ParquetSource),
}

/// Which columns a pass needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// Every column of the input.
    All,
    /// The phone columns only (a pass that writes nothing).
    PhonesOnly,
}

impl InputReader {
    /// Opens the input named by `cfg`, checking its header or schema, for pieces of at most
    /// `batch_rows` rows.
    pub fn open(
        cfg: &InputConfig,
        columns: Columns,
        batch_rows: NonZeroUsize,
    ) -> Result<InputReader> {
        match cfg.format {
            InputFormat::Csv => CsvSource::open(cfg, columns, batch_rows.get()),
            InputFormat::Parquet => ParquetSource::open(cfg, columns, batch_rows),
        }
    }

    /// The schema of the batches this reader yields.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The next piece of the input in file order, for [`Piece::into_batch`] (on any thread).
    pub fn next_piece(&mut self) -> Result<Option<Piece>> {
        Ok(match &mut self.source {
            Source::Csv(s) => s.next_chunk()?.map(Piece::Csv),
            Source::Parquet(s) => s.next_batch()?.map(Piece::Batch),
        })
    }

    /// The next batch, read and parsed on this thread.
    #[cfg(test)]
    pub fn next_batch(&mut self) -> Result<Option<DataFrame>> {
        self.next_piece()?
            .map(|p| p.into_batch(Columns::All))
            .transpose()
    }
}

/// A piece of the input: CSV records still to parse, or a batch Parquet gave.
pub enum Piece {
    /// Whole CSV records, not yet parsed.
    Csv(CsvChunk),
    /// A Parquet batch, already decoded.
    Batch(DataFrame),
}

impl Piece {
    /// The piece as a batch: every column of the reader, or with [`Columns::PhonesOnly`] at
    /// least the phone columns.
    pub fn into_batch(self, columns: Columns) -> Result<DataFrame> {
        match self {
            Piece::Csv(chunk) => chunk.parse(columns),
            Piece::Batch(df) => Ok(df),
        }
    }
}

/// The phone column as text: strings as they are, integers as their digits, whole floats too.
pub fn phone_text(column: &Column, path: &Path) -> Result<StringChunked> {
    let name = column.name().to_string();
    let text = match column.dtype() {
        DataType::String => column.clone(),
        dt if dt.is_integer() => column.cast(&DataType::String)?,
        dt if dt.is_float() => column.cast(&DataType::Int64)?.cast(&DataType::String)?,
        DataType::Null => column.cast(&DataType::String)?,
        dt => bail!(
            "{}: phone column `{name}` has type {dt}; phone columns must be text or numbers",
            path.display()
        ),
    };
    Ok(text.str()?.clone())
}

pub(crate) fn check_phone_columns<'a>(
    cfg: &InputConfig,
    names: impl Iterator<Item = &'a str> + Clone,
) -> Result<()> {
    for wanted in &cfg.phone_columns {
        if !names.clone().any(|n| n == wanted) {
            let available: Vec<&str> = names.clone().collect();
            bail!(
                "{}: no column `{wanted}` (input.phone_columns); the columns are: {}",
                cfg.path.display(),
                available.join(", ")
            );
        }
    }
    Ok(())
}
