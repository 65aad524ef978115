//! The reference reading of a number: the `phonenumber` crate's, with its national-prefix step
//! replaced by libphonenumber's.
//!
//! Contract: [`parse_valid`] gives what libphonenumber's `parse` then `isValidNumber` give,
//! where the crate's `parse` differs from it in one step: the crate strips a region's national
//! prefix even from a number that is viable without stripping (`+7 812 …` loses its 8, so every
//! Russian number whose national number starts with 8 was invalid), strips it twice, and strips
//! with the default region's prefix whatever the number's country code. Here the crate reads the
//! country code and the whole national number (from the plans without national prefixes,
//! [`PhoneMetadata::unstripped`]), the prefix is stripped as libphonenumber's
//! `maybeStripNationalPrefixAndCarrierCode` and `parseHelper` strip it, and the crate's own
//! validator decides. Everything else is the crate's.

use std::cell::RefCell;
use std::collections::HashMap;

use phonenumber::country::{Id as Region, Source};
use phonenumber::Metadata;
use regex::Regex;

use super::metadata::{general_lengths, keeps_stripped_length};
use super::{PhoneMetadata, E164};

/// The valid number `text` holds in `region` (`None`: written internationally), if any.
pub(super) fn parse_valid(
    metadata: PhoneMetadata,
    region: Option<Region>,
    text: &str,
) -> Option<E164> {
    let unstripped = metadata.unstripped();
    let number = phonenumber::parse_with(unstripped, region, text).ok()?;
    let code = number.code().value();
    let database = metadata.database();
    // `parseHelper`: the default region's metadata for a number read without a country code,
    // else that of the country code's main region.
    let meta = match (number.code().source(), region) {
        (Source::Default, Some(region)) => database.by_id(region.as_ref()),
        _ => database.by_code(&code).and_then(|m| m.into_iter().next()),
    }?;
    let national = strip_national_prefix(meta, &number.national().to_string());
    let number = phonenumber::parse_with(unstripped, None, format!("+{code}{national}")).ok()?;
    if !phonenumber::is_valid_with(database, &number) {
        return None;
    }
    let e164 = phonenumber::format_with(database, &number)
        .mode(phonenumber::Mode::E164)
        .to_string();
    E164::from_digits(&e164)
}

/// libphonenumber's `maybeStripNationalPrefixAndCarrierCode`, then `parseHelper`'s length
/// check: the national number without its national prefix (or transformed by the region's
/// rule) when the original was not viable or the result is too, and the result's length is
/// possible (or too long); else the number as it was.
fn strip_national_prefix(meta: &Metadata, national: &str) -> String {
    // A region without `nationalPrefixForParsing` parses its national prefix.
    let parsing = match (meta.national_prefix_for_parsing(), meta.national_prefix()) {
        (Some(pattern), _) => pattern.as_str().to_string(),
        (None, Some(prefix)) => regex::escape(prefix),
        (None, None) => return national.to_string(),
    };
    let general = meta.descriptors().general().national_number().as_str();
    let stripped = with_regexes(&parsing, general, |parsing, general| {
        let captures = parsing.captures(national)?;
        let viable = general.is_match(national);
        let last = captures.get(captures.len() - 1);
        let potential = match (meta.national_prefix_transform_rule(), last) {
            (Some(rule), Some(_)) if !rule.is_empty() => {
                parsing.replace(national, rule).into_owned()
            }
            _ => national[captures.get(0).expect("the whole match").end()..].to_string(),
        };
        (!viable || general.is_match(&potential)).then_some(potential)
    });
    let (lengths, local) = general_lengths(meta);
    match stripped {
        Some(potential) if keeps_stripped_length(&lengths, &local, potential.len()) => potential,
        _ => national.to_string(),
    }
}

thread_local! {
    /// Patterns compiled as libphonenumber runs them, by source: a prefix anchored at the
    /// start (`lookingAt`), a general description matching the whole number (`matches`).
    static REGEXES: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

fn with_regexes<T>(parsing: &str, general: &str, f: impl FnOnce(&Regex, &Regex) -> T) -> T {
    REGEXES.with(|cell| {
        let mut cache = cell.borrow_mut();
        for (key, source) in [
            (format!("^{parsing}"), format!("^(?:{parsing}\n)")),
            (format!("^{general}$"), format!("^(?:{general}\n)$")),
        ] {
            cache.entry(key).or_insert_with(|| {
                regex::RegexBuilder::new(&source)
                    .ignore_whitespace(true)
                    .build()
                    .expect("the plans' patterns compile")
            });
        }
        f(
            &cache[&format!("^{parsing}")],
            &cache[&format!("^{general}$")],
        )
    })
}
