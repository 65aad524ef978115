//! Reading the input file as a stream of polars frames, in row order.
//!
//! Contract: [`InputReader::open`] checks the file and its header or schema (the phone columns
//! must exist) and yields the file in order as [`Piece`]s of at most `frame_rows` rows, each
//! turned into a [`DataFrame`] frame by [`Piece::into_frame`]: reading is sequential, parsing
//! can run on any thread. A CSV piece is a run of whole records, cut where a line feed falls
//! outside quotes (the `csv` crate's own reading of quotes), so parsing pieces apart gives the
//! records parsing the whole would. CSV: a header row, RFC 4180 quoting, `,` `;` tab or `|` (detected from
//! the header when not set), UTF-8 with or without BOM, UTF-16 with a BOM, or windows-1251,
//! plain or gzip; each column is read as the [`ColumnTypes`] settled once before the first
//! pass say (text unless the job declares or infers types), an empty field is null. Parquet:
//! any schema, types kept. Phone columns are also offered as text by [`phone_text`] (integer
//! and float columns converted). Every error names the file, and for CSV the line.
//!
//! The files: `decode` turns the file's bytes into UTF-8 text, `records` finds record ends in
//! that text, `csv` cuts and parses CSV pieces (`fields` splits their records), `types` settles each CSV column's type and
//! `convert` turns its fields into values of it, `parquet` streams Parquet frames, and
//! `arrow_types` keeps a Parquet input's own types where polars reads others.

mod arrow_types;
mod convert;
mod csv;
mod decode;
mod fields;
mod parquet;
mod records;
mod types;

use std::num::NonZeroUsize;
use std::path::Path;

use anyhow::{bail, Result};
use polars::prelude::*;

use self::csv::{CsvPiece, CsvSource};
use self::parquet::ParquetSource;
use crate::config::{InputConfig, InputFormat};
pub use arrow_types::{declared_schema, restore, InputTypes, Uncarried};
pub use types::{ColumnTypes, TypesError};

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
    /// The phone columns, and CSV columns of a type other than text, whose values are checked
    /// (a pass that writes nothing).
    PhonesOnly,
}

impl InputReader {
    /// Opens the input named by `cfg`, checking its header or schema, for pieces of at most
    /// `frame_rows` rows whose CSV columns have the `types` settled for this input.
    pub fn open(
        cfg: &InputConfig,
        types: &ColumnTypes,
        columns: Columns,
        frame_rows: NonZeroUsize,
    ) -> Result<InputReader> {
        let cfg = &InputConfig {
            path: input_file(&cfg.path).to_path_buf(),
            ..cfg.clone()
        };
        check_regular_file(&cfg.path)?;
        match cfg.format {
            InputFormat::Csv => CsvSource::open(cfg, types, columns, frame_rows.get()),
            InputFormat::Parquet => ParquetSource::open(cfg, columns, frame_rows),
        }
    }

    /// The records the file holds, as far as it has been read: for CSV, those cut into pieces
    /// so far (all of them once [`InputReader::next_piece`] gave `None`); for Parquet, the
    /// rows its footer declares. A pass that read to the end has as many rows.
    pub fn records(&self) -> u64 {
        match &self.source {
            Source::Csv(s) => s.records(),
            Source::Parquet(s) => s.records(),
        }
    }

    /// The input's own Arrow types of the columns polars reads as others (none for CSV), for
    /// the output to declare and [`restore`].
    pub fn input_types(&self) -> &InputTypes {
        static NONE: std::sync::LazyLock<InputTypes> =
            std::sync::LazyLock::new(InputTypes::default);
        match &self.source {
            Source::Csv(_) => &NONE,
            Source::Parquet(s) => s.types(),
        }
    }

    /// The schema of the frames this reader yields.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The next piece of the input in file order, for [`Piece::into_frame`] (on any thread).
    pub fn next_piece(&mut self) -> Result<Option<Piece>> {
        Ok(match &mut self.source {
            Source::Csv(s) => s.next_piece()?.map(Piece::Csv),
            Source::Parquet(s) => s.next_batch()?.map(Piece::Frame),
        })
    }

    /// The next frame, read and parsed on this thread.
    #[cfg(test)]
    pub fn next_batch(&mut self) -> Result<Option<DataFrame>> {
        self.next_piece()?
            .map(|p| p.into_frame(Columns::All))
            .transpose()
    }
}

/// A piece of the input: CSV records still to parse, or a frame Parquet gave.
pub enum Piece {
    /// Whole CSV records, not yet parsed.
    Csv(CsvPiece),
    /// A Parquet frame, already decoded.
    Frame(DataFrame),
}

impl Piece {
    /// The piece as a frame: every column of the reader, or with [`Columns::PhonesOnly`] at
    /// least the phone columns.
    pub fn into_frame(self, columns: Columns) -> Result<DataFrame> {
        match self {
            Piece::Csv(piece) => piece.parse(columns),
            Piece::Frame(df) => Ok(df),
        }
    }
}

/// The phone column as text: strings as they are (dictionary-encoded ones too), integers as
/// their digits, whole floats too.
pub fn phone_text(column: &Column, path: &Path) -> Result<StringChunked> {
    let name = column.name().to_string();
    let text = match column.dtype() {
        DataType::String => column.clone(),
        dt if dt.is_integer() => column.cast(&DataType::String)?,
        dt if dt.is_float() => column.cast(&DataType::Int64)?.cast(&DataType::String)?,
        DataType::Null | DataType::Categorical(..) | DataType::Enum(..) => {
            column.cast(&DataType::String)?
        }
        dt => bail!(
            "{}: phone column `{}` has type {}; phone columns must be text or numbers",
            path.display(),
            excerpt(&name),
            excerpt(&dt.to_string())
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
            let hint = did_you_mean(wanted, names.clone())
                .map(|hint| format!(" {hint}"))
                .unwrap_or_default();
            bail!(
                "{}: no column `{wanted}` (input.phone_columns);{hint} the columns are: {}",
                cfg.path.display(),
                excerpt(&available.join(", "))
            );
        }
    }
    Ok(())
}

/// "did you mean `NAME`?" for the name among `names` that `wanted` most likely meant, if any
/// ([`closest_name`]), quoted as messages quote input text.
pub(super) fn did_you_mean<'a>(
    wanted: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest_name(wanted, names).map(|name| format!("did you mean `{}`?", excerpt(name)))
}

/// The name among `names` that `wanted` most likely meant: the same in another case, or
/// else the nearest by edit distance, ignoring case, if at most a third of its letters (one
/// for a short name) differ.
fn closest_name<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = wanted.to_lowercase();
    let length = wanted.chars().count();
    let limit = (length / 3).max(1);
    names
        .into_iter()
        // Longer than that in bytes, a name is more than `limit` edits away (a 50 MB header).
        .filter(|name| name.len() <= 4 * (length + limit))
        .map(|name| (edit_distance(&wanted, &name.to_lowercase()), name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance in characters: insertions, deletions and substitutions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The file to open for an input path: `-` is standard input.
pub fn input_file(path: &Path) -> &Path {
    match path.as_os_str() == "-" {
        true => Path::new("/dev/stdin"),
        false => path,
    }
}

/// Refuses, before opening it (opening a FIFO blocks until a writer comes), an input that is
/// not a regular file: a run reads its input once to plan and, when numbers were looked up,
/// again to write, and a pipe gives its text only once.
fn check_regular_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let kind = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => return Ok(()),
        // Opening names the error.
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => "a directory",
        Ok(m) if m.file_type().is_fifo() => "a pipe",
        Ok(m) if m.file_type().is_char_device() => "a terminal or device",
        Ok(m) if m.file_type().is_socket() => "a socket",
        Ok(_) => "not a regular file",
    };
    bail!(
        "{} is {kind}: the input must be a regular file, because a run reads it twice when \
         numbers need looking up (once to plan, once to write) and a pipe gives its text only \
         once; write it to a file first (a gzip file is read as it is: input.compression)",
        path.display()
    )
}

/// Longest input text (in bytes) a message quotes.
pub const EXCERPT_BYTES: usize = 200;

/// Input text as a message shows it: at most [`EXCERPT_BYTES`] bytes of it, line ends and other
/// control characters escaped, and how long it was when cut. Every message that quotes input
/// text (a column name, a header, a type) quotes it through this.
pub fn excerpt(text: &str) -> String {
    let mut cut = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut shown = String::with_capacity(cut + 32);
    for c in text[..cut].chars() {
        match c.is_control() {
            true => shown.extend(c.escape_default()),
            false => shown.push(c),
        }
    }
    if cut < text.len() {
        shown.push_str(&format!("… ({} bytes in all)", text.len()));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_name_suggests_the_closest() {
        let names = ["id", "Phone", "phone_2", "mobile", "Имя"];
        let cases: &[(&str, Option<&str>)] = &[
            ("phone", Some("Phone")),
            ("PHONE", Some("Phone")),
            ("phone_3", Some("phone_2")),
            ("mobil", Some("mobile")),
            ("moblie", Some("mobile")),
            ("имя", Some("Имя")),
            ("tel", None),
            ("ids", Some("id")),
            ("email", None),
        ];
        for (wanted, want) in cases {
            assert_eq!(closest_name(wanted, names), *want, "{wanted}");
        }
        let distances = [("", "ab", 2), ("kitten", "sitting", 3), ("ab", "ba", 2)];
        for (a, b, d) in distances {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn excerpts_are_bounded_and_one_line() {
        let long = "Я".repeat(1000);
        let cases: &[(&str, &str)] = &[
            ("phone", "phone"),
            ("a\nb\rc\td", "a\\nb\\rc\\td"),
            (&long, "… (2000 bytes in all)"),
        ];
        for (text, want) in cases {
            let shown = excerpt(text);
            assert!(shown.contains(want), "{shown}");
            assert!(shown.len() <= EXCERPT_BYTES + 32, "{}", shown.len());
            assert!(!shown.contains('\n'));
        }
    }
}
