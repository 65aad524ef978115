//! Raw phone cells to E.164 numbers, exactly as libphonenumber reads them.
//!
//! Contract: [`Normalizer::normalize`] maps one raw cell to [`Normalized`]: `Empty` for a blank
//! cell, `Invalid` for a cell holding no number libphonenumber calls valid, or `Valid(number)`
//! with the E.164 digits (no `+`) packed in a `u64`. A cell is read whole, as libphonenumber's
//! `parse(cell, default region)` then `isValidNumber` read it; if that gives no valid number,
//! its parts between [`LIST_SEPARATORS`] are read one by one and the first valid one is the
//! cell's number. The result depends only on the raw text, the region and the plans
//! ([`PhoneMetadata`]). The reading is `rlibphonenumber`'s (`reference`), libphonenumber's
//! algorithm, held to libphonenumber itself by the differential test
//! (`tests/it/libphonenumber`, against the Python port `phonenumbers`). The common cell
//! (ASCII digits and the punctuation of phone numbers) is read by `fast`, the same steps on
//! the same plans compiled per thread, held equal to `rlibphonenumber` by `fast::tests` and
//! the differential test; every other cell goes to `rlibphonenumber`, remembered per thread in
//! a bounded memo.

mod fast;
mod metadata;
mod reference;
mod rules;
mod xml;

use std::cell::RefCell;
use std::fmt;

use polars::prelude::PlHashMap;

pub use metadata::{MetadataError, PhoneMetadata, BUILT_IN_VERSION};
/// A region (ISO 3166 code) as libphonenumber names it: the default region of numbers written
/// without a country code.
pub use rlibphonenumber::Region;

/// An E.164 number's digits (country code first, no `+`), at most 15 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(pub u64);

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl E164 {
    /// Parses digits as sent to or echoed by the provider: optional `+`, then 5 to 19 digits
    /// (libphonenumber's valid numbers run from 6 digits, `+989601`, to over E.164's 15,
    /// `+4980012345678900`).
    pub fn from_digits(s: &str) -> Option<E164> {
        let digits = s.trim().trim_start_matches('+');
        if !(5..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
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

/// Starts what reading cells needs first — the plans, which `rlibphonenumber` decodes on first
/// use — on a thread of its own, so that it overlaps with other work; a [`Normalizer`] made
/// meanwhile waits for them instead of making them again.
pub fn warm_up(metadata: PhoneMetadata) {
    let started = std::thread::Builder::new()
        .name("normalize-warm-up".into())
        .spawn(move || metadata.has_region(Region::RU));
    // Without a thread, the first reading decodes them.
    drop(started);
}

/// Separators between several numbers typed into one cell.
pub const LIST_SEPARATORS: &[char] = &[',', ';', '/', '|', '\n', '\r'];

/// Reads phone cells in one default region (the region of numbers written without a country
/// code).
#[derive(Debug, Clone, Copy)]
pub struct Normalizer {
    region: Region,
    metadata: PhoneMetadata,
    /// The region in the fast path's rules; `None` if the plans lack it.
    home: Option<fast::Home>,
}

impl Normalizer {
    /// Reads in `region` with `metadata`'s numbering plans.
    pub fn new(region: Region, metadata: PhoneMetadata) -> Self {
        Normalizer {
            region,
            metadata,
            home: fast::Home::new(metadata, region),
        }
    }

    /// The cell's reading: the fast path's where it tells, else `rlibphonenumber`'s
    /// (remembered per thread for repeats).
    pub fn normalize(&self, raw: &str) -> Normalized {
        let raw = raw.trim();
        if raw.is_empty() {
            return Normalized::Empty;
        }
        if let Some(n) = self.fast_path(raw) {
            return n;
        }
        // No digit in any script: no number (libphonenumber's `NOT_A_NUMBER`).
        if raw.is_ascii() && !raw.bytes().any(|b| b.is_ascii_digit()) {
            return Normalized::Invalid;
        }
        MEMO.with(|memo| {
            memo.borrow_mut()
                .get_or_insert((self.region, self.metadata.identity()), raw, || {
                    self.read(raw)
                })
        })
    }

    /// The fast path's reading of a trimmed cell (`fast`): `None` where it does not tell.
    pub fn fast_path(&self, raw: &str) -> Option<Normalized> {
        let home = self.home?;
        let one = |text: &str| fast::parse_valid(self.metadata, home, text);
        if let Some(n) = one(raw)? {
            return Some(Normalized::Valid(n));
        }
        if raw.contains(LIST_SEPARATORS) {
            for part in raw.split(LIST_SEPARATORS) {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                if let Some(n) = one(part)? {
                    return Some(Normalized::Valid(n));
                }
            }
        }
        Some(Normalized::Invalid)
    }

    /// `rlibphonenumber`'s reading of a trimmed cell: read whole, else its parts between
    /// [`LIST_SEPARATORS`] one by one, the first valid number winning. Not remembered; the
    /// reference the fast path is held to.
    pub fn read(&self, raw: &str) -> Normalized {
        if let Some(n) = self.read_one(raw) {
            return Normalized::Valid(n);
        }
        if raw.contains(LIST_SEPARATORS) {
            for part in raw.split(LIST_SEPARATORS) {
                if let Some(n) = self.read_one(part.trim()) {
                    return Normalized::Valid(n);
                }
            }
        }
        Normalized::Invalid
    }

    /// One number, as libphonenumber reads it in the default region.
    fn read_one(&self, raw: &str) -> Option<E164> {
        if raw.is_empty() {
            return None;
        }
        reference::parse_valid(self.metadata, self.region, raw)
    }
}

/// The readings of the last distinct cells, kept for repeats (the same placeholder, the same
/// note, the same number on several rows): at most [`MEMO_ENTRIES`], forgotten all at once when full.
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
        let moscow = Normalized::Valid(E164(79161234567));
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
            // The four classes (issue 18), as libphonenumber reads them.
            ("8 (406) 930-57-50", Normalized::Invalid),
            ("8-430-230-45-27", Normalized::Invalid),
            ("375291234567", Normalized::Invalid),
            ("7012426332", Normalized::Valid(E164(77012426332))),
            ("+387611234567", Normalized::Invalid),
            ("+86101234567", Normalized::Invalid),
            (
                "+4980012345678900",
                Normalized::Valid(E164(4980012345678900)),
            ),
            ("+6837012", Normalized::Valid(E164(6837012))),
            ("+989601", Normalized::Valid(E164(989601))),
            // Notes, extensions and vanity letters, as libphonenumber (`phonenumbers` 9.0.42)
            // reads them; docs/GUIDE.md's examples.
            ("моб. 8 916 123-45-67", moscow),
            ("Тел.: +7 916 123 45 67", moscow),
            ("8 916 123-45-67 доб. 12", moscow),
            ("8 916 123-45-67, 123", moscow),
            ("8 916 123-45-67;45", moscow),
            ("8 916 123-45-67 x12", moscow),
            ("8 916 123-45-67\u{a0}доб.\u{a0}3", moscow),
            ("+7 916 123\u{2013}45\u{2013}67", moscow),
            // A fullwidth tilde is punctuation to libphonenumber; rlibphonenumber 2.2.15 forgot it.
            ("+7 916 123\u{ff5e}45 67", moscow),
            ("8 916 123-45-67 (Иван)", Normalized::Invalid),
            ("8 916 123-45-67 жена", Normalized::Invalid),
            ("8 800 FLOWERS", Normalized::Valid(E164(78003569377))),
            ("+7 916 123 45 67 WhatsApp", Normalized::Invalid),
        ];
        for (raw, want) in cases {
            assert_eq!(ru().normalize(raw), *want, "{raw:?}");
        }
    }

    /// Digits in other scripts, as libphonenumber reads them (`normalizeDigits`), and
    /// fullwidth punctuation.
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
            assert_eq!(n.read(raw), *want, "{raw:?}");
            assert_eq!(n.normalize(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn digits_round_trip() {
        let cases: &[(&str, Option<u64>)] = &[
            ("79161234567", Some(79161234567)),
            ("+79161234567", Some(79161234567)),
            ("7916", None),
            ("4980012345678900", Some(4980012345678900)),
            ("79161234567890123456", None),
            ("7916x234567", None),
        ];
        for (text, want) in cases {
            assert_eq!(E164::from_digits(text).map(|e| e.0), *want, "{text}");
        }
    }
}
