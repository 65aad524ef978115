//! The reading of one number: libphonenumber's own, through `rlibphonenumber`.
//!
//! Contract: [`parse_valid`] gives what libphonenumber's `parse(text, region)` then
//! `isValidNumber` and E.164 formatting give: the valid number's digits, or `None` for a text
//! that does not parse or a number that is not valid (or one too long for an [`E164`]).
//! `rlibphonenumber` is libphonenumber's algorithm step by step (`parseHelper`,
//! `maybeExtractCountryCode`, `maybeStripNationalPrefixAndCarrierCode`,
//! `getRegionCodeForNumberFromRegionList`, `isValidNumberForRegion`); the differential test
//! (`tests/it/libphonenumber.rs`) holds it to libphonenumber itself. Where rlibphonenumber
//! 2.2.15 departs from libphonenumber, the text is first rewritten into one it reads as
//! libphonenumber reads the original: `tel:` after a phone context, and the fullwidth tilde.

use std::borrow::Cow;

use rlibphonenumber::{PhoneNumber, Region};

use super::{PhoneMetadata, E164};

/// The valid number `text` holds read in `region`, if any.
pub(super) fn parse_valid(metadata: PhoneMetadata, region: Region, text: &str) -> Option<E164> {
    let text = tel_after_phone_context(text)?;
    let text = fullwidth_tilde_as_ascii(text);
    let util = metadata.util();
    // A panic inside rlibphonenumber on some text would end the run; the cell is no number.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let number = util.parse(&*text, Some(region)).ok()?;
        util.is_valid_number(&number).then_some(number)
    }));
    e164(&read.ok()??)
}

/// libphonenumber's `MAX_INPUT_STRING_LENGTH`, in characters.
const MAX_INPUT: usize = 250;

/// `buildNationalNumberForParsing` takes the number from after the first `tel:` to the first
/// `;phone-context=`; when `tel:` comes later, libphonenumber (Python's slice) takes nothing
/// there, and `rlibphonenumber` 2.2.15 panics slicing backwards. The same text with nothing
/// between a leading `tel:` and the phone context reads the same; `None`: too long to read.
fn tel_after_phone_context(text: &str) -> Option<Cow<'_, str>> {
    const CONTEXT: &str = ";phone-context=";
    match (text.find(CONTEXT), text.find("tel:")) {
        (Some(context), Some(tel)) if tel + 4 > context => {
            if text.chars().count() > MAX_INPUT {
                return None;
            }
            Some(format!("tel:{}", &text[context..]).into())
        }
        _ => Some(text.into()),
    }
}

/// libphonenumber names the fullwidth tilde (U+FF5E) wherever it names `~`: among its
/// punctuation (`VALID_PUNCTUATION`), the extension labels and an international prefix's
/// tildes, so the two read alike. rlibphonenumber 2.2.15 leaves U+FF5E out of its punctuation,
/// and a number written with one is no number to it (`+7 921～073 94 65`, valid to
/// libphonenumber); written with `~`, it reads as libphonenumber reads it.
fn fullwidth_tilde_as_ascii(text: Cow<'_, str>) -> Cow<'_, str> {
    match text.contains('\u{FF5E}') {
        true => text.replace('\u{FF5E}', "~").into(),
        false => text,
    }
}

/// The number's E.164 digits: its country code, then its national significant number (with
/// the leading zeros libphonenumber keeps, as `format(E164)` writes it).
fn e164(number: &PhoneNumber) -> Option<E164> {
    let national = rlibphonenumber::get_national_significant_number_owned(number);
    let code = u64::try_from(number.country_code).ok()?;
    let mut value = code;
    for digit in national.bytes() {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit.checked_sub(b'0')?))?;
    }
    Some(E164(value))
}
