//! Raw phone cells to E.164 numbers.
//!
//! Contract: [`Normalizer::normalize`] maps one raw cell to [`Normalized`]: `Empty` for a blank
//! cell, `Invalid` for anything the `phonenumber` crate does not accept as a valid number in the
//! job's default region, or `Valid(number)` with the E.164 digits (no `+`) packed in a `u64`.
//! A cell holding several numbers is represented by its first valid one. The result depends
//! only on the raw text and the region, so each distinct raw value is normalized once per run.

use std::fmt;

use phonenumber::country::Id as Region;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalized {
    Empty,
    Invalid,
    Valid(E164),
}

/// Separators between several numbers typed into one cell.
const LIST_SEPARATORS: &[char] = &[',', ';', '/', '|', '\n', '\r'];

#[derive(Debug, Clone, Copy)]
pub struct Normalizer {
    region: Region,
}

impl Normalizer {
    pub fn new(region: Region) -> Self {
        Normalizer { region }
    }

    pub fn normalize(&self, raw: &str) -> Normalized {
        let raw = raw.trim();
        if raw.is_empty() {
            return Normalized::Empty;
        }
        if let Some(n) = self.parse_one(raw) {
            return Normalized::Valid(n);
        }
        if raw.contains(LIST_SEPARATORS) {
            for part in raw.split(LIST_SEPARATORS) {
                if let Some(n) = self.parse_one(part.trim()) {
                    return Normalized::Valid(n);
                }
            }
        }
        Normalized::Invalid
    }

    fn parse_one(&self, raw: &str) -> Option<E164> {
        if raw.is_empty() || raw.len() > 64 || !raw.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        if let Some(n) = parse_valid(Some(self.region), raw) {
            return Some(n);
        }
        // A number written internationally without its `+` ("79161234567", "375291234567").
        if !raw.contains('+') {
            let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() >= 11 {
                return parse_valid(None, &format!("+{digits}"));
            }
        }
        None
    }
}

fn parse_valid(region: Option<Region>, text: &str) -> Option<E164> {
    let number = phonenumber::parse(region, text).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    E164::from_digits(&e164)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru() -> Normalizer {
        Normalizer::new(Region::RU)
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
