//! The fields of a run of whole CSV records, split as the `csv` crate splits them, a field at a
//! time instead of a byte at a time.
//!
//! Contract: [`Records::next`] finds the next record of the text and hands each of its fields,
//! unescaped, to a callback, in order, exactly as csv-core reads them with the reader's
//! settings (`double_quote`, a `\r`, `\n` or `\r\n` terminator, no escape or comment
//! character): empty lines are no records; a quote opens a quoted field only at a field's
//! start; in one, `""` is a quote and delimiters and line ends are text; what follows a
//! closing quote up to the next delimiter or line end is text too. An unquoted field is found
//! with one memchr, a quoted one with one per quote, so quoting costs little more than none
//! (a field is copied only when it holds `""` or text after its closing quote). The record ends
//! the reader finds (`records`) are assumed: the text holds whole records.

/// The records of a text, one after another.
pub(super) struct Records<'a> {
    text: &'a [u8],
    delimiter: u8,
    /// Where the next record, or the next field of the current one, starts.
    pos: usize,
    /// A field's text when it is not a slice of `text`.
    copied: Vec<u8>,
}

/// How a field ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Delimiter,
    Record,
}

impl<'a> Records<'a> {
    pub(super) fn new(text: &'a [u8], delimiter: u8) -> Records<'a> {
        Records {
            text,
            delimiter,
            pos: 0,
            copied: Vec::new(),
        }
    }

    /// The next record: `field(i, bytes)` for each of its fields, in order; then where it
    /// starts in the text and how many fields it has. `None` at the end of the text.
    pub(super) fn next(&mut self, mut field: impl FnMut(usize, &[u8])) -> Option<(usize, usize)> {
        let text = self.text;
        let blank = text[self.pos..]
            .iter()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
        self.pos += blank;
        if self.pos == text.len() {
            return None;
        }
        let start = self.pos;
        let mut fields = 0;
        loop {
            let end = if text.get(self.pos) == Some(&b'"') {
                self.quoted(|bytes| field(fields, bytes))
            } else {
                let (bytes, end) = self.unquoted(self.pos);
                field(fields, bytes);
                end
            };
            fields += 1;
            if end == End::Record {
                return Some((start, fields));
            }
        }
    }

    /// An unquoted field (or the rest of a quoted one) from `from`: up to the next delimiter or
    /// line end, which it moves past (a line end is left for `next` to skip).
    fn unquoted(&mut self, from: usize) -> (&'a [u8], End) {
        let text = self.text;
        match memchr::memchr3(self.delimiter, b'\n', b'\r', &text[from..]) {
            Some(k) if text[from + k] == self.delimiter => {
                self.pos = from + k + 1;
                (&text[from..from + k], End::Delimiter)
            }
            Some(k) => {
                self.pos = from + k;
                (&text[from..from + k], End::Record)
            }
            None => {
                self.pos = text.len();
                (&text[from..], End::Record)
            }
        }
    }

    /// A quoted field, its opening quote at `pos`.
    fn quoted(&mut self, field: impl FnOnce(&[u8])) -> End {
        let text = self.text;
        let mut from = self.pos + 1;
        self.copied.clear();
        let mut copying = false;
        loop {
            let Some(quote) = memchr::memchr(b'"', &text[from..]).map(|q| from + q) else {
                // The text ends inside the quotes: the rest is the field (csv-core at its end).
                self.pos = text.len();
                return self.give(copying, from, text.len(), field, End::Record);
            };
            match text.get(quote + 1) {
                Some(b'"') => {
                    // `""`: one quote, kept.
                    self.copied.extend_from_slice(&text[from..=quote]);
                    copying = true;
                    from = quote + 2;
                }
                Some(&b) if b == self.delimiter => {
                    self.pos = quote + 2;
                    return self.give(copying, from, quote, field, End::Delimiter);
                }
                None | Some(b'\n' | b'\r') => {
                    self.pos = quote + 1;
                    return self.give(copying, from, quote, field, End::Record);
                }
                Some(_) => {
                    // Text after the closing quote belongs to the field, quotes and all.
                    self.copied.extend_from_slice(&text[from..quote]);
                    let (rest, end) = self.unquoted(quote + 1);
                    self.copied.extend_from_slice(rest);
                    field(&self.copied);
                    return end;
                }
            }
        }
    }

    /// Hands over a quoted field's text: `text[from..to]`, after what was copied if anything.
    fn give(
        &mut self,
        copying: bool,
        from: usize,
        to: usize,
        field: impl FnOnce(&[u8]),
        end: End,
    ) -> End {
        if copying {
            self.copied.extend_from_slice(&self.text[from..to]);
            field(&self.copied);
        } else {
            field(&self.text[from..to]);
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of `text` as this module splits it.
    fn split(text: &[u8], delimiter: u8) -> Vec<(usize, Vec<Vec<u8>>)> {
        let mut records = Records::new(text, delimiter);
        let mut out = Vec::new();
        loop {
            let mut fields = Vec::new();
            let next = records.next(|i, bytes| {
                assert_eq!(i, fields.len());
                fields.push(bytes.to_vec());
            });
            match next {
                Some((start, n)) => {
                    assert_eq!(n, fields.len());
                    out.push((start, fields));
                }
                None => return out,
            }
        }
    }

    /// Every record of `text` as the `csv` crate reads it, with where it starts.
    fn by_the_csv_crate(text: &[u8], delimiter: u8) -> Vec<(usize, Vec<Vec<u8>>)> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .double_quote(true)
            .from_reader(text);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            let from = record.position().map_or(0, |p| p.byte() as usize);
            let blank = text[from..]
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            out.push((from + blank, record.iter().map(<[u8]>::to_vec).collect()));
        }
        out
    }

    #[test]
    fn fields_split_as_the_csv_crate_splits_them() {
        let texts: &[&[u8]] = &[
            b"a,b,c\nd,e,f\n",
            b"a,b,c",
            b"a,,\n,\n,,x\n",
            b"\n\r\n\ra,b\r\n\r\nc,d\r\re\n",
            b"\"a,b\",\"c\nd\",\"e\r\nf\"\nx,y,z\n",
            b"\"say \"\"hi\"\"\",\"\"\"\",\"\"\n",
            b"\"ab\"cd,\"a\"\"b\"c\"d,x\"y\n\"q\"r\rs\n",
            b"a,\"b\"\n\"c\",d",
            b"\"unclosed, at the end\nstill",
            b"\"\",\n\"\"\n,\"\"",
            b"\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd,\"\xd0\x98, \xd0\xb8\"\n",
            b"a;b;\"c;d\"\n",
            b"a\tb\t\"c\td\"\n",
        ];
        for text in texts {
            let delimiter = match () {
                _ if text.contains(&b'\t') => b'\t',
                _ if text.contains(&b';') => b';',
                _ => b',',
            };
            assert_eq!(
                split(text, delimiter),
                by_the_csv_crate(text, delimiter),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
