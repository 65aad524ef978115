//! The plans' metadata as the fast path runs it, compiled once per thread.
//!
//! Contract: [`country`] gives the rules of every region sharing a country code, in
//! libphonenumber's order (the main country first, then the file's order), each pattern
//! compiled on its first use as `rlibphonenumber` runs it (a whole match, or a match at the
//! start), for ASCII digits; a pattern that does not compile here says so (`None`), and the
//! fast path leaves the cell to `rlibphonenumber`. Nothing here is shared between threads: a
//! thread compiles only the patterns its numbers ask for (code 1 alone has 25 regions).

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use regex::bytes::Regex;
use rlibphonenumber::{PhoneMetadata as Territory, PhoneNumberDesc};

use super::PhoneMetadata;

/// A metadata pattern (kept by the plans as `^(?:…)$`), compiled on its first use.
pub(super) struct Pattern {
    source: String,
    /// The pattern when it is digits only (a national or international prefix): compared.
    literal: Option<String>,
    /// `^(?:…)`: libphonenumber's `lookingAt`.
    start: OnceCell<Option<Regex>>,
    /// `^(?:…)$`: libphonenumber's `matches`.
    whole: OnceCell<Option<Regex>>,
}

impl Pattern {
    /// The pattern inside a wrapped one; `None` for an empty pattern (which never matches).
    fn of(wrapped: Option<&str>) -> Option<Pattern> {
        let inner = wrapped?.strip_prefix("^(?:")?.strip_suffix(")$")?;
        (!inner.is_empty()).then(|| Pattern {
            source: inner.to_string(),
            literal: inner
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| inner.to_string()),
            start: OnceCell::new(),
            whole: OnceCell::new(),
        })
    }

    fn compiled(
        cell: &OnceCell<Option<Regex>>,
        anchored: impl FnOnce() -> String,
    ) -> Option<&Regex> {
        cell.get_or_init(|| {
            regex::bytes::RegexBuilder::new(&anchored())
                .unicode(false)
                .build()
                .ok()
        })
        .as_ref()
    }

    /// The regex anchored at the start (for captures); `None` if it does not compile here.
    pub(super) fn at_start(&self) -> Option<&Regex> {
        Self::compiled(&self.start, || format!("^(?:{})", self.source))
    }

    /// Where a match at the start ends (`lookingAt`); `Err` if the pattern does not compile.
    pub(super) fn looking_at(&self, digits: &str) -> Result<Option<usize>, ()> {
        if let Some(literal) = &self.literal {
            return Ok(digits
                .starts_with(literal.as_str())
                .then_some(literal.len()));
        }
        let regex = self.at_start().ok_or(())?;
        Ok(regex.find(digits.as_bytes()).map(|m| m.end()))
    }

    /// Whether the pattern matches all of `digits` (`matches`).
    pub(super) fn matches(&self, digits: &str) -> Result<bool, ()> {
        let regex = Self::compiled(&self.whole, || format!("^(?:{})$", self.source)).ok_or(())?;
        Ok(regex.is_match(digits.as_bytes()))
    }
}

/// A number description: `isNumberMatchingDesc`.
pub(super) struct Desc {
    /// Empty: any length; `[-1]`: none.
    lengths: Vec<i32>,
    pattern: Option<Pattern>,
}

impl Desc {
    #[allow(deprecated)] // rlibphonenumber's input field, which its wrapper empties.
    fn new(desc: Option<&PhoneNumberDesc>) -> Desc {
        match desc {
            None => Desc {
                lengths: vec![-1],
                pattern: None,
            },
            Some(d) => Desc {
                lengths: d.possible_length.clone(),
                pattern: Pattern::of(d.national_number_pattern.as_deref()),
            },
        }
    }

    /// The length is one of the description's, and its pattern matches the whole number.
    pub(super) fn matches(&self, national: &str) -> Result<bool, ()> {
        let len = national.len() as i32;
        if !self.lengths.is_empty() && !self.lengths.contains(&len) {
            return Ok(false);
        }
        match &self.pattern {
            Some(p) => p.matches(national),
            None => Ok(false),
        }
    }

    /// The pattern alone (`matchNationalNumber`, no lengths).
    pub(super) fn pattern_matches(&self, national: &str) -> Result<bool, ()> {
        match &self.pattern {
            Some(p) => p.matches(national),
            None => Ok(false),
        }
    }
}

/// libphonenumber's `ValidationResult` for a region's general lengths (`testNumberLength`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// A region's metadata as reading a number needs it.
pub(super) struct RegionRules {
    pub(super) id: String,
    pub(super) code: u16,
    pub(super) code_digits: String,
    leading_digits: Option<Pattern>,
    pub(super) general: Desc,
    local_lengths: Vec<i32>,
    /// The descriptions `getNumberTypeHelper` tries (mobile left out when its pattern is the
    /// fixed line's, as libphonenumber leaves it out).
    types: Vec<Desc>,
    pub(super) international_prefix: Option<Pattern>,
    pub(super) prefix_for_parsing: Option<Pattern>,
    pub(super) transform: Option<String>,
}

impl RegionRules {
    #[allow(deprecated)] // rlibphonenumber's input fields, which its wrapper empties.
    fn new(t: &Territory) -> RegionRules {
        let code = t.country_code.unwrap_or(0) as u16;
        let general = t.general_desc.as_ref();
        // Any order gives the same validity: the common types first.
        let mut types = vec![Desc::new(t.fixed_line.as_ref())];
        if !t.same_mobile_and_fixed_line_pattern.unwrap_or(false) {
            types.push(Desc::new(t.mobile.as_ref()));
        }
        types.extend(
            [
                &t.toll_free,
                &t.premium_rate,
                &t.shared_cost,
                &t.voip,
                &t.personal_number,
                &t.pager,
                &t.uan,
                &t.voicemail,
            ]
            .into_iter()
            .map(|d| Desc::new(d.as_ref())),
        );
        RegionRules {
            id: t.id.clone(),
            code,
            code_digits: code.to_string(),
            leading_digits: Pattern::of(t.leading_digits.as_deref()),
            general: Desc::new(general),
            local_lengths: general
                .map(|g| g.possible_length_local_only.clone())
                .unwrap_or_default(),
            types,
            international_prefix: Pattern::of(t.international_prefix.as_deref()),
            prefix_for_parsing: Pattern::of(t.national_prefix_for_parsing.as_deref()),
            transform: t
                .national_prefix_transform_rule
                .clone()
                .filter(|r| !r.is_empty()),
        }
    }

    /// `testNumberLength(number, metadata, UNKNOWN)`.
    pub(super) fn length(&self, len: usize) -> Length {
        let lengths = &self.general.lengths;
        let len = len as i32;
        let (Some(&min), Some(&max)) = (lengths.first(), lengths.last()) else {
            return Length::Invalid;
        };
        if min == -1 {
            Length::Invalid
        } else if self.local_lengths.contains(&len) {
            Length::LocalOnly
        } else if min == len {
            Length::Possible
        } else if min > len {
            Length::TooShort
        } else if max < len {
            Length::TooLong
        } else if lengths[1..].contains(&len) {
            Length::Possible
        } else {
            Length::Invalid
        }
    }

    /// `getNumberTypeHelper(national, metadata) != UNKNOWN`.
    fn knows(&self, national: &str) -> Result<bool, ()> {
        if !self.general.matches(national)? {
            return Ok(false);
        }
        for t in &self.types {
            if t.matches(national)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The regions sharing a country code, in libphonenumber's order.
pub(super) struct Country {
    pub(super) regions: Vec<RegionRules>,
}

impl Country {
    /// `isValidNumber`: the region of the number (`getRegionCodeForNumberFromRegionList`:
    /// leading digits where a region has them, else a known type), then a known type there.
    pub(super) fn is_valid(&self, national: &str) -> Result<bool, ()> {
        let regions = match &self.regions[..] {
            [only] => return only.knows(national),
            regions => regions,
        };
        for r in regions {
            match &r.leading_digits {
                Some(p) if p.looking_at(national)?.is_some() => return r.knows(national),
                Some(_) => {}
                // Found by knowing the number: valid there.
                None if r.knows(national)? => return Ok(true),
                None => {}
            }
        }
        Ok(false)
    }

    /// The position of a region.
    pub(super) fn position(&self, id: &str) -> Option<usize> {
        self.regions.iter().position(|r| r.id == id)
    }
}

/// A thread's rules of one [`PhoneMetadata`], by country code, built on first use.
struct Countries {
    /// [`PhoneMetadata::identity`] of the plans they are built from (`usize::MAX`: none yet).
    plans: usize,
    /// The territories of each country code, in libphonenumber's order, as indices.
    order: HashMap<u16, Vec<usize>>,
    /// Indexed by country code (below 1000); `None`: not built yet.
    by_code: Vec<Option<Option<Rc<Country>>>>,
}

thread_local! {
    static COUNTRIES: RefCell<Countries> = RefCell::new(Countries {
        plans: usize::MAX,
        order: HashMap::new(),
        by_code: Vec::new(),
    });
}

/// Each country code's territories in `rlibphonenumber`'s order: the main country first, the
/// others as the file lists them.
fn order(metadata: PhoneMetadata) -> HashMap<u16, Vec<usize>> {
    let mut order: HashMap<u16, Vec<usize>> = HashMap::new();
    for (i, t) in metadata.plans().collection.metadata.iter().enumerate() {
        let Some(code) = t.country_code else { continue };
        let list = order.entry(code as u16).or_default();
        if t.main_country_for_code.unwrap_or(false) {
            list.insert(0, i);
        } else {
            list.push(i);
        }
    }
    order
}

/// The rules of a country code (`None` for a code the plans do not have).
pub(super) fn country(metadata: PhoneMetadata, code: u16) -> Option<Rc<Country>> {
    COUNTRIES.with(|cell| {
        let mut all = cell.borrow_mut();
        if all.plans != metadata.identity() {
            all.plans = metadata.identity();
            all.order = order(metadata);
            all.by_code = vec![None; 1000];
        }
        if let Some(Some(country)) = all.by_code.get(usize::from(code)) {
            return country.clone();
        }
        let territories = &metadata.plans().collection.metadata;
        let country = all.order.get(&code).map(|indices| {
            Rc::new(Country {
                regions: indices
                    .iter()
                    .map(|&i| RegionRules::new(&territories[i]))
                    .collect(),
            })
        });
        if let Some(slot) = all.by_code.get_mut(usize::from(code)) {
            *slot = Some(country.clone());
        }
        country
    })
}
