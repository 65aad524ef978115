//! CSV pieces: the reader cuts the decoded text into runs of whole records on its thread, and
//! any thread parses a run into a batch of text columns.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use polars::prelude::*;

use super::decode::{open_text, sniff_delimiter};
use super::records::{split_records, Split};
use super::{check_phone_columns, Columns, InputReader, Source};
use crate::config::InputConfig;

pub(super) struct CsvSource {
    layout: Arc<CsvLayout>,
    /// The decoded text, positioned after the header.
    text: Box<dyn Read + Send>,
    batch_rows: usize,
    /// Text read but not yet cut into a chunk; it starts at a record's start.
    buffer: Vec<u8>,
    /// How far `buffer` has been scanned: complete records up to `scanned.end`.
    scanned: Split,
    /// The line `buffer` starts on.
    line: u64,
    eof: bool,
}

/// What the parser of a chunk needs to know of the file.
#[derive(Debug)]
pub struct CsvLayout {
    path: PathBuf,
    delimiter: u8,
    /// Fields in the header.
    width: usize,
    /// For each header column: whether the reader builds it, and its name.
    wanted: Vec<Option<PlSmallStr>>,
    /// For each header column: whether it is a phone column.
    phones: Vec<bool>,
}

fn utf8_field<'a>(bytes: &'a [u8], path: &Path, line: u64, column: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| {
        anyhow!(
            "{}: line {line}, column `{column}` is not valid UTF-8; if the file is windows-1251, set input.encoding = \"windows-1251\"",
            path.display()
        )
    })
}

/// Whole records of a CSV file, cut by the (sequential) reader for any thread to parse.
pub struct CsvChunk {
    layout: Arc<CsvLayout>,
    bytes: Vec<u8>,
    /// The file line the chunk starts on.
    first_line: u64,
}

/// Text is read in slices of this size.
const READ_SIZE: usize = 4 << 20;

impl CsvSource {
    pub(super) fn open(
        cfg: &InputConfig,
        columns: Columns,
        batch_rows: usize,
    ) -> Result<InputReader> {
        let delimiter = match cfg.delimiter {
            Some(d) => d,
            None => sniff_delimiter(cfg)?,
        };
        let mut text = open_text(cfg)?;
        let read_error = |e| read_error(&cfg.path, e);
        // The header: the first record.
        let mut buffer = Vec::new();
        let mut eof = false;
        let header = loop {
            let split = split_records(&buffer, delimiter, Split::default(), 1);
            if split.records == 1 {
                break split;
            }
            if eof {
                break Split {
                    end: buffer.len(),
                    records: 1,
                    lines: 0,
                };
            }
            eof = read_more(&mut text, &mut buffer, 64 << 10).map_err(read_error)?;
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .double_quote(true)
            .from_reader(&buffer[..header.end]);
        let mut headers = csv::ByteRecord::new();
        let has_header = reader
            .read_byte_record(&mut headers)
            .map_err(|e| csv_error(e, &cfg.path, 0))?;
        if !has_header || headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
            bail!(
                "{}: the file is empty or has no header row",
                cfg.path.display()
            );
        }
        let mut names: Vec<String> = Vec::with_capacity(headers.len());
        for (i, h) in headers.iter().enumerate() {
            let name = utf8_field(h, &cfg.path, 1, &format!("#{}", i + 1))?
                .trim()
                .to_string();
            let name = if name.is_empty() {
                format!("column_{}", i + 1)
            } else {
                name
            };
            if names.contains(&name) {
                bail!(
                    "{}: the header names column `{name}` twice",
                    cfg.path.display()
                );
            }
            names.push(name);
        }
        check_phone_columns(cfg, names.iter().map(String::as_str))?;
        let wanted: Vec<Option<PlSmallStr>> = names
            .iter()
            .map(|n| match columns {
                Columns::All => Some(PlSmallStr::from(n.as_str())),
                Columns::PhonesOnly if cfg.phone_columns.contains(n) => {
                    Some(PlSmallStr::from(n.as_str()))
                }
                Columns::PhonesOnly => None,
            })
            .collect();
        let schema: Schema = wanted
            .iter()
            .flatten()
            .map(|n| Field::new(n.clone(), DataType::String))
            .collect();
        buffer.drain(..header.end);
        let source = CsvSource {
            layout: Arc::new(CsvLayout {
                path: cfg.path.clone(),
                delimiter,
                width: names.len(),
                phones: names
                    .iter()
                    .map(|n| cfg.phone_columns.contains(n))
                    .collect(),
                wanted,
            }),
            text,
            batch_rows,
            buffer,
            scanned: Split::default(),
            line: 1 + header.lines,
            eof,
        };
        Ok(InputReader {
            schema,
            source: Source::Csv(source),
        })
    }

    /// The next `batch_rows` records (fewer at the end of the file), unparsed.
    pub(super) fn next_chunk(&mut self) -> Result<Option<CsvChunk>> {
        loop {
            self.scanned = split_records(
                &self.buffer,
                self.layout.delimiter,
                self.scanned,
                self.batch_rows,
            );
            let (end, lines) = if self.scanned.records == self.batch_rows {
                (self.scanned.end, self.scanned.lines)
            } else if self.eof {
                // The last record may lack a line end.
                (self.buffer.len(), 0)
            } else {
                let at_least = READ_SIZE.max(self.buffer.len() / 2);
                self.eof = read_more(&mut self.text, &mut self.buffer, at_least)
                    .map_err(|e| read_error(&self.layout.path, e))?;
                continue;
            };
            if end == 0 {
                return Ok(None);
            }
            let rest = self.buffer[end..].to_vec();
            let mut bytes = std::mem::replace(&mut self.buffer, rest);
            bytes.truncate(end);
            let chunk = CsvChunk {
                layout: self.layout.clone(),
                bytes,
                first_line: self.line,
            };
            self.line += lines;
            self.scanned = Split::default();
            return Ok(Some(chunk));
        }
    }
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

impl CsvChunk {
    /// Parses the chunk's records into a batch of the reader's columns (only its phone columns
    /// with [`Columns::PhonesOnly`]), as text; an empty field is null. Errors name the file
    /// and line.
    pub fn parse(&self, columns: Columns) -> Result<DataFrame> {
        let layout = &*self.layout;
        // Text is checked once for the whole chunk; a field of valid text is valid text (fields
        // are cut at ASCII bytes). Only a chunk that fails is checked field by field, to name it.
        let all_utf8 = simdutf8::basic::from_utf8(&self.bytes).is_ok();
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(layout.delimiter)
            .has_headers(false)
            .flexible(true)
            .double_quote(true)
            .from_reader(&self.bytes[..]);
        let capacity = memchr::memchr_iter(b'\n', &self.bytes).count() + 1;
        let mut builders: Vec<(usize, StringChunkedBuilder)> = layout
            .wanted
            .iter()
            .enumerate()
            .filter(|(i, _)| columns == Columns::All || layout.phones[*i])
            .filter_map(|(i, w)| {
                w.as_ref()
                    .map(|n| (i, StringChunkedBuilder::new(n.clone(), capacity)))
            })
            .collect();
        let mut record = csv::ByteRecord::new();
        let mut rows = 0;
        let line_of = |record: &csv::ByteRecord| {
            self.first_line - 1 + record.position().map(|p| p.line()).unwrap_or(1)
        };
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(e, &layout.path, self.first_line - 1))?
        {
            if record.len() != layout.width {
                bail!(
                    "{}: line {} has {} fields where the header has {}; check the delimiter and quoting",
                    layout.path.display(),
                    line_of(&record),
                    record.len(),
                    layout.width
                );
            }
            for (i, builder) in builders.iter_mut() {
                let field = &record[*i];
                if field.is_empty() {
                    builder.append_null();
                } else if all_utf8 {
                    // SAFETY: checked above, for the whole chunk this field was cut from.
                    builder.append_value(unsafe { std::str::from_utf8_unchecked(field) });
                } else {
                    let name = layout.wanted[*i].as_deref().unwrap_or("");
                    builder.append_value(utf8_field(field, &layout.path, line_of(&record), name)?);
                }
            }
            rows += 1;
        }
        let columns: Vec<Column> = builders
            .into_iter()
            .map(|(_, b)| b.finish().into_column())
            .collect();
        Ok(DataFrame::new(rows, columns)?)
    }
}

/// An error reading the file's text (the decoder's, for gzip).
fn read_error(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{}: {e} (a corrupt or truncated file?)", path.display())
}

/// A `csv` error, its line shifted by `line_offset` (the lines before the parsed text).
fn csv_error(e: csv::Error, path: &Path, line_offset: u64) -> anyhow::Error {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => anyhow!(
            "{}: line {} has {len} fields where the header has {expected_len}; check the delimiter and quoting",
            path.display(),
            line_offset + pos.as_ref().map(|p| p.line()).unwrap_or(0)
        ),
        csv::ErrorKind::Io(io) => read_error(path, io),
        _ => anyhow!("{}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Compression, InputFormat, TextEncoding};
    use std::io::Write;
    use std::num::NonZeroUsize;

    fn cfg(path: &Path, encoding: TextEncoding, compression: Compression) -> InputConfig {
        InputConfig {
            path: path.to_path_buf(),
            format: InputFormat::Csv,
            phone_columns: vec!["phone".into()],
            delimiter: None,
            encoding,
            compression,
            default_region: phonenumber::country::Id::RU,
        }
    }

    fn read_all(cfg: &InputConfig, batch: usize) -> Result<DataFrame> {
        let mut r = InputReader::open(cfg, Columns::All, NonZeroUsize::new(batch).unwrap())?;
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

    /// Reads a CSV text whole (one piece) and in pieces of `rows`, parsing pieces out of order.
    fn read_in_pieces(text: &[u8], rows: usize) -> Result<DataFrame> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, text).unwrap();
        let cfg = cfg(&path, TextEncoding::Utf8, Compression::None);
        let mut reader = InputReader::open(&cfg, Columns::All, NonZeroUsize::new(rows).unwrap())?;
        let mut pieces = Vec::new();
        while let Some(p) = reader.next_piece()? {
            pieces.push(p);
        }
        let mut batches: Vec<Result<DataFrame>> = Vec::new();
        for piece in pieces.into_iter().rev() {
            batches.push(piece.into_batch(Columns::All));
        }
        let mut out: Option<DataFrame> = None;
        for b in batches.into_iter().rev() {
            let b = b?;
            assert!(b.height() <= rows);
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

    #[test]
    fn pieces_cut_at_record_ends_read_as_the_whole() {
        let texts: &[&[u8]] = &[
            // Quoted line feeds and delimiters, escaped quotes, a quote inside an unquoted field.
            b"name,phone,note\n\"a\nb\",1,\"x,\"\"y\"\"\nz\"\n5\" screen,2,\"\"\nc,3,d\"e\"\n\"\"\"\",4,\n",
            // CRLF line ends and no line end at the end.
            b"name,phone,note\r\na,1,x\r\n\"b\r\nb\",2,y\r\nc,3,z",
            // A quoted field that ends right at a piece's end, then an escaped quote pair.
            b"name,phone,note\n\"\"\"\",1,\"\"\"\"\"\"\n\"q\",2,\"\"\n",
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
    }
}
