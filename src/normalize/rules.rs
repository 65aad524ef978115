//! The `phonenumber` crate's metadata, compiled once per thread for the fast path.
//!
//! Contract: [`country`] gives the rules of every region sharing a country code, in the crate's
//! order, each pattern compiled as the crate compiles it (whitespace ignored), anchored at the
//! first digit, on its first use; [`is_valid`] is the crate's `is_valid` on a country code and
//! national number; [`known_code`] is whether the crate's database has a country code. Nothing
//! here is shared between threads: the crate's own regex cache locks one mutex and hashes the
//! pattern's source on every use, which is most of its cost. A thread compiles only the
//! patterns its numbers ask for (code 1 alone has 25 regions and some 300 patterns).

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
    compiled: OnceCell<Regex>,
}

impl Pattern {
    fn new(source: &'static str) -> Pattern {
        Pattern {
            source,
            compiled: OnceCell::new(),
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
            && self.pattern.regex().is_match(national.as_bytes())
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
            Some(pattern) => pattern.regex().is_match(national.as_bytes()),
            None => r.knows(national),
        })
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

/// `phonenumber::is_valid` for a country code and national number: the region (by leading
/// digits where several share the code), then a known number type.
pub(super) fn is_valid(code: u16, national: &str) -> bool {
    country(code)
        .and_then(|c| c.region_of(national).map(|r| r.knows(national)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_country_code_is_below_1000_and_compiles() {
        for meta in DATABASE.iter() {
            let code = meta.country_code();
            assert!(code < 1000 && known_code(code), "{}", meta.id());
            assert!(
                country(code).is_some(),
                "{} ({code}) did not compile",
                meta.id()
            );
        }
    }
}
