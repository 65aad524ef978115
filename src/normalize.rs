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

/// How Russian numbers are written in CRMs, `d` a digit: the layouts the fast path reads.
const RU_LAYOUTS: &[&str] = &[
    "+d ddd ddd dd dd",
    "+d ddd ddd-dd-dd",
    "+d (ddd) ddd-dd-dd",
    "+d (ddd) ddd dd dd",
    "+d(ddd)ddddddd",
    "+d(ddd)ddd-dd-dd",
    "+d-ddd-ddd-dd-dd",
    "+d ddd ddddddd",
    "d (ddd) ddd-dd-dd",
    "d (ddd) ddd dd dd",
    "d(ddd)ddd-dd-dd",
    "d(ddd)ddddddd",
    "d-ddd-ddd-dd-dd",
    "d-ddd-ddddddd",
    "d ddd ddd dd dd",
    "d ddd ddd-dd-dd",
    "(ddd) ddd-dd-dd",
    "ddd ddd dd dd",
    "ddd-ddd-dd-dd",
];

/// Layouts of the neighbouring countries' numbers, read for [`NEIGHBOUR_CODES`] only.
const NEIGHBOUR_LAYOUTS: &[&str] = &[
    "+ddd dd ddd-dd-dd",
    "+ddd dd ddd dd dd",
    "+ddd dd ddddddd",
    "+ddd (dd) ddd-dd-dd",
];
const NEIGHBOUR_CODES: &[u16] = &[375, 380, 998, 374, 995, 996];

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
        if let Some(n) = self.fast_path(raw) {
            return Normalized::Valid(n);
        }
        self.crate_path(raw)
    }

    /// The common shapes, at a fraction of the crate's cost: digits alone (`+CC...`, and for
    /// region RU `8...`, `7...` or ten bare digits) or one of the layouts in [`RU_LAYOUTS`],
    /// with validity decided by the crate's own metadata ([`is_valid_national`]). It answers only
    /// when the number is valid; anything else goes to the crate.
    /// `tests::fast_path_agrees_with_the_crate` checks the two agree on every layout. Takes a
    /// trimmed cell.
    pub fn fast_path(&self, raw: &str) -> Option<E164> {
        let bytes = raw.as_bytes();
        if bytes.is_empty() || bytes.len() > 24 {
            return None;
        }
        let mut digits = [0u8; 15];
        let mut shape = [0u8; 24];
        let mut len = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b.is_ascii_digit() {
                if len == digits.len() {
                    return None;
                }
                digits[len] = b;
                len += 1;
                shape[i] = b'd';
            } else {
                shape[i] = b;
            }
        }
        let shape = &shape[..bytes.len()];
        let digits = std::str::from_utf8(&digits[..len]).ok()?;
        let plus = bytes[0] == b'+';
        let bare = shape.iter().skip(plus as usize).all(|&c| c == b'd');
        let neighbour = NEIGHBOUR_LAYOUTS.iter().any(|l| l.as_bytes() == shape);
        if !bare && !neighbour && !RU_LAYOUTS.iter().any(|l| l.as_bytes() == shape) {
            return None;
        }
        let (code, national) = if plus {
            if digits.starts_with('0') {
                return None;
            }
            // E.164 country codes are prefix-free: the first 1 to 3 digits that name one.
            (1..=3).filter(|&n| n < digits.len()).find_map(|n| {
                let code: u16 = digits[..n].parse().ok()?;
                phonenumber::metadata::DATABASE
                    .region(&code)
                    .map(|_| (code, &digits[n..]))
            })?
        } else if self.region == Region::RU {
            match (digits.len(), digits.as_bytes()[0]) {
                // Ten digits starting with 7: the crate may read the 7 as the country code.
                (10, b'7') => return None,
                (10, _) => (7, digits),
                (11, b'8' | b'7') => (7, &digits[1..]),
                _ => return None,
            }
        } else {
            return None;
        };
        // A national number starting like a national prefix (`0`, `8`: the crate may strip it
        // even after a country code) is the crate's to judge, and so is a layout on a number of
        // another country than the layout's.
        let layout_fits = bare
            || if neighbour {
                NEIGHBOUR_CODES.contains(&code)
            } else {
                code == 7
            };
        if national.starts_with(['0', '8']) || !layout_fits {
            return None;
        }
        if !is_valid_national(code, national) {
            return None;
        }
        // The digits of code and national number as one integer, without a string between.
        let national_value = national
            .bytes()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        Some(E164(
            u64::from(code) * 10u64.pow(national.len() as u32) + national_value,
        ))
    }

    /// The `phonenumber` crate's reading of a cell, with the two fallbacks: the reference the
    /// fast path must agree with.
    pub fn crate_path(&self, raw: &str) -> Normalized {
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

/// One of the crate's number descriptors, its pattern compiled once and anchored: the crate's
/// `Descriptor::is_match` (possible lengths, then a match starting at the first digit) without
/// the crate's regex cache, which locks a global mutex and hashes the pattern's source per use.
struct Descriptor {
    lengths: Vec<u16>,
    pattern: regex::Regex,
}

impl Descriptor {
    fn new(d: &phonenumber::metadata::Descriptor) -> Option<Descriptor> {
        let pattern = anchored(d.national_number().as_str())?;
        Some(Descriptor {
            lengths: d.possible_length().to_vec(),
            pattern,
        })
    }

    fn is_match(&self, national: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(national.len() as u16)))
            && self.pattern.is_match(national)
    }
}

/// A metadata pattern compiled as the crate compiles it (whitespace ignored), anchored at the
/// first digit.
fn anchored(source: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(&format!("^(?:{source})"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// A region's metadata as the validity check needs it.
struct RegionRules {
    leading_digits: Option<regex::Regex>,
    general: Descriptor,
    /// Mobile and fixed line first: a number is valid when any of them matches, in any order.
    types: Vec<Descriptor>,
}

impl RegionRules {
    fn new(meta: &phonenumber::metadata::Metadata) -> Option<RegionRules> {
        let d = meta.descriptors();
        let typed = [
            d.mobile(),
            d.fixed_line(),
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        let types: Option<Vec<Descriptor>> =
            typed.into_iter().flatten().map(Descriptor::new).collect();
        let leading_digits = match meta.leading_digits() {
            Some(p) => Some(anchored(p.as_str())?),
            None => None,
        };
        Some(RegionRules {
            leading_digits,
            general: Descriptor::new(d.general())?,
            types: types?,
        })
    }

    /// The crate's `number_type(meta, national) != Type::Unknown`.
    fn knows(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national))
    }
}

/// The rules of the regions sharing a country code, in the crate's order.
fn build_regions(code: u16) -> Option<Vec<RegionRules>> {
    use phonenumber::metadata::DATABASE;
    DATABASE.region(&code).and_then(|regions| {
        let metas: Vec<&phonenumber::metadata::Metadata> =
            if regions.len() == 1 && regions[0] == "001" {
                DATABASE.by_code(&code)?.into_iter().take(1).collect()
            } else {
                regions
                    .iter()
                    .map(|r| DATABASE.by_id(*r))
                    .collect::<Option<_>>()?
            };
        let rules: Option<Vec<RegionRules>> = metas.into_iter().map(RegionRules::new).collect();
        rules.filter(|r| !r.is_empty())
    })
}

thread_local! {
    /// Each thread's rules, by country code, built on first use: no lock, no shared counter,
    /// and each thread owns its compiled patterns (regex's fast path for its owner thread).
    static REGIONS: std::cell::RefCell<Vec<(u16, Option<Vec<RegionRules>>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `phonenumber::is_valid` for a country code and national number, in the crate's order: the
/// region (by leading digits where several share the code), then a known number type.
fn is_valid_national(code: u16, national: &str) -> bool {
    REGIONS.with(|cell| {
        if !cell.borrow().iter().any(|(c, _)| *c == code) {
            let built = build_regions(code);
            cell.borrow_mut().push((code, built));
        }
        let all = cell.borrow();
        match all.iter().find(|(c, _)| *c == code) {
            Some((_, Some(regions))) => valid_in(regions, national),
            _ => false,
        }
    })
}

fn valid_in(regions: &[RegionRules], national: &str) -> bool {
    if let [only] = regions {
        return only.knows(national);
    }
    for region in regions.iter() {
        match &region.leading_digits {
            Some(pattern) => {
                if pattern.is_match(national) {
                    return region.knows(national);
                }
            }
            // Without a pattern, a region claims the number by knowing its type.
            None => {
                if region.knows(national) {
                    return true;
                }
            }
        }
    }
    false
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

    /// Every layout the fast path reads, and bare digits, filled with random digits (and a few
    /// random cells besides): the fast path must give exactly what the crate gives.
    #[test]
    fn fast_path_agrees_with_the_crate() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let bare = [
            "+ddddddddddd",
            "+dddddddddddd",
            "+ddddddddddddd",
            "dddddddddd",
            "ddddddddddd",
            "dddddddddddd",
        ];
        for region in [Region::RU, Region::KZ, Region::DE] {
            let n = Normalizer::new(region);
            for layout in RU_LAYOUTS.iter().chain(NEIGHBOUR_LAYOUTS).chain(&bare) {
                for _ in 0..300 {
                    let mut raw = String::new();
                    let mut first = true;
                    // Often a neighbour's country code where the layout has one.
                    let mut code = if layout.starts_with("+ddd") && rng.random_range(0..3) > 0 {
                        NEIGHBOUR_CODES[rng.random_range(0..NEIGHBOUR_CODES.len())].to_string()
                    } else {
                        String::new()
                    }
                    .into_bytes()
                    .into_iter();
                    for c in layout.chars() {
                        if c != 'd' {
                            raw.push(c);
                            continue;
                        }
                        // Leading digits that make real numbers often, and others.
                        let digit = if let Some(d) = code.next() {
                            d
                        } else if first && rng.random_range(0..3) > 0 {
                            [b'7', b'8', b'3', b'9'][rng.random_range(0..4)]
                        } else {
                            b'0' + rng.random_range(0..10u8)
                        };
                        first = false;
                        raw.push(digit as char);
                    }
                    let by_crate = n.crate_path(&raw);
                    if let Some(e) = n.fast_path(&raw) {
                        assert_eq!(by_crate, Normalized::Valid(e), "{region:?} {raw:?}");
                    }
                    assert_eq!(n.normalize(&raw), by_crate, "{region:?} {raw:?}");
                }
            }
        }
        // The shapes people type take the fast path, or it is no fast path.
        let ru = Normalizer::new(Region::RU);
        for raw in [
            "8 (916) 123-45-67",
            "+7 916 123 45 67",
            "9161234567",
            "+7(916)1234567",
            "79161234567",
            "89161234567",
            "+79161234567",
            "+375291234567",
            "+7-916-123-45-67",
        ] {
            assert!(ru.fast_path(raw).is_some(), "{raw} missed the fast path");
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
