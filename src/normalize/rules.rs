//! The `phonenumber` crate's metadata, compiled once per thread for the fast path.
//!
//! Contract: [`country`] gives the rules of every region sharing a country code, in the crate's
//! order, each pattern compiled as the crate compiles it (whitespace ignored), anchored at the
//! first digit, on its first use; [`Country::is_valid`] is the crate's `is_valid` on a country
//! code's national number; [`known_code`] is whether the crate's database has a country code.
//! Nothing here is shared between threads: the crate's own regex cache locks one mutex and
//! hashes the pattern's source on every use, which is most of its cost. A thread compiles only
//! the patterns its numbers ask for (code 1 alone has 25 regions and some 300 patterns).

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::sync::LazyLock;

use phonenumber::metadata::{Metadata, DATABASE};
use regex::bytes::Regex;

/// A metadata pattern, compiled on its first use as the crate compiles it (whitespace
/// ignored), anchored at the first digit: the crate's `find(..)` starting at 0 is the leftmost
/// match, so the same match. Compiled without Unicode classes, for ASCII digits only: the only
/// text it is ever given. (`\d` as Unicode's digits is several times larger, to compile and to
/// run, and matches the same ASCII.)
pub(super) struct Pattern {
    source: &'static str,
    shortcut: Option<Shortcut>,
    compiled: OnceCell<Regex>,
}

/// Patterns common enough to be worth not running: compared instead.
enum Shortcut {
    /// Only digits (an international prefix such as `810`).
    Literal(String),
    /// One class of digits (leading digits such as `[3489]`), a bit per digit.
    Class(u16),
}

impl Shortcut {
    fn of(source: &str) -> Option<Shortcut> {
        let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
        if !compact.is_empty() && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Shortcut::Literal(compact));
        }
        let class = compact.strip_prefix('[')?.strip_suffix(']')?.as_bytes();
        let mut digits = 0u16;
        let mut i = 0;
        while i < class.len() {
            let (low, high, width) = match class.get(i..i + 3) {
                Some(&[low, b'-', high]) => (low, high, 3),
                _ => (class[i], class[i], 1),
            };
            if !low.is_ascii_digit() || !high.is_ascii_digit() || high < low {
                return None;
            }
            for d in low..=high {
                digits |= 1 << (d - b'0');
            }
            i += width;
        }
        (digits != 0).then_some(Shortcut::Class(digits))
    }
}

impl Pattern {
    fn new(source: &'static str) -> Pattern {
        Pattern {
            source,
            shortcut: Shortcut::of(source),
            compiled: OnceCell::new(),
        }
    }

    /// Where a match starting at the first digit ends.
    pub(super) fn match_at_start(&self, digits: &str) -> Option<usize> {
        match &self.shortcut {
            Some(Shortcut::Literal(literal)) => digits
                .starts_with(literal.as_str())
                .then_some(literal.len()),
            Some(Shortcut::Class(class)) => digits
                .bytes()
                .next()
                .filter(|d| d.is_ascii_digit() && class & (1 << (d - b'0')) != 0)
                .map(|_| 1),
            None => self.regex().find(digits.as_bytes()).map(|m| m.end()),
        }
    }

    pub(super) fn matches_at_start(&self, digits: &str) -> bool {
        match &self.shortcut {
            None => self.regex().is_match(digits.as_bytes()),
            Some(_) => self.match_at_start(digits).is_some(),
        }
    }

    pub(super) fn regex(&self) -> &Regex {
        self.compiled.get_or_init(|| {
            // The line feed ends any `#` comment before the closing parenthesis.
            regex::bytes::RegexBuilder::new(&format!("^(?:{}\n)", self.source))
                .ignore_whitespace(true)
                .unicode(false)
                .build()
                // The crate unwraps its own compilation of the same pattern.
                .expect("the crate's metadata patterns compile")
        })
    }
}

/// One of the crate's number descriptors: `Descriptor::is_match` (possible lengths, then a match
/// starting at the first digit), without the crate's regex cache.
pub(super) struct Descriptor {
    lengths: &'static [u16],
    local_lengths: &'static [u16],
    pattern: Pattern,
}

/// The crate's `validator::length` verdicts that parsing tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Length {
    /// `IsPossible` or `IsPossibleLocalOnly`.
    Possible,
    TooShort,
    /// `TooLong` or `InvalidLength`.
    Impossible,
}

impl Descriptor {
    fn new(d: &'static phonenumber::metadata::Descriptor) -> Descriptor {
        Descriptor {
            lengths: d.possible_length(),
            local_lengths: d.possible_local_length(),
            pattern: Pattern::new(d.national_number().as_str()),
        }
    }

    pub(super) fn is_match(&self, national: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(national.len() as u16)))
            && self.pattern.matches_at_start(national)
    }

    /// The crate's `validator::length(meta, number, Type::Unknown)` on this (the general)
    /// descriptor, for a national number of `len` digits.
    pub(super) fn length(&self, len: usize) -> Length {
        let len = len as u16;
        let (Some(&min), Some(&max)) = (self.lengths.first(), self.lengths.last()) else {
            return Length::Impossible;
        };
        if self.local_lengths.contains(&len) || len == min {
            Length::Possible
        } else if len < min {
            Length::TooShort
        } else if len > max || !self.lengths.contains(&len) {
            Length::Impossible
        } else {
            Length::Possible
        }
    }
}

/// A region's metadata as parsing and validation need it.
pub(super) struct RegionRules {
    id: &'static str,
    /// The country code, and its digits.
    pub(super) code: u16,
    pub(super) code_digits: String,
    leading_digits: Option<Pattern>,
    pub(super) general: Descriptor,
    /// Every typed descriptor: a number is valid when any of them matches, in any order.
    types: Vec<Descriptor>,
    pub(super) national_prefix: Option<&'static str>,
    pub(super) prefix_for_parsing: Option<Pattern>,
    pub(super) prefix_transform: Option<&'static str>,
    pub(super) international_prefix: Option<Pattern>,
}

impl RegionRules {
    fn new(meta: &'static Metadata) -> RegionRules {
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
        RegionRules {
            id: meta.id(),
            code: meta.country_code(),
            code_digits: meta.country_code().to_string(),
            leading_digits: meta.leading_digits().map(|p| Pattern::new(p.as_str())),
            general: Descriptor::new(d.general()),
            types: typed.into_iter().flatten().map(Descriptor::new).collect(),
            national_prefix: meta.national_prefix(),
            prefix_for_parsing: meta
                .national_prefix_for_parsing()
                .map(|p| Pattern::new(p.as_str())),
            prefix_transform: meta.national_prefix_transform_rule(),
            international_prefix: meta
                .international_prefix()
                .map(|p| Pattern::new(p.as_str())),
        }
    }

    /// The crate's `number_type(meta, national) != Type::Unknown`.
    fn knows(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|t| t.is_match(national))
    }
}

/// The regions sharing a country code, in the crate's order.
pub(super) struct Country {
    pub(super) regions: Vec<RegionRules>,
}

impl Country {
    fn build(code: u16) -> Option<Country> {
        let regions = DATABASE.region(&code)?;
        let metas: Vec<&'static Metadata> = if regions.len() == 1 && regions[0] == "001" {
            DATABASE.by_code(&code)?.into_iter().take(1).collect()
        } else {
            regions
                .iter()
                .map(|r| DATABASE.by_id(*r))
                .collect::<Option<_>>()?
        };
        let regions: Vec<RegionRules> = metas.into_iter().map(RegionRules::new).collect();
        (!regions.is_empty()).then_some(Country { regions })
    }

    /// The crate's `validator::source_for`: the region a national number belongs to (by leading
    /// digits where several regions share the code, else by knowing its type).
    pub(super) fn region_of(&self, national: &str) -> Option<&RegionRules> {
        if let [only] = &self.regions[..] {
            return Some(only);
        }
        self.regions.iter().find(|r| match &r.leading_digits {
            Some(pattern) => pattern.matches_at_start(national),
            None => r.knows(national),
        })
    }

    /// `phonenumber::is_valid` for a national number of this country code: its region, then a
    /// known number type.
    pub(super) fn is_valid(&self, national: &str) -> bool {
        self.region_of(national)
            .is_some_and(|region| region.knows(national))
    }

    /// The position of a region in [`Country::regions`].
    pub(super) fn position(&self, id: &str) -> Option<usize> {
        self.regions.iter().position(|r| r.id == id)
    }
}

thread_local! {
    /// Each thread's rules, by country code, built on first use: no lock, no shared counter,
    /// and each thread owns its compiled patterns (regex's fast path for its owner thread).
    static COUNTRIES: RefCell<Vec<Option<Option<Rc<Country>>>>> =
        const { RefCell::new(Vec::new()) };
}

/// The rules of a country code (`None` for a code the crate cannot validate).
pub(super) fn country(code: u16) -> Option<Rc<Country>> {
    if !known_code(code) {
        return None;
    }
    COUNTRIES.with(|cell| {
        let mut all = cell.borrow_mut();
        if all.len() <= usize::from(code) {
            all.resize(usize::from(code) + 1, None);
        }
        all[usize::from(code)]
            .get_or_insert_with(|| Country::build(code).map(Rc::new))
            .clone()
    })
}

/// Country codes the crate's database has metadata for (`DATABASE.by_code`), all below 1000.
static KNOWN_CODES: LazyLock<Vec<bool>> = LazyLock::new(|| {
    (0..1000u16)
        .map(|code| DATABASE.by_code(&code).is_some())
        .collect()
});

/// Whether the crate's database has metadata for a country code.
pub(super) fn known_code(code: u16) -> bool {
    KNOWN_CODES.get(usize::from(code)).copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patterns compile on first use, so a pattern that does not would stop a run: every one
    /// is compiled here (the crate unwraps its own compilation of each, too).
    #[test]
    fn every_country_code_is_below_1000_and_every_pattern_compiles() {
        for meta in DATABASE.iter() {
            let code = meta.country_code();
            assert!(code < 1000 && known_code(code), "{}", meta.id());
            let country = country(code).unwrap_or_else(|| panic!("{} ({code})", meta.id()));
            for r in &country.regions {
                let descriptors = std::iter::once(&r.general).chain(&r.types);
                let patterns = [
                    &r.leading_digits,
                    &r.prefix_for_parsing,
                    &r.international_prefix,
                ];
                for pattern in descriptors
                    .map(|d| &d.pattern)
                    .chain(patterns.into_iter().flatten())
                {
                    pattern.regex();
                }
            }
        }
    }

    #[test]
    fn shortcuts_read_literals_and_digit_classes_only() {
        let cases: &[(&str, Option<&str>, Option<u16>)] = &[
            ("810", Some("810"), None),
            ("\n  7\n", Some("7"), None),
            ("[3489]", None, Some(0b11_0001_1000)),
            ("[347-9]", None, Some(0b11_1001_1000)),
            ("[0-2]", None, Some(0b111)),
            ("[3-]", None, None),
            ("[^3]", None, None),
            ("[]", None, None),
            ("9\\d{9}", None, None),
            ("0(?:0|1)", None, None),
        ];
        for &(source, literal, class) in cases {
            let (l, c) = match Shortcut::of(source) {
                Some(Shortcut::Literal(l)) => (Some(l), None),
                Some(Shortcut::Class(c)) => (None, Some(c)),
                None => (None, None),
            };
            assert_eq!((l.as_deref(), c), (literal, class), "{source:?}");
        }
    }

    /// Every pattern of the database that has a shortcut gives what its regex gives, on every
    /// string of one to three digits.
    #[test]
    fn shortcuts_agree_with_the_patterns() {
        let strings: Vec<String> = (1..=3usize)
            .flat_map(|len| (0..10u32.pow(len as u32)).map(move |n| format!("{n:0len$}")))
            .collect();
        let mut checked = 0;
        for meta in DATABASE.iter() {
            let country = country(meta.country_code()).expect("every code");
            for r in &country.regions {
                let descriptors = std::iter::once(&r.general).chain(&r.types);
                let patterns = [&r.leading_digits, &r.international_prefix];
                let with_shortcut = descriptors
                    .map(|d| &d.pattern)
                    .chain(patterns.into_iter().flatten())
                    .filter(|p| p.shortcut.is_some());
                for pattern in with_shortcut {
                    checked += 1;
                    for s in &strings {
                        let by_regex = pattern.regex().find(s.as_bytes()).map(|m| m.end());
                        assert_eq!(
                            pattern.match_at_start(s),
                            by_regex,
                            "{:?} on {s}",
                            pattern.source
                        );
                    }
                }
            }
        }
        assert!(checked > 100, "{checked} patterns with a shortcut");
    }
}
