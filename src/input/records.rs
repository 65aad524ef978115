//! Where CSV records end, found at memory speed so that the reader can cut the text into pieces
//! that parse apart exactly as the whole would.
//!
//! The reading is the `csv` crate's (csv-core's state machine with its default `CRLF`
//! terminator): a record ends at `\n`, `\r` or `\r\n` outside quotes; a line holding nothing is
//! no record; a quote opens a quoted field only at a field's start, and `""` inside one is an
//! escaped quote. Lines are counted as an editor counts them: `\n`, `\r\n` and a lone `\r` each
//! end one, quoted or not.

/// How far a scan for record ends got in a buffer that starts at a record's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Split {
    /// Just past the last complete record's line end (and the empty lines after it).
    pub end: usize,
    /// Records before `end`.
    pub records: usize,
    /// Line ends (quoted ones included) before `end`.
    pub lines: u64,
}

/// The text ended inside a quoted field: the quote that opened it is `lines` line ends after
/// the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OpenQuote {
    pub lines: u64,
}

/// Line ends in `bytes`, which holds no half of a `\r\n` at either end.
pub(super) fn line_ends(bytes: &[u8]) -> u64 {
    let feeds = memchr::memchr_iter(b'\n', bytes).count();
    let returns = memchr::memchr_iter(b'\r', bytes)
        .filter(|&i| bytes.get(i + 1) != Some(&b'\n'))
        .count();
    (feeds + returns) as u64
}

/// Finds the ends of up to `want` more records in `buffer`, resuming from `from` (a record
/// boundary). `at_end`: the buffer holds the rest of the text, so a last record without a line
/// end counts, and a quoted field still open is an error once the records before it are taken.
/// Otherwise, what a byte not yet read
/// could change (a `\r` or a closing quote as the buffer's last byte) waits for more text.
/// Only quotes and line ends are looked at (memchr), a quoted field in one search for its
/// closing quote, and lines are counted once over what was scanned, so this runs at memory
/// speed whether fields are quoted or not.
pub(super) fn split_records(
    buffer: &[u8],
    delimiter: u8,
    from: Split,
    want: usize,
    at_end: bool,
) -> Result<Split, OpenQuote> {
    // Every line end before a point counts, quoted or not.
    let lines_to = |end: usize| from.lines + line_ends(&buffer[from.end..end]);
    let done = |found: Split| {
        Ok(Split {
            lines: lines_to(found.end),
            ..found
        })
    };
    let mut found = from;
    let mut pos = from.end;
    // Whether the record being scanned holds a byte yet (an empty line is no record).
    let mut started = false;
    // While in a quoted field: where its opening quote is.
    let mut open_quote: Option<usize> = None;
    while found.records < want {
        if let Some(opened) = open_quote {
            match closing_quote(buffer, pos, at_end) {
                Some(Ok(after)) => {
                    open_quote = None;
                    pos = after;
                    continue;
                }
                // The records before it come first (one may be bad); then the error.
                None if at_end && found.records == 0 => {
                    return Err(OpenQuote {
                        lines: lines_to(opened),
                    })
                }
                _ => return done(found),
            }
        }
        let Some(i) = memchr::memchr3(b'"', b'\n', b'\r', &buffer[pos..]).map(|i| pos + i) else {
            started |= pos < buffer.len();
            break;
        };
        started |= i > pos;
        match buffer[i] {
            b'"' => {
                if i == found.end || buffer[i - 1] == delimiter {
                    open_quote = Some(i);
                }
                started = true;
                pos = i + 1;
            }
            // A `\n` may follow: the line end is one or the other.
            b'\r' if i + 1 == buffer.len() && !at_end => return done(found),
            byte => {
                let end = match (byte, buffer.get(i + 1)) {
                    (b'\r', Some(b'\n')) => i + 2,
                    _ => i + 1,
                };
                found = Split {
                    end,
                    records: found.records + usize::from(started),
                    lines: 0,
                };
                started = false;
                pos = end;
            }
        }
    }
    if found.records < want && at_end {
        // The last record, without a line end.
        found = Split {
            end: buffer.len(),
            records: found.records + usize::from(started),
            lines: 0,
        };
    }
    done(found)
}

/// Past the quote that closes a quoted field, searched from `pos` inside it (`""` is a quote
/// in it): `None` if the text ends first, `Some(Err(()))` if the quote is the buffer's last
/// byte and may be the first of a `""` pair (unless `at_end`).
fn closing_quote(buffer: &[u8], mut pos: usize, at_end: bool) -> Option<Result<usize, ()>> {
    loop {
        let j = pos + memchr::memchr(b'"', &buffer[pos..])?;
        match buffer.get(j + 1) {
            Some(b'"') => pos = j + 2,
            None if !at_end => return Some(Err(())),
            _ => return Some(Ok(j + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ends_are_found_as_the_csv_crate_finds_them() {
        // (text, records wanted, at the end, expected (end, records, line ends) or the line
        // ends before an open quote)
        type Case = (&'static [u8], usize, bool, Result<(usize, usize, u64), u64>);
        let cases: &[Case] = &[
            (b"a,b\nc,d\n", 1, false, Ok((4, 1, 1))),
            (b"a,b\nc,d\n", 5, false, Ok((8, 2, 2))),
            (b"\"a\nb\",c\nd\n", 1, false, Ok((8, 1, 2))),
            // An unfinished quoted field: no record end yet; at the end, an error.
            (b"\"a\nb,c\nd\n", 1, false, Ok((0, 0, 0))),
            (b"\n\"a\nb,c\nd\n", 5, true, Err(1)),
            (b"x\n\"a\nb,c\nd\n", 5, true, Ok((2, 1, 1))),
            // A quote inside an unquoted field is text.
            (b"a\"b,c\nd\n", 1, false, Ok((6, 1, 1))),
            // A closing quote at the buffer's end might open a `""` pair: wait.
            (b"\"a\"", 1, false, Ok((0, 0, 0))),
            (b"\"a\"", 1, true, Ok((3, 1, 0))),
            (b"x;\"a\nb\";c\n", 1, false, Ok((10, 1, 2))),
            // `\r` alone ends a record and a line; `\r\n` is one line end.
            (b"a\rb\rc", 5, true, Ok((5, 3, 2))),
            (b"a\r\nb\r\n", 1, false, Ok((3, 1, 1))),
            // A `\r` at the buffer's end might be half of `\r\n`: wait.
            (b"a\r", 1, false, Ok((0, 0, 0))),
            (b"a\r", 1, true, Ok((2, 1, 1))),
            // Empty lines are no records, and go with the record before them.
            (b"\n\r\na\n\n\r\rb", 2, false, Ok((8, 1, 6))),
            (b"a\n\n\n", 5, true, Ok((4, 1, 3))),
            // Quoted line ends count as lines, `\r` alone included.
            (b"\"a\rb\r\nc\"\nd", 1, false, Ok((9, 1, 3))),
        ];
        for &(text, want, at_end, expected) in cases {
            let delimiter = if text.contains(&b';') { b';' } else { b',' };
            let got = split_records(text, delimiter, Split::default(), want, at_end)
                .map(|s| (s.end, s.records, s.lines))
                .map_err(|open| open.lines);
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(text));
        }
    }
}
