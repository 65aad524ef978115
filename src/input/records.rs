//! Where CSV records end, found at memory speed so that the reader can cut the text into pieces
//! that parse apart exactly as the whole would.

/// How far a scan for record ends got in a buffer that starts at a record's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Split {
    /// Just past the last complete record's line end.
    pub end: usize,
    pub records: usize,
    /// Line ends (quoted ones included) before `end`.
    pub lines: u64,
}

/// Finds the ends of up to `want` more records in `buffer`, resuming from `from` (a record
/// boundary). A record ends at a line feed outside quotes; as in the `csv` crate, a quote opens
/// a quoted field only at a field's start, and `""` inside one is an escaped quote. Only quotes
/// and line feeds are looked at, so this runs at memory speed.
pub(super) fn split_records(buffer: &[u8], delimiter: u8, from: Split, want: usize) -> Split {
    let mut found = from;
    let mut pos = from.end;
    let mut lines = from.lines;
    let mut quoted = false;
    while found.records < want && pos < buffer.len() {
        if !quoted {
            let Some(i) = memchr::memchr2(b'"', b'\n', &buffer[pos..]).map(|i| pos + i) else {
                break;
            };
            if buffer[i] == b'\n' {
                lines += 1;
                found = Split {
                    end: i + 1,
                    records: found.records + 1,
                    lines,
                };
            } else if i == found.end
                || matches!(buffer[i - 1], b'\n' | b'\r')
                || buffer[i - 1] == delimiter
            {
                quoted = true;
            }
            pos = i + 1;
        } else {
            let Some(j) = memchr::memchr(b'"', &buffer[pos..]).map(|j| pos + j) else {
                break;
            };
            lines += memchr::memchr_iter(b'\n', &buffer[pos..j]).count() as u64;
            match buffer.get(j + 1) {
                Some(b'"') => pos = j + 2,
                // The quote might be the first of a `""` pair: wait for more text.
                None => break,
                Some(_) => {
                    quoted = false;
                    pos = j + 1;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ends_are_found_as_the_csv_crate_finds_them() {
        // (text, records wanted, expected end, records, line feeds)
        let cases: &[(&[u8], usize, usize, usize, u64)] = &[
            (b"a,b\nc,d\n", 1, 4, 1, 1),
            (b"a,b\nc,d\n", 5, 8, 2, 2),
            (b"\"a\nb\",c\nd\n", 1, 8, 1, 2),
            // An unfinished quoted field: no record end yet.
            (b"\"a\nb,c\nd\n", 1, 0, 0, 0),
            // A quote inside an unquoted field is text.
            (b"a\"b,c\nd\n", 1, 6, 1, 1),
            // A closing quote at the buffer's end might open a `""` pair: wait.
            (b"\"a\"", 1, 0, 0, 0),
            (b"x;\"a\nb\";c\n", 1, 10, 1, 2),
        ];
        for &(text, want, end, records, lines) in cases {
            let delimiter = if text.contains(&b';') { b';' } else { b',' };
            let split = split_records(text, delimiter, Split::default(), want);
            assert_eq!(
                (split.end, split.records, split.lines),
                (end, records, lines),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
