//! libphonenumber's `parse` then `isValidNumber`, step by step, for the common cell.
//!
//! Contract: [`parse_valid`] gives what `reference::parse_valid` (`rlibphonenumber`) gives —
//! `Some(Some(number))` valid, `Some(None)` not — for a cell of ASCII, Russian letters and
//! libphonenumber's punctuation, and `None` for any other cell and for the few steps it leaves
//! to `rlibphonenumber` (a national-prefix transform rule that applies, a `+` not followed by a
//! country code, a pattern the fast path cannot compile, two digits alone, and what
//! [`extract`] leaves). The first steps, `extractPossibleNumber`, `isViablePhoneNumber` and
//! `maybeStripExtension`, come down to the digits and whether a `+` leads them: [`scan`] takes
//! them from the common cell (digits, pluses, separators) in one pass, [`extract`] from a cell
//! with notes, extensions, letters or several numbers. Each later step is named after the
//! `PhoneNumberUtil` method it mirrors. The rules are [`super::rules`], compiled per thread
//! from the plans `rlibphonenumber` reads with. The differential test and `tests` hold the two
//! equal.

mod extract;

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
    pub(super) fn new(metadata: PhoneMetadata, region: rlibphonenumber::Region) -> Option<Home> {
        let code = metadata.util().get_country_code_for_region(region)?;
        let code = u16::try_from(code).ok()?;
        let id = region.to_string();
        let index = rules::country(metadata, code)?.position(&id)?;
        Some(Home { code, index })
    }
}

/// libphonenumber's `MAX_INPUT_STRING_LENGTH`.
const MAX_INPUT: usize = 250;

/// The cell's digits, and whether a `+` leads them, for a cell of digits, pluses and
/// separators (the ASCII ones and libphonenumber's others, [`extract::punctuation`]);
/// `Err(())` where libphonenumber finds no viable number; `None` for a cell this step does not
/// read (any other character, or two digits alone).
fn scan(text: &str, digits: &mut Digits) -> Option<Result<bool, ()>> {
    if text.len() > MAX_INPUT {
        return None;
    }
    let mut plus = false;
    // Whether the number (from its first `+` or digit) has only pluses so far.
    let mut started = false;
    let mut pluses_only = false;
    // A `+` after the number's leading pluses, and then a digit: not viable (a `+` after the
    // last digit is cut off with the other trailing punctuation).
    let mut stray_plus = false;
    let mut spoiled = false;
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b @ b'0'..=b'9' => {
                digits.push(b);
                started = true;
                pluses_only = false;
                spoiled |= stray_plus;
            }
            b'+' if !started => {
                started = true;
                pluses_only = true;
                plus = true;
            }
            b'+' if pluses_only => {}
            b'+' => stray_plus = true,
            b' ' | b'-' | b'.' | b'(' | b')' | b'/' => pluses_only = false,
            0x80.. => {
                let c = text[at..].chars().next()?;
                if !extract::punctuation(c) {
                    return None;
                }
                pluses_only = false;
                at += c.len_utf8();
                continue;
            }
            _ => return None,
        }
        at += 1;
    }
    match digits.len() {
        // Two digits alone are viable (`\d{2}`): left to rlibphonenumber.
        2 => None,
        0 | 1 => Some(Err(())),
        _ if spoiled => Some(Err(())),
        _ => Some(Ok(plus)),
    }
}

/// The first steps for any cell: [`scan`] where it reads the cell, else [`extract::extract`].
fn first_steps(
    metadata: PhoneMetadata,
    text: &str,
    digits: &mut Digits,
) -> Option<Result<bool, ()>> {
    if let Some(read) = scan(text, digits) {
        return Some(read);
    }
    digits.clear();
    extract::extract(metadata.util(), text, digits)
}

/// The reading of `text` in `home`'s region: `Some(Some(number))` valid, `Some(None)` not,
/// `None` where this path does not tell.
pub(super) fn parse_valid(metadata: PhoneMetadata, home: Home, text: &str) -> Option<Option<E164>> {
    let mut digits = Digits::default();
    let plus = match first_steps(metadata, text, &mut digits)? {
        Ok(plus) => plus,
        Err(()) => return Some(None),
    };
    let digits = digits.as_str();
    let home_country = rules::country(metadata, home.code)?;
    let home_rules = &home_country.regions[home.index];
    let (code, national, owner) = match country_code(metadata, home_rules, digits, plus)? {
        Some(found) => found,
        None => return Some(None),
    };
    let owner_country;
    let meta: &RegionRules = match owner {
        Owner::Home => home_rules,
        Owner::Main => {
            owner_country = rules::country(metadata, code)?;
            &owner_country.regions[0]
        }
    };
    if national.len() < 2 {
        return Some(None);
    }
    // `parseHelper`: the national prefix stripped when what remains has a possible length.
    let stripped = strip_national_prefix(meta, national)?;
    let national: &str = match meta.length(stripped.len()) {
        Length::TooShort | Length::LocalOnly | Length::Invalid => national,
        _ => stripped,
    };
    if !(2..=17).contains(&national.len()) {
        return Some(None);
    }
    let country: std::rc::Rc<Country> = if code == home.code {
        home_country.clone()
    } else {
        rules::country(metadata, code)?
    };
    let valid = country.is_valid(national).ok()?;
    Some(valid.then(|| e164(code, national)).flatten())
}

/// Whose metadata strips the national prefix: the default region's for a number read without
/// a country code, else the main region of the code read.
enum Owner {
    Home,
    Main,
}

/// `maybeExtractCountryCode` (with `maybeStripInternationalPrefixAndNormalize`): the country
/// code, the national number and whose metadata strips it; `Some(None)` for a parse error;
/// `None` where this path does not tell.
fn country_code<'a>(
    metadata: PhoneMetadata,
    home: &RegionRules,
    digits: &'a str,
    plus: bool,
) -> Option<Option<(u16, &'a str, Owner)>> {
    let mut international = plus;
    let mut rest = digits;
    if !plus {
        if let Some(idd) = &home.international_prefix {
            if let Some(end) = idd.looking_at(digits).ok()? {
                // `parsePrefixAsIdd`: not when a 0 follows the prefix.
                if !digits[end..].starts_with('0') {
                    international = true;
                    rest = &digits[end..];
                }
            }
        }
    }
    if international {
        if rest.len() <= 2 {
            return Some(None); // TOO_SHORT_AFTER_IDD
        }
        // `extractCountryCode`: the first 1 to 3 digits that name a code the plans have.
        let found = (!rest.starts_with('0'))
            .then(|| {
                (1..=3).find_map(|len| {
                    let code: u16 = rest[..len].parse().ok()?;
                    rules::country(metadata, code).map(|_| (len, code))
                })
            })
            .flatten();
        return match found {
            Some((len, code)) => Some(Some((code, &rest[len..], Owner::Main))),
            // After a `+`, libphonenumber tries again without it: left to rlibphonenumber.
            None if plus => None,
            None => Some(None),
        };
    }
    // No `+` and no international prefix: the default region's code, which the number may
    // start with when it does not fit the region without it.
    if let Some(potential) = digits.strip_prefix(home.code_digits.as_str()) {
        let potential = strip_national_prefix(home, potential)?;
        let general = &home.general;
        let better =
            !general.pattern_matches(digits).ok()? && general.pattern_matches(potential).ok()?;
        if better || home.length(digits.len()) == Length::TooLong {
            return Some(Some((home.code, potential, Owner::Main)));
        }
    }
    Some(Some((home.code, digits, Owner::Home)))
}

/// `maybeStripNationalPrefixAndCarrierCode`: the number without its national prefix (or the
/// number itself), `None` where a transform rule applies (left to rlibphonenumber).
fn strip_national_prefix<'a>(meta: &RegionRules, national: &'a str) -> Option<&'a str> {
    let Some(prefix) = &meta.prefix_for_parsing else {
        return Some(national);
    };
    if national.is_empty() {
        return Some(national);
    }
    let end = match &meta.transform {
        // Only the match's end matters.
        None => match prefix.looking_at(national).ok()? {
            Some(end) => end,
            None => return Some(national),
        },
        Some(_) => {
            let regex = prefix.at_start()?;
            let Some(captures) = regex.captures(national.as_bytes()) else {
                return Some(national);
            };
            if captures.get(captures.len() - 1).is_some() {
                return None;
            }
            captures.get(0).expect("the whole match").end()
        }
    };
    let viable = meta.general.pattern_matches(national).ok()?;
    if viable && !meta.general.pattern_matches(&national[end..]).ok()? {
        return Some(national);
    }
    Some(&national[end..])
}

/// The digits of a cell, on the stack (a cell this path reads has at most [`MAX_INPUT`]).
struct Digits {
    buf: [u8; MAX_INPUT],
    len: usize,
}

impl Default for Digits {
    fn default() -> Digits {
        Digits {
            buf: [0; MAX_INPUT],
            len: 0,
        }
    }
}

impl Digits {
    fn push(&mut self, digit: u8) {
        self.buf[self.len] = digit;
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("ASCII digits")
    }
}

/// The E.164 digits of a valid number, if they fit.
fn e164(code: u16, national: &str) -> Option<E164> {
    let mut value = u64::from(code);
    for d in national.bytes() {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(E164(value))
}

#[cfg(test)]
mod tests;
