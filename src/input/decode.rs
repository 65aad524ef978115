//! The CSV file's bytes as UTF-8 text: gzip undone, windows-1251 decoded, a BOM dropped, a
//! file that starts with a UTF-16 BOM (Excel's "Unicode text") decoded from UTF-16 whatever
//! `input.encoding` says (a BOM cannot be mistaken); and the delimiter, when not set, sniffed
//! from the header line as first read, so the file is read once.

use std::fs::File;
use std::io::{BufReader, Read};

use anyhow::{Context, Result};

use crate::config::{Compression, InputConfig, TextEncoding};

/// The decoded text of the file: gzip undone, windows-1251 or UTF-16 turned into UTF-8, BOM
/// dropped.
pub(super) fn open_text(cfg: &InputConfig) -> Result<Box<dyn Read + Send>> {
    let file = File::open(&cfg.path).with_context(|| format!("opening {}", cfg.path.display()))?;
    decode_text(Box::new(BufReader::with_capacity(1 << 20, file)), cfg)
}

/// The text of `raw`, the bytes of the file `cfg` describes.
pub(super) fn decode_text(
    raw: Box<dyn Read + Send>,
    cfg: &InputConfig,
) -> Result<Box<dyn Read + Send>> {
    let mut raw: Box<dyn Read + Send> = match cfg.compression {
        Compression::None => raw,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
    };
    let mut head = Vec::with_capacity(3);
    raw.by_ref()
        .take(3)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", cfg.path.display()))?;
    let encoding = match (head.get(..2), cfg.encoding) {
        (Some(b"\xFF\xFE"), _) => encoding_rs::UTF_16LE,
        (Some(b"\xFE\xFF"), _) => encoding_rs::UTF_16BE,
        // UTF-8 passes through untouched (validated where pieces are parsed); only a BOM goes.
        (_, TextEncoding::Utf8) => {
            if head == b"\xEF\xBB\xBF" {
                head.clear();
            }
            return Ok(Box::new(std::io::Cursor::new(head).chain(raw)));
        }
        (_, other) => other.encoding(),
    };
    Ok(Box::new(
        encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .bom_override(true)
            .strip_bom(true)
            .build(std::io::Cursor::new(head).chain(raw)),
    ))
}

/// Picks the delimiter that splits the header line (the first line of `head`) into the most
/// fields, outside quotes; and says whether `head` held that line whole (otherwise more text
/// could change the pick).
pub(super) fn sniff_delimiter(head: &[u8]) -> (u8, bool) {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    let mut whole = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => {
                whole = true;
                break;
            }
            _ if !quoted => {
                if let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
                    c.1 += 1;
                }
            }
            _ => {}
        }
    }
    let best = counts
        .iter()
        .max_by_key(|(_, n)| *n)
        .expect("four delimiters");
    // A single-column file has no delimiter in its header: any will do.
    (if best.1 == 0 { b',' } else { best.0 }, whole)
}
