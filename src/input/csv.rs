//! CSV pieces: the reader cuts the decoded text into runs of whole records on its thread, and
//! any thread parses a run into a frame, each column of its settled type (`types`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use polars::prelude::*;

use super::convert::{ColumnParser, Misfit};
use super::decode::{open_text, sniff_delimiter};
use super::fields::Records;
use super::records::{line_ends, split_records, OpenQuote, Split};
use super::types::{ColumnType, ColumnTypes};
use super::{check_phone_columns, excerpt, Columns, InputReader, Source};
use crate::config::InputConfig;

pub(super) struct CsvSource {
    layout: Arc<CsvLayout>,
    /// The decoded text, positioned after what `buffer` holds.
    text: Box<dyn Read + Send>,
    frame_rows: usize,
    /// Text is read in slices of at least this size.
    read_size: usize,
    /// Text read but not yet cut into a piece; it starts at a record's start.
    buffer: Vec<u8>,
    /// How far `buffer` has been scanned: complete records up to `scanned.end`.
    scanned: Split,
    /// The line `buffer` starts on.
    line: u64,
    eof: bool,
    /// Records cut into pieces so far.
    records: u64,
}

/// What the parser of a piece needs to know of the file.
#[derive(Debug)]
struct CsvLayout {
    path: PathBuf,
    delimiter: u8,
    /// Fields in the header.
    width: usize,
    /// For each header column: whether the reader builds it, and its name.
    wanted: Vec<Option<PlSmallStr>>,
    /// For each header column: whether it is a phone column.
    phones: Vec<bool>,
    /// For each header column: the type it is read as.
    types: Vec<ColumnType>,
}

impl CsvLayout {
    /// Whether a frame of `columns` holds header column `i`: every column, or the phone
    /// columns and those whose values are checked against a type.
    fn holds(&self, columns: Columns, i: usize) -> bool {
        columns == Columns::All || self.phones[i] || !self.types[i].is_text()
    }
}

fn utf8_field<'a>(bytes: &'a [u8], path: &Path, line: u64, column: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| not_utf8(path, line, column))
}

fn not_utf8(path: &Path, line: u64, column: &str) -> anyhow::Error {
    anyhow!(
        "{}: line {line}, column `{}` is not valid UTF-8; if the file is windows-1251, set input.encoding = \"windows-1251\"",
        path.display(),
        excerpt(column)
    )
}

/// Whole records of a CSV file, cut by the (sequential) reader for any thread to parse.
pub struct CsvPiece {
    layout: Arc<CsvLayout>,
    bytes: Vec<u8>,
    /// The file line the piece starts on.
    first_line: u64,
    /// The records the reader counted in `bytes`.
    records: usize,
}

/// Text is read in slices of this size.
const READ_SIZE: usize = 4 << 20;

/// The header is looked for in slices of this size (then in ever larger ones).
const HEAD_SIZE: usize = 64 << 10;

/// A quoted field that runs to the end of the text: the quote that opened it is on `line`.
fn open_quote_error(path: &Path, line: u64) -> anyhow::Error {
    anyhow!(
        "{}: line {line}: a quoted field opens here and is never closed (a missing quote?); it would swallow every line after it",
        path.display()
    )
}

impl CsvSource {
    pub(super) fn open(
        cfg: &InputConfig,
        types: &ColumnTypes,
        columns: Columns,
        frame_rows: usize,
    ) -> Result<InputReader> {
        let text = open_text(cfg)?;
        Self::from_text(cfg, text, types, columns, frame_rows, READ_SIZE)
    }

    /// Reads the header from `text` (decoded, without BOM), sniffing the delimiter from what
    /// was read when the job does not set it, and is then ready to cut the records after it.
    fn from_text(
        cfg: &InputConfig,
        mut text: Box<dyn Read + Send>,
        types: &ColumnTypes,
        columns: Columns,
        frame_rows: usize,
        read_size: usize,
    ) -> Result<InputReader> {
        let read_error = |e| read_error(&cfg.path, e);
        let head_size = HEAD_SIZE.min(read_size);
        let mut buffer = Vec::new();
        let mut eof = read_more(&mut text, &mut buffer, head_size).map_err(read_error)?;
        let delimiter = loop {
            let (sniffed, whole_line) = sniff_delimiter(&buffer);
            match cfg.delimiter {
                Some(d) => break d,
                None if whole_line || eof => break sniffed,
                None => {}
            }
            let at_least = head_size.max(buffer.len());
            eof = read_more(&mut text, &mut buffer, at_least).map_err(read_error)?;
        };
        // The header: the first record.
        let header = loop {
            match split_records(&buffer, delimiter, Split::default(), 1, eof) {
                Ok(split) if split.records == 1 => break split,
                Ok(_) if eof => bail!(
                    "{}: the file is empty or has no header row",
                    cfg.path.display()
                ),
                Ok(_) => {}
                Err(OpenQuote { lines }) => return Err(open_quote_error(&cfg.path, 1 + lines)),
            }
            let at_least = head_size.max(buffer.len());
            eof = read_more(&mut text, &mut buffer, at_least).map_err(read_error)?;
        };
        let names = header_names(cfg, &buffer[..header.end], delimiter)?;
        check_phone_columns(cfg, names.iter().map(String::as_str))?;
        let mut layout = CsvLayout {
            path: cfg.path.clone(),
            delimiter,
            width: names.len(),
            phones: names
                .iter()
                .map(|n| cfg.phone_columns.contains(n))
                .collect(),
            types: types.of_header(&cfg.path, &names)?,
            wanted: Vec::new(),
        };
        layout.wanted = (0..names.len())
            .map(|i| layout.holds(columns, i).then(|| names[i].as_str().into()))
            .collect();
        let schema: Schema = (layout.wanted.iter().zip(&layout.types))
            .filter_map(|(n, t)| n.as_ref().map(|n| Field::new(n.clone(), t.dtype.clone())))
            .collect();
        buffer.drain(..header.end);
        let source = CsvSource {
            layout: Arc::new(layout),
            text,
            frame_rows,
            read_size,
            buffer,
            scanned: Split::default(),
            line: 1 + header.lines,
            eof,
            records: 0,
        };
        Ok(InputReader {
            schema,
            source: Source::Csv(source),
        })
    }

    /// The next `frame_rows` records (fewer at the end of the file), unparsed.
    pub(super) fn next_piece(&mut self) -> Result<Option<CsvPiece>> {
        loop {
            self.scanned = split_records(
                &self.buffer,
                self.layout.delimiter,
                self.scanned,
                self.frame_rows,
                self.eof,
            )
            .map_err(|open| open_quote_error(&self.layout.path, self.line + open.lines))?;
            if self.scanned.records < self.frame_rows && !self.eof {
                let at_least = self.read_size.max(self.buffer.len() / 2);
                self.eof = read_more(&mut self.text, &mut self.buffer, at_least)
                    .map_err(|e| read_error(&self.layout.path, e))?;
                continue;
            }
            let Split {
                end,
                records,
                lines,
            } = std::mem::take(&mut self.scanned);
            if records == 0 {
                return Ok(None);
            }
            let rest = self.buffer[end..].to_vec();
            let mut bytes = std::mem::replace(&mut self.buffer, rest);
            bytes.truncate(end);
            let piece = CsvPiece {
                layout: self.layout.clone(),
                bytes,
                first_line: self.line,
                records,
            };
            self.line += lines;
            self.records += records as u64;
            return Ok(Some(piece));
        }
    }

    /// Records cut into pieces so far.
    pub(super) fn records(&self) -> u64 {
        self.records
    }
}

/// The column names in the header record `text`: trimmed, `column_N` for a blank one, each
/// once. A header with NUL bytes is UTF-16 without its byte-order mark (UTF-16 with one is
/// decoded), refused as such.
fn header_names(cfg: &InputConfig, text: &[u8], delimiter: u8) -> Result<Vec<String>> {
    if memchr::memchr(0, text).is_some() {
        bail!(
            "{}: the header holds NUL bytes, as UTF-16 text without its byte-order mark does; save the file as UTF-8, or as UTF-16 with its byte-order mark",
            cfg.path.display()
        );
    }
    let mut headers: Vec<Vec<u8>> = Vec::new();
    let start = Records::new(text, delimiter).next(|_, field| headers.push(field.to_vec()));
    let start = match start {
        Some((start, _)) if !(headers.len() == 1 && headers[0].is_empty()) => start,
        _ => bail!(
            "{}: the file is empty or has no header row",
            cfg.path.display()
        ),
    };
    let line = 1 + line_ends(&text[..start]);
    let mut names: Vec<String> = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let name = utf8_field(h, &cfg.path, line, &format!("#{}", i + 1))?.trim();
        let name = match name.is_empty() {
            true => format!("column_{}", i + 1),
            false => name.to_string(),
        };
        if names.contains(&name) {
            bail!(
                "{}: the header names column `{}` twice",
                cfg.path.display(),
                excerpt(&name)
            );
        }
        names.push(name);
    }
    Ok(names)
}

/// Appends at least `at_least` bytes of `text` to `buffer` (less at its end); `true` at the end.
fn read_more(text: &mut dyn Read, buffer: &mut Vec<u8>, at_least: usize) -> std::io::Result<bool> {
    let start = buffer.len();
    buffer.reserve(at_least);
    while buffer.len() - start < at_least {
        let filled = buffer.len();
        buffer.resize(filled + (at_least - (filled - start)).max(64 << 10), 0);
        match text.read(&mut buffer[filled..]) {
            Ok(0) => {
                buffer.truncate(filled);
                return Ok(true);
            }
            Ok(n) => buffer.truncate(filled + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buffer.truncate(filled),
            Err(e) => {
                buffer.truncate(filled);
                return Err(e);
            }
        }
    }
    Ok(false)
}

impl CsvPiece {
    /// Parses the piece's records into a frame of the reader's columns (with
    /// [`Columns::PhonesOnly`], only its phone columns and those of a type other than text),
    /// each of its type; an empty field is null. Errors name the file and line.
    pub fn parse(&self, columns: Columns) -> Result<DataFrame> {
        let layout = &*self.layout;
        // Text is checked once for the whole piece; a field of valid text is valid text (fields
        // are cut at ASCII bytes). Only a piece that fails is checked field by field, to name it.
        let all_utf8 = simdutf8::basic::from_utf8(&self.bytes).is_ok();
        let mut parsers: Vec<(usize, ColumnParser)> = layout
            .wanted
            .iter()
            .enumerate()
            .filter(|(i, _)| layout.holds(columns, *i))
            .filter_map(|(i, w)| {
                let parser =
                    |n: &PlSmallStr| ColumnParser::new(n.clone(), &layout.types[i], self.records);
                w.as_ref().map(|n| (i, parser(n)))
            })
            .collect();
        // Each header column's parser, if it has one.
        let mut slots = vec![None; layout.width];
        for (slot, (i, _)) in parsers.iter().enumerate() {
            slots[*i] = Some(slot);
        }
        let mut records = Records::new(&self.bytes, layout.delimiter);
        let mut rows = 0;
        loop {
            // A record's first bad value is told after its width is checked, as a reader of
            // whole records tells it.
            let mut unfit = None;
            let record = records.next(|i, field| {
                let Some(slot) = slots.get(i).copied().flatten().filter(|_| unfit.is_none()) else {
                    return;
                };
                let text = if all_utf8 {
                    // SAFETY: checked above, for the whole piece this field was cut from.
                    unsafe { std::str::from_utf8_unchecked(field) }
                } else if let Ok(text) = std::str::from_utf8(field) {
                    text
                } else {
                    unfit = Some(Unfit::NotUtf8(i));
                    return;
                };
                if let Err(misfit) = parsers[slot].1.push(text) {
                    unfit = Some(Unfit::Misfit(misfit));
                }
            });
            let Some((start, fields)) = record else {
                break;
            };
            let line = || self.first_line + line_ends(&self.bytes[..start]);
            if fields != layout.width {
                bail!(
                    "{}: line {} has {fields} fields where the header has {}; check the delimiter and quoting",
                    layout.path.display(),
                    line(),
                    layout.width
                );
            }
            match unfit {
                Some(Unfit::NotUtf8(i)) => {
                    let name = layout.wanted[i].as_deref().unwrap_or("");
                    return Err(not_utf8(&layout.path, line(), name));
                }
                Some(Unfit::Misfit(misfit)) => {
                    bail!("{}: line {}, {misfit}", layout.path.display(), line())
                }
                None => rows += 1,
            }
        }
        let columns: Vec<Column> = parsers.into_iter().map(|(_, p)| p.finish()).collect();
        Ok(DataFrame::new(rows, columns)?)
    }
}

/// Why a field's value cannot go into its column.
enum Unfit {
    /// The field of this header column is not UTF-8.
    NotUtf8(usize),
    Misfit(Box<Misfit>),
}

/// An error reading the file's text (the decoder's, for gzip).
fn read_error(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{}: {e} (a corrupt or truncated file?)", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Compression, InputFormat, TextEncoding};
    use std::io::Write;
    use std::num::NonZeroUsize;

    /// The `csv` crate's reader of whole records as this module reads them (the reference): no header, any number
    /// of fields (checked against the header's by the caller, to name the line).
    fn csv_reader(delimiter: u8, text: &[u8]) -> csv::Reader<&[u8]> {
        csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .double_quote(true)
            .from_reader(text)
    }

    fn cfg(path: &Path, encoding: TextEncoding, compression: Compression) -> InputConfig {
        InputConfig {
            path: path.to_path_buf(),
            format: InputFormat::Csv,
            phone_columns: vec!["phone".into()],
            delimiter: None,
            encoding,
            compression,
            default_region: crate::normalize::Region::RU,
            types: Vec::new(),
            infer_rows: None,
        }
    }

    fn read_all(cfg: &InputConfig, frame: usize) -> Result<DataFrame> {
        let types = ColumnTypes::default();
        let frame = NonZeroUsize::new(frame).unwrap();
        let mut r = InputReader::open(cfg, &types, Columns::All, frame)?;
        let mut out: Option<DataFrame> = None;
        while let Some(b) = r.next_batch()? {
            out = Some(match out {
                None => b,
                Some(mut o) => {
                    o.vstack_mut(&b)?;
                    o
                }
            });
        }
        Ok(out.unwrap())
    }

    fn cell(df: &DataFrame, column: &str, row: usize) -> Option<String> {
        df.column(column)
            .unwrap()
            .str()
            .unwrap()
            .get(row)
            .map(str::to_string)
    }

    #[test]
    fn csv_dialects_all_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let rows = "name,phone,note\n\"Иванов, Иван\",8 (916) 123-45-67,\"says \"\"hi\"\"\nsecond line\"\nPetrov,,x\n";
        let cases: Vec<(&str, Vec<u8>, TextEncoding, Compression)> = vec![
            (
                "plain.csv",
                rows.as_bytes().to_vec(),
                TextEncoding::Utf8,
                Compression::None,
            ),
            (
                "bom.csv",
                [b"\xEF\xBB\xBF".as_slice(), rows.as_bytes()].concat(),
                TextEncoding::Utf8,
                Compression::None,
            ),
            (
                "semi.csv",
                rows.replace(',', ";")
                    .replace("Иванов; Иван", "Иванов, Иван")
                    .into_bytes(),
                TextEncoding::Utf8,
                Compression::None,
            ),
            (
                "tab.tsv",
                rows.replace(',', "\t")
                    .replace("Иванов\t Иван", "Иванов, Иван")
                    .into_bytes(),
                TextEncoding::Utf8,
                Compression::None,
            ),
            (
                "cp1251.csv",
                encoding_rs::WINDOWS_1251.encode(rows).0.into_owned(),
                TextEncoding::Windows1251,
                Compression::None,
            ),
            (
                "utf16le.csv",
                [0xFEFFu16]
                    .into_iter()
                    .chain(rows.encode_utf16())
                    .flat_map(u16::to_le_bytes)
                    .collect(),
                TextEncoding::Utf8,
                Compression::None,
            ),
            (
                "gz.csv.gz",
                {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    e.write_all(rows.as_bytes()).unwrap();
                    e.finish().unwrap()
                },
                TextEncoding::Utf8,
                Compression::Gzip,
            ),
        ];
        for (name, bytes, enc, comp) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let df =
                read_all(&cfg(&path, enc, comp), 1).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(df.shape(), (2, 3), "{name}");
            assert_eq!(
                cell(&df, "name", 0).as_deref(),
                Some("Иванов, Иван"),
                "{name}"
            );
            assert_eq!(
                cell(&df, "phone", 0).as_deref(),
                Some("8 (916) 123-45-67"),
                "{name}"
            );
            assert_eq!(
                cell(&df, "note", 0).as_deref(),
                Some("says \"hi\"\nsecond line"),
                "{name}"
            );
            assert_eq!(cell(&df, "phone", 1), None, "{name}");
        }
    }

    #[test]
    fn bad_csv_is_refused_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&str, &[u8], &str)] = &[
            (
                "ragged.csv",
                b"name,phone\na,1\nb,2,3\n",
                "line 3 has 3 fields",
            ),
            ("nophone.csv", b"name,tel\na,1\n", "no column `phone`"),
            (
                "latin.csv",
                b"name,phone\n\xC8\xE2\xE0\xED,1\n",
                "line 2, column `name` is not valid UTF-8",
            ),
            ("dup.csv", b"phone,phone\n1,2\n", "twice"),
            ("empty.csv", b"", "no header"),
            (
                "utf16-no-bom.csv",
                b"n\0a\0m\0e\0,\0p\0h\0o\0n\0e\0\n\0",
                "UTF-16 text without its byte-order mark",
            ),
        ];
        for (name, bytes, want) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = format!(
                "{:#}",
                read_all(&cfg(&path, TextEncoding::Utf8, Compression::None), 10).unwrap_err()
            );
            assert!(err.contains(want) && err.contains(name), "{name}: {err}");
        }
    }

    /// Gives its bytes in reads of the sizes in `steps`, in turn: boundaries anywhere.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        steps: Vec<usize>,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let step = self.steps[self.step % self.steps.len()].max(1);
            self.step += 1;
            let n = step.min(out.len()).min(self.bytes.len() - self.at);
            out[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// Reads a CSV file's bytes in pieces of `rows` records, the bytes arriving in reads of
    /// `steps` and read in slices of `read_size`; parses the pieces out of order, and returns
    /// them as one frame, or the first error in file order (as a pass reports it).
    fn read_trickled(
        bytes: &[u8],
        delimiter: Option<u8>,
        rows: usize,
        read_size: usize,
        steps: &[usize],
    ) -> Result<DataFrame> {
        let cfg = InputConfig {
            delimiter,
            ..cfg(Path::new("in.csv"), TextEncoding::Utf8, Compression::None)
        };
        let raw = Trickle {
            bytes: bytes.to_vec(),
            at: 0,
            steps: steps.to_vec(),
            step: 0,
        };
        let text = super::super::decode::decode_text(Box::new(raw), &cfg)?;
        let types = ColumnTypes::default();
        let mut reader = CsvSource::from_text(&cfg, text, &types, Columns::All, rows, read_size)?;
        let mut pieces = Vec::new();
        let cut = loop {
            match reader.next_piece() {
                Ok(Some(p)) => pieces.push(p),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let frames: Vec<Result<DataFrame>> = pieces
            .into_iter()
            .rev()
            .map(|p| p.into_frame(Columns::All))
            .collect();
        let mut out = DataFrame::empty_with_schema(reader.schema());
        for b in frames.into_iter().rev() {
            let b = b?;
            assert!(b.height() <= rows);
            out.vstack_mut(&b)?;
        }
        cut?;
        assert_eq!(
            out.height() as u64,
            reader.records(),
            "rows out = records in"
        );
        Ok(out)
    }

    /// Reads a CSV text whole (one piece) and in pieces of `rows`, parsing pieces out of order.
    fn read_in_pieces(text: &[u8], rows: usize) -> Result<DataFrame> {
        read_trickled(text, None, rows, READ_SIZE, &[1 << 20])
    }

    #[test]
    fn pieces_cut_at_record_ends_read_as_the_whole() {
        let texts: &[&[u8]] = &[
            // Quoted line feeds and delimiters, escaped quotes, a quote inside an unquoted field.
            b"name,phone,note\n\"a\nb\",1,\"x,\"\"y\"\"\nz\"\n5\" screen,2,\"\"\nc,3,d\"e\"\n\"\"\"\",4,\n",
            // CRLF line ends and no line end at the end.
            b"name,phone,note\r\na,1,x\r\n\"b\r\nb\",2,y\r\nc,3,z",
            // A quoted field that ends right at a piece's end, then an escaped quote pair.
            b"name,phone,note\n\"\"\"\",1,\"\"\"\"\"\"\n\"q\",2,\"\"\n",
            // Old-Mac line ends, and a `\r` header before `\n` rows.
            b"name,phone,note\ra,1,x\r\"b\rb\",2,y\rc,3,z\r",
            b"name,phone,note\ra,1,x\n\"b\rb\",2,y\nc,3,z\n\n\n",
        ];
        for text in texts {
            let whole = read_in_pieces(text, 1000).unwrap();
            for rows in 1..=4 {
                let pieces = read_in_pieces(text, rows).unwrap();
                assert!(
                    pieces.equals_missing(&whole),
                    "{rows} rows a piece:\n{pieces}\nwhole:\n{whole}"
                );
            }
        }
        for text in &texts[3..] {
            assert_eq!(read_in_pieces(text, 1).unwrap().height(), 3);
        }
        let first = read_in_pieces(texts[0], 2).unwrap();
        assert_eq!(first.height(), 4);
        assert_eq!(cell(&first, "name", 0).as_deref(), Some("a\nb"));
        assert_eq!(cell(&first, "note", 0).as_deref(), Some("x,\"y\"\nz"));
        assert_eq!(cell(&first, "name", 1).as_deref(), Some("5\" screen"));
        assert_eq!(cell(&first, "note", 2).as_deref(), Some("d\"e\""));
        assert_eq!(cell(&first, "name", 3).as_deref(), Some("\""));
    }

    #[test]
    fn errors_in_later_pieces_name_the_file_line() {
        // Line 3 to 5 are one record (quoted line feeds); the bad records are on lines 8 and 9.
        let ragged = b"name,phone\na,1\n\"b\nb\nb\",2\nc,3\nd,4\ne,5,extra\n";
        let latin = b"name,phone\na,1\n\"b\nb\nb\",2\nc,3\nd,4\ne,5\n\xC8,6\n";
        for rows in [1, 2, 3, 100] {
            let err = format!("{:#}", read_in_pieces(ragged, rows).unwrap_err());
            assert!(err.contains("line 8 has 3 fields"), "{rows}: {err}");
            let err = format!("{:#}", read_in_pieces(latin, rows).unwrap_err());
            assert!(err.contains("line 9, column `name`"), "{rows}: {err}");
        }
        // (text, what the error says) with line ends of every kind.
        let cases: &[(&[u8], &str)] = &[
            (
                b"name,phone\na,1\nb,2\n\"c,3\nd,4\ne,5\n",
                "line 4: a quoted field opens here and is never closed",
            ),
            (
                b"name,phone\ra,\"1\r\n2\"\r\"c,3\rd,4",
                "line 4: a quoted field opens here and is never closed",
            ),
            (b"name,phone\ra,1\rb,2,x\r", "line 3 has 3 fields"),
            (b"name,phone\r\na,1\n\nb,2,x\r\n", "line 4 has 3 fields"),
            (b"\"name,phone\na,1\n", "line 1: a quoted field opens here"),
        ];
        for (text, want) in cases {
            for rows in [1, 2, 100] {
                let err = format!("{:#}", read_in_pieces(text, rows).unwrap_err());
                assert!(err.contains(want), "{rows}: {err}");
            }
        }
    }

    /// The `csv` crate's reading of a whole file, as this reader must give it: the records
    /// after the header as cells (`None` for an empty field), or what the first bad record's
    /// error must say.
    fn expected(text: &[u8], delimiter: u8) -> Result<Vec<Vec<Option<String>>>, String> {
        let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        let read = |text: &[u8]| -> Vec<::csv::ByteRecord> {
            csv_reader(delimiter, text)
                .byte_records()
                .map(|r| r.unwrap())
                .collect()
        };
        let records = read(text);
        // The text ends inside a quoted field exactly when closing it and adding a record
        // leaves the records as they were, that record aside.
        let closed = read(&[text, b"\"\nz".as_slice()].concat());
        let open_quote = closed.len() == records.len() + 1
            && closed[..records.len()] == records[..]
            && &closed[records.len()][0] == b"z";
        // Lines as an editor counts them.
        let line_at = |end: usize| {
            let t = &text[..end];
            1 + t
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && t.get(i + 1) != Some(&b'\n')))
                .count() as u64
        };
        let width = records[0].len();
        let mut rows = Vec::new();
        for (i, record) in records.iter().enumerate().skip(1) {
            let from = record.position().unwrap().byte() as usize;
            let blank = text[from..]
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r');
            let line = line_at(from + blank.count());
            if i + 1 == records.len() && open_quote {
                return Err("a quoted field opens here and is never closed".into());
            }
            if record.len() != width {
                return Err(format!("line {line} has {} fields", record.len()));
            }
            let mut row = Vec::new();
            for field in record {
                match std::str::from_utf8(field) {
                    Ok("") => row.push(None),
                    Ok(f) => row.push(Some(f.to_string())),
                    Err(_) => return Err(format!("line {line}, column")),
                }
            }
            rows.push(row);
        }
        if open_quote && records.len() == 1 {
            return Err("a quoted field opens here and is never closed".into());
        }
        Ok(rows)
    }

    /// Pieces of CSV text that make reading it hard.
    const TOKENS: &[&[u8]] = &[
        b"\"",
        b"\"\"",
        b",",
        b";",
        b"\n",
        b"\r",
        b"\r\n",
        b"a",
        b"bc",
        b" ",
        b"\xD0\xAF",
        b"\xE2\x82\xAC",
        b"5\" ",
        b"\t",
        b"\xFF",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Random text read in pieces, with reads and slices cut anywhere, gives what the
        /// `csv` crate gives reading the whole: the same records or the same error.
        #[test]
        fn pieces_read_as_the_csv_crate_reads_the_whole(
            semicolons in proptest::bool::ANY,
            columns in 1usize..4,
            header_end in proptest::sample::select(vec!["\n", "\r", "\r\n"]),
            bom in proptest::bool::ANY,
            body in proptest::collection::vec(proptest::sample::select(TOKENS), 0..80),
            rows in 1usize..5,
            read_size in 1usize..24,
            steps in proptest::collection::vec(1usize..9, 1..5),
        ) {
            let delimiter = if semicolons { b';' } else { b',' };
            let names: Vec<String> = ["phone", "b", "c"][..columns].iter().map(|n| n.to_string()).collect();
            let mut text = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            text.extend(names.join(&(delimiter as char).to_string()).bytes());
            text.extend(header_end.bytes());
            text.extend(body.concat());
            // A one-column header has no delimiter to sniff: give it.
            let given = (columns == 1).then_some(delimiter);
            let got = read_trickled(&text, given, rows, read_size, &steps);
            match (expected(&text, delimiter), got) {
                (Ok(want), Ok(df)) => {
                    proptest::prop_assert_eq!(df.height(), want.len());
                    for (c, name) in names.iter().enumerate() {
                        let column: Vec<Option<String>> = df.column(name).unwrap().str().unwrap()
                            .iter().map(|v| v.map(str::to_string)).collect();
                        let want: Vec<Option<String>> = want.iter().map(|r| r[c].clone()).collect();
                        proptest::prop_assert_eq!(column, want, "column {}", name);
                    }
                }
                (Err(want), Err(e)) => {
                    let e = format!("{e:#}");
                    proptest::prop_assert!(e.contains(&want), "{} lacks {}", e, want);
                }
                (want, got) => proptest::prop_assert!(false, "expected {:?}, got {:?}", want, got.map(|d| d.height())),
            }
        }
    }
}
