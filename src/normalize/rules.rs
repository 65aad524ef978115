//! The numbering plans' metadata ([`PhoneMetadata`]), compiled once per thread for the fast path.
//!
//! Contract: [`country`] gives the rules of every region sharing a country code, in the crate's
//! order, each pattern compiled as the crate compiles it (whitespace ignored), anchored at the
//! first digit, on its first use; [`Country::is_valid`] is the crate's `is_valid` on a country
//! code's national number; [`check_patterns`] is whether every pattern of a database compiles
//! here. Nothing here is shared between threads: the crate's own regex cache locks one mutex and
//! hashes the pattern's source on every use, which is most of its cost. A thread compiles only
//! the patterns its numbers ask for (code 1 alone has 25 regions and some 300 patterns).

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use phonenumber::metadata::Metadata;
use regex::bytes::Regex;

use super::metadata::{general_lengths, number_types};
use super::PhoneMetadata;

/// A metadata pattern, compiled on its first use as the crate compiles it (whitespace
/// ignored), anchored at the first digit: the crate's `find(..)` starting at 0 is the leftmost
/// match, so the same match. Compiled without Unicode classes, for ASCII digits only: the only
/// text it is ever given. (`\d` as Unicode's digits is several times larger, to compile and to
/// run, and matches the same ASCII.)
pub(super) struct Pattern {
    source: &'static str,
    shortcut: Option<Shortcut>,
    compiled: OnceCell<Regex>,
    /// The pattern matching whole texts only, for [`Pattern::matches_whole`].
    whole: OnceCell<Regex>,
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
            whole: OnceCell::new(),
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

    /// Whether the pattern matches all of `digits` (libphonenumber's `matchNationalNumber`
    /// without prefix matches).
    pub(super) fn matches_whole(&self, digits: &str) -> bool {
        if self.shortcut.is_some() {
            return self.match_at_start(digits) == Some(digits.len());
        }
        let whole = self
            .whole
            .get_or_init(|| compile_whole(self.source).expect("the metadata's patterns compile"));
        whole.is_match(digits.as_bytes())
    }

    pub(super) fn regex(&self) -> &Regex {
        self.compiled.get_or_init(|| {
            // `check_patterns` compiled every pattern of a loaded file; the crate unwraps its own
            // compilation of each.
            compile(self.source).expect("the metadata's patterns compile")
        })
    }
}

/// A pattern as the fast path runs it.
fn compile(source: &str) -> Result<Regex, regex::Error> {
    // The line feed ends any `#` comment before the closing parenthesis.
    build(&format!("^(?:{source}\n)"))
}

/// A pattern matching whole texts only.
fn compile_whole(source: &str) -> Result<Regex, regex::Error> {
    build(&format!("^(?:{source}\n)$"))
}

fn build(anchored: &str) -> Result<Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(anchored)
        .ignore_whitespace(true)
        .unicode(false)
        .build()
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

    /// Whether the pattern alone matches all of `national`, whatever its length.
    pub(super) fn matches_whole(&self, national: &str) -> bool {
        self.pattern.matches_whole(national)
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
    /// libphonenumber's general lengths ([`super::metadata::general_lengths`]).
    pub(super) lengths: Vec<u16>,
    pub(super) local_lengths: Vec<u16>,
    /// `nationalPrefixForParsing`, else the national prefix itself (as libphonenumber's build
    /// sets it).
    pub(super) prefix_for_parsing: Option<Pattern>,
    pub(super) prefix_transform: Option<&'static str>,
    pub(super) international_prefix: Option<Pattern>,
}

impl RegionRules {
    fn new(meta: &'static Metadata) -> RegionRules {
        let d = meta.descriptors();
        let typed = number_types(meta);
        let (lengths, local_lengths) = general_lengths(meta);
        RegionRules {
            id: meta.id(),
            code: meta.country_code(),
            code_digits: meta.country_code().to_string(),
            leading_digits: meta.leading_digits().map(|p| Pattern::new(p.as_str())),
            general: Descriptor::new(d.general()),
            types: typed.into_iter().flatten().map(Descriptor::new).collect(),
            lengths,
            local_lengths,
            prefix_for_parsing: meta
                .national_prefix_for_parsing()
                .map(|p| p.as_str())
                .or(meta.national_prefix())
                .map(Pattern::new),
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
    fn build(metadata: PhoneMetadata, code: u16) -> Option<Country> {
        let database = metadata.database();
        let regions = database.region(&code)?;
        let metas: Vec<&'static Metadata> = if regions.len() == 1 && regions[0] == "001" {
            database.by_code(&code)?.into_iter().take(1).collect()
        } else {
            regions
                .iter()
                .map(|r| database.by_id(*r))
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

/// A thread's rules of one [`PhoneMetadata`], by country code, built on first use.
struct Countries {
    /// [`PhoneMetadata::identity`] of the plans they are built from.
    plans: usize,
    by_code: Vec<Option<Option<Rc<Country>>>>,
}

thread_local! {
    /// Each thread's rules: no lock, no shared counter, and each thread owns its compiled
    /// patterns (regex's fast path for its owner thread). Other plans start them afresh.
    static COUNTRIES: RefCell<Countries> =
        const { RefCell::new(Countries { plans: 0, by_code: Vec::new() }) };
}

/// The rules of a country code (`None` for a code the plans cannot validate).
pub(super) fn country(metadata: PhoneMetadata, code: u16) -> Option<Rc<Country>> {
    if !metadata.knows_code(code) {
        return None;
    }
    COUNTRIES.with(|cell| {
        let mut all = cell.borrow_mut();
        if all.plans != metadata.identity() {
            all.plans = metadata.identity();
            all.by_code.clear();
        }
        if all.by_code.len() <= usize::from(code) {
            all.by_code.resize(usize::from(code) + 1, None);
        }
        all.by_code[usize::from(code)]
            .get_or_insert_with(|| Country::build(metadata, code).map(Rc::new))
            .clone()
    })
}

/// Every pattern the fast path may run, of every region of `metadata`, compiled once: a
/// loaded file's pattern that does not compile here is refused at start rather than met in a
/// run. The error names the region and the pattern.
pub(super) fn check_patterns(metadata: PhoneMetadata) -> Result<(), String> {
    for meta in metadata.territories() {
        let rules = RegionRules::new(meta);
        compile_whole(rules.general.pattern.source)
            .map_err(|e| format!("territory {}: general pattern: {e}", meta.id()))?;
        for pattern in rules.patterns() {
            compile(pattern.source).map_err(|e| {
                format!("territory {}: pattern {:?}: {e}", meta.id(), pattern.source)
            })?;
        }
    }
    Ok(())
}

impl RegionRules {
    /// Every pattern of the region: its descriptors', then its prefixes' and leading digits'.
    fn patterns(&self) -> impl Iterator<Item = &Pattern> {
        let descriptors = std::iter::once(&self.general).chain(&self.types);
        let others = [
            &self.leading_digits,
            &self.prefix_for_parsing,
            &self.international_prefix,
        ];
        descriptors
            .map(|d| &d.pattern)
            .chain(others.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patterns compile on first use, so a pattern that does not would stop a run: every one
    /// is compiled here (the crate unwraps its own compilation of each, too).
    #[test]
    fn every_country_code_is_below_1000_and_every_pattern_compiles() {
        let built_in = PhoneMetadata::built_in();
        assert_eq!(check_patterns(built_in), Ok(()));
        for meta in built_in.territories() {
            let code = meta.country_code();
            assert!(code < 1000 && built_in.knows_code(code), "{}", meta.id());
            assert!(country(built_in, code).is_some(), "{} ({code})", meta.id());
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
        let built_in = PhoneMetadata::built_in();
        for meta in built_in.database().iter() {
            let country = country(built_in, meta.country_code()).expect("every code");
            for r in &country.regions {
                for pattern in r.patterns().filter(|p| p.shortcut.is_some()) {
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
