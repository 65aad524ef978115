//! Raw phone cells to E.164 numbers.
//!
//! Contract: [`Normalizer::normalize`] maps one raw cell to [`Normalized`]: `Empty` for a blank
//! cell, `Invalid` for anything [`Normalizer::crate_path`] (the `phonenumber` crate in the job's
//! default region and numbering plans, [`PhoneMetadata`]) does not accept as a valid number, or
//! `Valid(number)` with the E.164 digits (no `+`) packed in a `u64`. A cell holding several
//! numbers is represented by its first valid one. The result depends only on the raw text, the
//! region and the plans. Digits are read in any script, as libphonenumber reads them (the
//! crate reads only ASCII digits). Readable cells (digits, the punctuation people type in any
//! layout, Russian words around a number) are read by `fast`, a replay of the crate's own
//! steps; every other cell goes to the crate, once per distinct value per thread while the
//! thread's memo has room.

mod fast;
mod metadata;
mod reference;
mod rules;
mod scripts;

use std::cell::RefCell;
use std::fmt;

use phonenumber::country::Id as Region;
use polars::prelude::PlHashMap;

pub use metadata::{MetadataError, PhoneMetadata, BUILT_IN_VERSION};

/// An E.164 number's digits (country code first, no `+`), at most 15 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(pub u64);

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl E164 {
    /// Parses digits as sent to or echoed by the provider: optional `+`, then 8 to 15 digits.
    pub fn from_digits(s: &str) -> Option<E164> {
        let digits = s.trim().trim_start_matches('+');
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(E164)
    }

    /// The number as `+` and its digits (as the output's `phone_e164` and the shard hash read
    /// it), written into the end of `buffer` without allocating.
    pub fn plus_text(self, buffer: &mut [u8; 21]) -> &str {
        let mut n = self.0;
        let mut start = buffer.len();
        while n >= 10 {
            let pair = 2 * (n % 100) as usize;
            start -= 2;
            buffer[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
            n /= 100;
        }
        if n > 0 || start == buffer.len() {
            start -= 1;
            buffer[start] = b'0' + n as u8;
        }
        start -= 1;
        buffer[start] = b'+';
        // SAFETY: `+` and ASCII digits only.
        unsafe { std::str::from_utf8_unchecked(&buffer[start..]) }
    }
}

/// The two-digit numbers 00 to 99, as text.
const DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// What a phone cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalized {
    Empty,
    Invalid,
    Valid(E164),
}

/// Starts what reading cells needs first — the `phonenumber` crate's built-in metadata, which it
/// parses on first use (some 0.2 s of CPU), and the plans without national prefixes that the
/// reference reads with — on a thread of its own, so that it overlaps with other work; a
/// [`Normalizer`] made meanwhile waits for them instead of making them again.
pub fn warm_up(metadata: PhoneMetadata) {
    let started = std::thread::Builder::new()
        .name("normalize-warm-up".into())
        .spawn(move || metadata.unstripped().by_code(&1).is_some());
    // Without a thread, the first `Normalizer` parses it.
    drop(started);
}

/// Separators between several numbers typed into one cell.
const LIST_SEPARATORS: &[char] = &[',', ';', '/', '|', '\n', '\r'];

/// Reads phone cells in one default region (the region of numbers written without a country
/// code).
#[derive(Debug, Clone, Copy)]
pub struct Normalizer {
    region: Region,
    metadata: PhoneMetadata,
    /// The region in the fast path's rules; `None` if the plans lack it.
    home: Option<fast::Home>,
}

/// One parse of a text, as `parse(region, text)` then `is_valid` and E.164 formatting:
/// `Some(verdict)`, or `None` when this parser cannot tell.
type ParseValid<'a> = &'a mut dyn FnMut(Option<Region>, &str) -> Option<Option<E164>>;

impl Normalizer {
    /// Reads in `region` with `metadata`'s numbering plans.
    pub fn new(region: Region, metadata: PhoneMetadata) -> Self {
        Normalizer {
            region,
            metadata,
            home: fast::Home::new(metadata, region),
        }
    }

    /// The cell's reading: the fast path's when it can tell, else the crate's (remembered).
    pub fn normalize(&self, raw: &str) -> Normalized {
        let raw = raw.trim();
        if raw.is_empty() {
            return Normalized::Empty;
        }
        if let Some(n) = self.fast_path(raw) {
            return n;
        }
        MEMO.with(|memo| {
            memo.borrow_mut()
                .get_or_insert((self.region, self.metadata.identity()), raw, || {
                    self.crate_path(raw)
                })
        })
    }

    /// [`Normalizer::crate_path`]'s reading of a trimmed cell, without the crate: `None` for a
    /// cell that is not readable (`fast::readable`: a character outside its set), which only
    /// the crate reads.
    /// `fast::tests` hold it equal to the crate wherever it answers.
    pub fn fast_path(&self, raw: &str) -> Option<Normalized> {
        let home = self.home?;
        self.read(raw, &mut |region, text| {
            fast::parse_valid(self.metadata, region.map(|_| home), text)
        })
    }

    /// The `phonenumber` crate's reading of a trimmed cell (with libphonenumber's
    /// national-prefix step, `reference`), with the two fallbacks: the reference the fast path
    /// must agree with.
    pub fn crate_path(&self, raw: &str) -> Normalized {
        self.read(raw, &mut |region, text| {
            Some(reference::parse_valid(self.metadata, region, text))
        })
        .expect("the crate always tells")
    }

    /// A cell read whole, else its parts between [`LIST_SEPARATORS`] one by one: the first
    /// valid number wins. Digits of any script are read as their ASCII digits first, as
    /// libphonenumber reads them (`scripts`).
    fn read(&self, raw: &str, parse: ParseValid<'_>) -> Option<Normalized> {
        let raw = &*scripts::to_ascii_digits(raw);
        if let Some(n) = self.read_one(raw, parse)? {
            return Some(Normalized::Valid(n));
        }
        if raw.contains(LIST_SEPARATORS) {
            for part in raw.split(LIST_SEPARATORS) {
                if let Some(n) = self.read_one(part.trim(), parse)? {
                    return Some(Normalized::Valid(n));
                }
            }
        }
        Some(Normalized::Invalid)
    }

    /// One number: in the default region, else written internationally without its `+`
    /// ("79161234567", "375291234567").
    fn read_one(&self, raw: &str, parse: ParseValid<'_>) -> Option<Option<E164>> {
        if raw.is_empty() || raw.len() > 64 || !raw.bytes().any(|b| b.is_ascii_digit()) {
            return Some(None);
        }
        if let Some(n) = parse(Some(self.region), raw)? {
            return Some(Some(n));
        }
        if !raw.contains('+') {
            let mut plus = [b'+'; 65];
            let mut len = 1;
            for digit in raw.bytes().filter(u8::is_ascii_digit) {
                plus[len] = digit;
                len += 1;
            }
            if len > 11 {
                return parse(None, std::str::from_utf8(&plus[..len]).expect("ASCII"));
            }
        }
        Some(None)
    }
}

/// The crate's readings of the cells the fast path does not take, kept for repeats (the same
/// placeholder, the same note): at most [`MEMO_ENTRIES`], forgotten all at once when full.
struct Memo {
    /// The region and the plans' identity the readings are in.
    region: Option<(Region, usize)>,
    readings: PlHashMap<Box<str>, Normalized>,
}

/// How many readings a thread's memo holds at most (a few MB).
const MEMO_ENTRIES: usize = 1 << 16;

impl Memo {
    fn get_or_insert(
        &mut self,
        region: (Region, usize),
        raw: &str,
        read: impl FnOnce() -> Normalized,
    ) -> Normalized {
        if self.region != Some(region) || self.readings.len() >= MEMO_ENTRIES {
            self.readings.clear();
            self.region = Some(region);
        }
        if let Some(&n) = self.readings.get(raw) {
            return n;
        }
        let n = read();
        self.readings.insert(raw.into(), n);
        n
    }
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo {
        region: None,
        readings: PlHashMap::default(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru() -> Normalizer {
        Normalizer::new(Region::RU, PhoneMetadata::built_in())
    }

    #[test]
    fn plus_text_writes_any_number() {
        let mut buffer = [0u8; 21];
        for n in [0, 7, 10, 99, 100, 101, 79161234567, 4915112345678, u64::MAX] {
            assert_eq!(E164(n).plus_text(&mut buffer), format!("+{n}"));
        }
    }

    #[test]
    fn formats_people_type() {
        let cases: &[(&str, Normalized)] = &[
            ("8 (916) 123-45-67", Normalized::Valid(E164(79161234567))),
            ("+7 916 123 45 67", Normalized::Valid(E164(79161234567))),
            ("9161234567", Normalized::Valid(E164(79161234567))),
            ("+7(916)1234567", Normalized::Valid(E164(79161234567))),
            ("79161234567", Normalized::Valid(E164(79161234567))),
            ("  8-916-123-45-67  ", Normalized::Valid(E164(79161234567))),
            (
                "+7 916 123 45 67, 8 926 765 43 21",
                Normalized::Valid(E164(79161234567)),
            ),
            ("нет; 8 926 765 43 21", Normalized::Valid(E164(79267654321))),
            ("+375 29 123-45-67", Normalized::Valid(E164(375291234567))),
            ("+380 67 123 4567", Normalized::Valid(E164(380671234567))),
            ("+7 701 123 4567", Normalized::Valid(E164(77011234567))),
            ("", Normalized::Empty),
            ("   ", Normalized::Empty),
            ("n/a", Normalized::Invalid),
            ("-", Normalized::Invalid),
            ("12345", Normalized::Invalid),
            ("8 (916) 123-45", Normalized::Invalid),
            ("+7 000 000 00 00", Normalized::Invalid),
            ("звонить вечером", Normalized::Invalid),
        ];
        for (raw, want) in cases {
            assert_eq!(ru().normalize(raw), *want, "{raw:?}");
        }
    }

    /// Digits in other scripts, as libphonenumber reads them (`normalizeDigits`), the same in
    /// both paths; fullwidth punctuation is the crate's punctuation.
    #[test]
    fn digits_of_every_script_are_read() {
        let moscow = Normalized::Valid(E164(79161234567));
        let cases: &[(&str, Normalized)] = &[
            ("＋７ ９１６ １２３ ４５ ６７", moscow),
            ("８（９１６）１２３－４５－６７", moscow),
            ("＋７　９１６　１２３　４５　６７", moscow),
            ("+٧ ٩١٦ ١٢٣ ٤٥ ٦٧", moscow),
            ("٨ ٩١٦ ١٢٣-٤٥-٦٧", moscow),
            ("+۷ ۹۱۶ ۱۲۳ ۴۵ ۶۷", moscow),
            ("+७ ९१६ १२३ ४५ ६७", moscow),
            ("+৭ ৯১৬ ১২৩ ৪৫ ৬৭", moscow),
            ("+7 916 123 45 6٧", moscow),
            (
                "нет; ８ ９２６ ７６５ ４３ ２１",
                Normalized::Valid(E164(79267654321)),
            ),
            (
                "＋３７５ ２９ １２３-４５-６７",
                Normalized::Valid(E164(375291234567)),
            ),
            ("٨ ٩١٦ ١٢٣", Normalized::Invalid),
            ("²³⁴⁵⁶⁷⁸⁹⁰¹²", Normalized::Invalid),
        ];
        for (raw, want) in cases {
            let n = ru();
            assert_eq!(n.crate_path(raw), *want, "the crate on {raw:?}");
            assert_eq!(n.normalize(raw), *want, "{raw:?}");
            if let Some(fast) = n.fast_path(raw) {
                assert_eq!(fast, *want, "the fast path on {raw:?}");
            }
        }
    }

    #[test]
    fn digits_round_trip() {
        let cases: &[(&str, Option<u64>)] = &[
            ("79161234567", Some(79161234567)),
            ("+79161234567", Some(79161234567)),
            ("7916", None),
            ("7916123456789012", None),
            ("7916x234567", None),
        ];
        for (text, want) in cases {
            assert_eq!(E164::from_digits(text).map(|e| e.0), *want, "{text}");
        }
    }
}
