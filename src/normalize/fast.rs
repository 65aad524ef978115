//! The `phonenumber` crate's `parse` + `is_valid`, replayed step by step for readable cells.
//!
//! Contract: [`parse_valid`] gives what `parse(region, text)` followed by `is_valid` and E.164
//! formatting gives — a valid number or none — for any [`readable`] text (digits, the
//! punctuation people type, `+`, and Russian words around or inside a number), whatever the
//! order; for any other text it says nothing (`None`) and the crate decides. Each step mirrors
//! one of the crate's (0.3.10, named in the comments), with the metadata compiled per thread by
//! [`super::rules`]; the crate's quirks are kept on purpose, since the crate is the reference,
//! but for its national-prefix step, which is libphonenumber's as [`super::reference`] has it.
//! `tests` hold the two equal over random layouts, country codes, regions and junk.

use std::rc::Rc;

use phonenumber::country::Id as Region;

use super::metadata::keeps_stripped_length;
use super::rules::{self, Country, Length, RegionRules};
use super::{PhoneMetadata, E164};

/// The job's default region, found in its country's rules.
#[derive(Debug, Clone, Copy)]
pub(super) struct Home {
    code: u16,
    /// The region's position among its country code's regions.
    index: usize,
}

impl Home {
    /// `None` when the plans do not know the region.
    pub(super) fn new(metadata: PhoneMetadata, region: Region) -> Option<Home> {
        let code = metadata.database().by_id(region.as_ref())?.country_code();
        let index = rules::country(metadata, code)?.position(region.as_ref())?;
        Some(Home { code, index })
    }
}

/// Whether the fast path reads a text: ASCII digits and letters, [`is_punctuation`], `+`, the
/// extension marks `,` and `;`, `:`, Russian letters and `№`. Not the other extension marks
/// (`#`, `~`), not `*` or `=`, not other scripts' digits or letters.
pub(super) fn readable(text: &str) -> bool {
    if text
        .bytes()
        .all(|b| b.is_ascii() && READABLE_ASCII[usize::from(b)])
    {
        return true;
    }
    text.chars().all(|c| {
        (c.is_ascii() && READABLE_ASCII[c as usize])
            || is_punctuation(c)
            || is_letter(c)
            || c == '№'
    })
}

/// The ASCII characters of [`readable`] text.
const READABLE_ASCII: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = (b as u8).is_ascii_alphanumeric()
            || matches!(
                b as u8,
                b' ' | b'-' | b'.' | b'(' | b')' | b'/' | b'+' | b',' | b';' | b':'
            );
        b += 1;
    }
    table
};

/// The crate's punctuation (`helper::punctuation`): spaces (no-break, ideographic, zero-width),
/// hyphens, dashes and minus signs, soft hyphens, dots, parentheses and brackets, slashes, in
/// ASCII or fullwidth. Not the ones that also mark an extension (`~`, fullwidth `～`), not the
/// fullwidth full stop (the crate reads `76．22…` otherwise), not the katakana long-vowel mark
/// (a letter to the crate's end-of-number rule), not ASCII `[` `]`.
fn is_punctuation(c: char) -> bool {
    matches!(
        c,
        ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\u{ad}' | '\u{200b}' | '\u{2010}'
            ..='\u{2015}'
                | '\u{2053}'
                | '\u{2060}'
                | '\u{2212}'
                | '\u{223c}'
                | '\u{3000}'
                | '\u{ff08}'
                | '\u{ff09}'
                | '\u{ff0d}'
                | '\u{ff0f}'
                | '\u{ff3b}'
                | '\u{ff3d}'
    )
}

/// A Russian letter: a letter to the crate (kept at the end of a number, where punctuation is
/// dropped), but no digit, no punctuation, nothing an extension pattern matches, never mapped
/// to a digit.
fn is_letter(c: char) -> bool {
    matches!(c, 'А'..='я' | 'Ё' | 'ё')
}

/// What the RFC 3966 reader takes as separators inside a number.
const RFC_SEPARATORS: &[u8] = b"-.()";

/// The crate's reading of `text` in `metadata`'s plans with `home` as the default region
/// (`None`: no region): `Some(Some(number))` valid, `Some(None)` not, `None` for a text that is
/// not [`readable`] (or one the crate would panic on).
pub(super) fn parse_valid(
    metadata: PhoneMetadata,
    home: Option<Home>,
    text: &str,
) -> Option<Option<E164>> {
    let simple = Simple::scan(text);
    let has_digits = match &simple {
        Some(simple) => simple.digits.len() > 0,
        None => readable(text) && text.bytes().any(|b| b.is_ascii_digit()),
    };
    if !has_digits {
        return None;
    }
    let country = home.and_then(|h| rules::country(metadata, h.code));
    let home = match (&country, home) {
        (Some(c), Some(h)) => Some(&c.regions[h.index]),
        _ => None,
    };
    let Some((code, national)) = parse(metadata, home, text, simple.as_ref())? else {
        return Some(None);
    };
    let valid = match &country {
        Some(c) if c.regions[0].code == code => c.is_valid(national.as_str()),
        _ => rules::country(metadata, code).is_some_and(|c| c.is_valid(national.as_str())),
    };
    Some(valid.then(|| e164(code, national.as_str())).flatten())
}

/// `parser::parse_with`: the country code and national number, `Some(None)` for a parse
/// error, `None` where the crate would panic.
fn parse(
    metadata: PhoneMetadata,
    home: Option<&RegionRules>,
    text: &str,
    simple: Option<&Simple>,
) -> Option<Option<(u16, Digits)>> {
    let read = match simple.and_then(|simple| simple.read(text)) {
        Some(read) => read,
        None => read(text),
    };
    let Some((code, mut national, extracted)) =
        read.and_then(|read| country_code(metadata, home, read))
    else {
        return Some(None);
    };
    // The crate's checks of the whole national number, then libphonenumber's choice of the
    // region whose national prefix is stripped: the default region's for a number read
    // without a country code, else the country code's main region's.
    if !fits_national_number(national.as_str()) {
        return Some(None);
    }
    let owner: Option<Rc<Country>>;
    let meta = match home {
        Some(home) if !extracted => Some(home),
        _ => {
            owner = rules::country(metadata, code);
            owner.as_deref().map(|c| &c.regions[0])
        }
    };
    if let Some(meta) = meta {
        national = strip_national_prefix(meta, national)?;
    }
    Some(fits_national_number(national.as_str()).then_some((code, national)))
}

/// The crate's checks of a national number (`MIN_LENGTH_FOR_NSN`, `MAX_LENGTH_FOR_NSN`, then
/// `NationalNumber::from_str`): 2 to 17 digits, not all zeros, below 2^56.
fn fits_national_number(digits: &str) -> bool {
    let zeros = digits.bytes().take_while(|&b| b == b'0').count();
    if !(2..=17).contains(&digits.len()) || zeros == digits.len() {
        return false;
    }
    let value = digits
        .bytes()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    value < 1 << 56
}

/// A number as the crate's readers leave it for `country_code`: its digits, after any pluses
/// it started with, or after an RFC 3966 prefix.
struct Read {
    digits: Digits,
    /// Whether it started with a `+` (the natural-language reader).
    plus: bool,
    /// The RFC 3966 reader's prefix, as the country code its digits spell (`Some(None)`: they
    /// spell none).
    prefix: Option<Option<u16>>,
}

/// The crate's readers step by step (RFC 3966, else natural language) and `is_viable`; `None`
/// where it finds no number.
fn read(text: &str) -> Option<Read> {
    let (national, prefix) = match rfc3966(text) {
        Some(rfc) => rfc,
        None => (natural(text)?, None),
    };
    if !is_viable(national) {
        return None;
    }
    let without_pluses = national.trim_start_matches('+');
    Some(Read {
        digits: Digits::of(without_pluses),
        plus: prefix.is_none() && without_pluses.len() < national.len(),
        prefix: prefix.map(|p| Digits::of(p).as_str().parse().ok()),
    })
}

/// A simple text — ASCII digits, spaces, `-` `.` `(` `)` `/` `+` `:`, most of any export — read
/// in one pass: what `read` finds in its steps, for the two readings such a text can have
/// (RFC 3966 without a prefix, or natural language).
struct Simple {
    /// Every digit of the text.
    digits: Digits,
    /// The natural-language reader's number: from the first `+` or digit to the last digit.
    start: usize,
    end: usize,
    /// The first character after `start` that makes the number not viable (`:`, a `+` after
    /// the leading ones), if any.
    spoiler: usize,
}

impl Simple {
    fn scan(text: &str) -> Option<Simple> {
        let mut simple = Simple {
            digits: Digits::empty(),
            start: usize::MAX,
            end: 0,
            spoiler: usize::MAX,
        };
        // While the number has only pluses so far.
        let mut pluses_only = false;
        for (i, b) in text.bytes().enumerate() {
            match b {
                b'0'..=b'9' => {
                    if simple.start == usize::MAX {
                        simple.start = i;
                    }
                    simple.digits.push(b);
                    simple.end = i + 1;
                    pluses_only = false;
                }
                b'+' if simple.start == usize::MAX => {
                    simple.start = i;
                    pluses_only = true;
                }
                b'+' if pluses_only => {}
                b'+' | b':' => {
                    if simple.start != usize::MAX {
                        simple.spoiler = simple.spoiler.min(i);
                    }
                    pluses_only = false;
                }
                b' ' | b'-' | b'.' | b'(' | b')' | b'/' => pluses_only = false,
                _ => return None,
            }
        }
        Some(simple)
    }

    /// `read` on the text this was scanned from, or `None` where its steps are needed (an RFC
    /// 3966 prefix).
    fn read(&self, text: &str) -> Option<Option<Read>> {
        let two_digits =
            |national: &str| national.len() == 2 && national.bytes().all(|b| b.is_ascii_digit());
        let (viable, plus) = match rfc3966(text) {
            // The whole text, digits and separators only.
            Some((national, None)) => (two_digits(national) || self.digits.len() >= 3, false),
            Some((_, Some(_))) => return None,
            None => {
                let national = &text[self.start..self.end.max(self.start)];
                let viable = national.len() >= 2
                    && (two_digits(national)
                        || (self.spoiler >= self.end && self.digits.len() >= 3));
                (viable, national.starts_with('+'))
            }
        };
        Some(viable.then_some(Read {
            digits: self.digits,
            plus,
            prefix: None,
        }))
    }
}

/// `rfc3966::phone_number` on a readable text: `(national, prefix)` as written, or `None`
/// where the crate goes on to the natural-language reader. Hex digits count as digits here;
/// what follows a `;` after the number is the crate's parameters: none of them matters here.
fn rfc3966(text: &str) -> Option<(&str, Option<&str>)> {
    if text.contains(' ') {
        return None;
    }
    let text = match text.get(..4) {
        Some(tag) if tag.eq_ignore_ascii_case("tel:") => &text[4..],
        _ => text,
    };
    let (prefix, rest) = match text.strip_prefix('+') {
        // Everything up to the first separator (at least one character) is the prefix.
        Some(rest) => match rest.bytes().position(|b| RFC_SEPARATORS.contains(&b)) {
            Some(k) if k > 0 => (Some(&rest[..k]), &rest[k..]),
            _ => return None,
        },
        None => (None, text),
    };
    let number = |b: u8| b.is_ascii_hexdigit() || RFC_SEPARATORS.contains(&b);
    let end = rest.bytes().position(|b| !number(b)).unwrap_or(rest.len());
    (end > 0 && matches!(rest.as_bytes().get(end), None | Some(b';')))
        .then_some((&rest[..end], prefix))
}

/// `natural::phone_number` on a readable text with a digit: `helper::extract` (from the first
/// `+` or digit, up to the last digit or letter: what follows is neither and is dropped; cut
/// where a second number starts), then an extension cut off the end. `None` where the crate
/// fails.
fn natural(text: &str) -> Option<&str> {
    let start = text
        .bytes()
        .position(|b| b == b'+' || b.is_ascii_digit())
        .expect("a digit");
    let end = if text.is_ascii() {
        text.bytes()
            .rposition(|b| b.is_ascii_alphanumeric())
            .expect("a digit")
            + 1
    } else {
        let (last, c) = text
            .char_indices()
            .rev()
            .find(|&(_, c)| c.is_ascii_alphanumeric() || is_letter(c))
            .expect("a digit");
        last + c.len_utf8()
    };
    let mut number = &text[start..end];
    // `SECOND_NUMBER_START`: a slash, spaces, then `x`.
    let second = number
        .match_indices('/')
        .find(|(i, _)| number[i + 1..].trim_start_matches(' ').starts_with('x'));
    if let Some((i, _)) = second {
        number = &number[..i];
    }
    // Of a readable text, only `,`, `;` and Latin letters can start an extension.
    if !number
        .bytes()
        .any(|b| matches!(b, b',' | b';') || b.is_ascii_alphabetic())
    {
        return Some(number);
    }
    EXTENSION.with(|extension| match extension.captures(number) {
        // The crate fails unless the second way of writing an extension matched.
        Some(c) if c.get(2).is_none() => None,
        Some(c) => Some(&number[..c.get(0).expect("the whole match").start()]),
        None => Some(number),
    })
}

thread_local! {
    /// The crate's `consts::EXTN_PATTERN` (0.3.10), compiled per thread.
    static EXTENSION: regex::Regex = regex::RegexBuilder::new(concat!(
        r"(?:;ext=(\p{Nd}{0,7})|[ \x{00A0}\t,]*(?:e?xt(?:ensi(?:o\x{0301}?|\x{00F3}))?n?|",
        r"\x{FF45}?\x{FF58}\x{FF54}\x{FF4E}?|[,;x\x{FF58}#\x{FF03}~\x{FF5E}]|int|anexo|",
        r"\x{FF49}\x{FF4E}\x{FF54})[:\.\x{FF0E}]?[ \x{00A0}\t,-]*(\p{Nd}{0,7})#?|",
        r"[- ]+(\p{Nd}{1,5})#)$",
    ))
    .case_insensitive(true)
    .build()
    .expect("the crate's pattern compiles");
}

/// `is_viable`: two digits alone, or pluses, then punctuation (`x` is punctuation to the crate)
/// and at least three digits before any Latin letter.
fn is_viable(national: &str) -> bool {
    if national.len() == 2 && national.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let rest = national.trim_start_matches('+');
    let counted = if rest.is_ascii() {
        viable_digits(rest.bytes().map(char::from))
    } else {
        viable_digits(rest.chars())
    };
    national.len() >= 2 && counted.is_some_and(|digits| digits >= 3)
}

/// The digits of a number after its pluses, or `None` if a character rules it out: anything but
/// digits, punctuation and Latin letters (after three digits).
fn viable_digits(chars: impl Iterator<Item = char>) -> Option<usize> {
    let mut digits = 0;
    for c in chars {
        if c.is_ascii_digit() {
            digits += 1;
        } else if c == 'x' || is_punctuation(c) {
            continue;
        } else if !c.is_ascii_alphabetic() || digits < 3 {
            return None;
        }
    }
    Some(digits)
}

/// `helper::country_code` (with `international_prefix`): the country code, the national
/// number without it, and whether the code was read from the number (rather than being the
/// default region's); `None` for a parse error.
fn country_code(
    metadata: PhoneMetadata,
    home: Option<&RegionRules>,
    read: Read,
) -> Option<(u16, Digits, bool)> {
    let mut national = read.digits;
    if let Some(code) = read.prefix {
        // The RFC 3966 prefix: its digits are the country code.
        let code = code?;
        return (national.len() > 2 && metadata.knows_code(code)).then_some((code, national, true));
    }
    let mut international = read.plus;
    // The region's international prefix, unless a 0 follows it.
    let idd = home.and_then(|h| h.international_prefix.as_ref());
    if let Some(end) = idd.and_then(|p| p.match_at_start(national.as_str())) {
        if !national.as_str()[end..].starts_with('0') {
            international = true;
            national.skip(end);
        }
    }
    if international {
        let digits = national.as_str();
        if digits.len() <= 2 || digits.starts_with('0') {
            return None;
        }
        // Country codes are prefix-free: the first 1 to 3 digits that name one.
        let (len, code) = (1..=3)
            .map(|len| (len, digits[..len].parse().expect("digits")))
            .find(|&(_, code)| metadata.knows_code(code))?;
        national.skip(len);
        return Some((code, national, true));
    }
    // No `+` and no international prefix: the default region's code, which the number may
    // start with when it does not fit the region without it.
    let home = home?;
    let digits = national.as_str();
    let extracted = digits.starts_with(home.code_digits.as_str())
        && (!home.general.is_match(digits)
            || home.general.length(digits.len()) != Length::Possible);
    if extracted {
        national.skip(home.code_digits.len());
    }
    Some((home.code, national, extracted))
}

/// `reference::strip_national_prefix` (libphonenumber's) on the fast path's rules; `None`
/// where a transformed number is no digits.
fn strip_national_prefix(meta: &RegionRules, national: Digits) -> Option<Digits> {
    let Some(parsing) = meta.prefix_for_parsing.as_ref() else {
        return Some(national);
    };
    let digits = national.as_str();
    let mut potential = national;
    match meta.prefix_transform.filter(|rule| !rule.is_empty()) {
        Some(rule) => {
            let regex = parsing.regex();
            let Some(captures) = regex.captures(digits.as_bytes()) else {
                return Some(national);
            };
            if captures.get(captures.len() - 1).is_some() {
                let transformed = regex.replace(digits.as_bytes(), rule.as_bytes());
                potential = Digits::exactly(std::str::from_utf8(&transformed).ok()?)?;
            } else {
                potential.skip(captures.get(0).expect("the whole match").end());
            }
        }
        // Without a rule only the match's end matters (a literal prefix is compared, not run).
        None => match parsing.match_at_start(digits) {
            Some(end) => potential.skip(end),
            None => return Some(national),
        },
    }
    // Whether the original was viable matters only when the result is not (one pattern run
    // fewer for most numbers).
    let kept = (meta.general.matches_whole(potential.as_str())
        || !meta.general.matches_whole(digits))
        && keeps_stripped_length(&meta.lengths, &meta.local_lengths, potential.len());
    Some(if kept { potential } else { national })
}

/// A valid number formatted as E.164, as `E164::from_digits` reads it (8 to 15 digits).
fn e164(code: u16, national: &str) -> Option<E164> {
    let code_len = code.checked_ilog10().unwrap_or(0) as usize + 1;
    if !(8..=15).contains(&(code_len + national.len())) {
        return None;
    }
    let national_value = national
        .bytes()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(E164(
        u64::from(code) * 10u64.pow(national.len() as u32) + national_value,
    ))
}

/// Each byte's digit for [`Digits::of`] (0: none): digits as they are, Latin letters as the
/// keys they are on.
const KEYS: [u8; 256] = {
    let pad = b"22233344455566677778889999";
    let mut keys = [0; 256];
    let mut b = 0;
    while b < 26 {
        keys[b'a' as usize + b] = pad[b];
        keys[b'A' as usize + b] = pad[b];
        b += 1;
    }
    let mut d = b'0';
    while d <= b'9' {
        keys[d as usize] = d;
        d += 1;
    }
    keys
};

/// ASCII digits on the stack, with a start that moves forward as prefixes are stripped. Small
/// (74 bytes), as it is copied from step to step for every cell.
#[derive(Clone, Copy)]
struct Digits {
    buf: [u8; 72],
    start: u8,
    end: u8,
}

impl Digits {
    /// The digits of a text, Latin letters as their keys on a phone (the crate's `normalize`
    /// with `ALPHA_PHONE_MAPPINGS`); anything else dropped.
    fn of(text: &str) -> Digits {
        let mut d = Digits::empty();
        for b in text.bytes() {
            let key = KEYS[usize::from(b)];
            if key != 0 {
                d.push(key);
            }
        }
        d
    }

    fn empty() -> Digits {
        Digits {
            buf: [0; 72],
            start: 0,
            end: 0,
        }
    }

    /// Appends an ASCII digit (there is room for any text `read` is given).
    fn push(&mut self, digit: u8) {
        if usize::from(self.end) < self.buf.len() {
            self.buf[usize::from(self.end)] = digit;
            self.end += 1;
        }
    }

    /// The text itself, when it is all digits and fits.
    fn exactly(text: &str) -> Option<Digits> {
        (text.len() <= 72 && text.bytes().all(|b| b.is_ascii_digit())).then(|| Digits::of(text))
    }

    fn as_str(&self) -> &str {
        let digits = &self.buf[usize::from(self.start)..usize::from(self.end)];
        debug_assert!(digits.is_ascii());
        // SAFETY: `of` and `exactly` put only ASCII digits in the buffer.
        unsafe { std::str::from_utf8_unchecked(digits) }
    }

    fn len(&self) -> usize {
        usize::from(self.end - self.start)
    }

    fn skip(&mut self, n: usize) {
        self.start = self
            .end
            .min(u8::try_from(usize::from(self.start) + n).unwrap_or(u8::MAX));
    }
}

#[cfg(test)]
mod tests;
