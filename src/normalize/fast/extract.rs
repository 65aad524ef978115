//! libphonenumber's first steps for a cell with more than a number in it: notes, extensions,
//! several numbers, letters.
//!
//! Contract: [`extract`] gives what `buildNationalNumberForParsing` (`extractPossibleNumber`),
//! `isViablePhoneNumber`, `maybeStripExtension` and `normalize` leave of a cell, in
//! `rlibphonenumber`'s versions of them: the number's ASCII digits (pushed onto `digits`) and
//! whether a `+` leads them, or `Err(())` where libphonenumber finds no viable number. Three
//! Latin letters or more are keypad digits, as libphonenumber reads them. It reads cells of
//! [`known_char`]s only, and says `None` — the cell is left to `rlibphonenumber` — for any
//! other character, an RFC 3966 parameter (`;phone-context=`, `;isub=`), `/ x` (a second
//! number) and two digits alone. Viability is `rlibphonenumber`'s own check; the extension
//! pattern is [`EXTENSION`], its pattern for parsing written out. `fast::tests` holds the
//! result to `rlibphonenumber`.

use std::sync::LazyLock;

use regex::Regex;
use rlibphonenumber::PhoneNumberUtil;

use super::{Digits, MAX_INPUT};

/// The characters whose Unicode category this step knows: ASCII, the Russian alphabet, and
/// libphonenumber's punctuation (`VALID_PUNCTUATION`) outside ASCII, less U+30FC, a letter.
fn known_char(c: char) -> bool {
    c.is_ascii() || russian_letter(c) || punctuation(c)
}

/// The letters of the Russian alphabet (category L).
fn russian_letter(c: char) -> bool {
    matches!(c, 'А'..='я' | 'Ё' | 'ё')
}

/// libphonenumber's `VALID_PUNCTUATION` outside ASCII, less U+30FC (a letter) and U+FF5E
/// (also an extension label): separators, never letters or digits.
pub(super) fn punctuation(c: char) -> bool {
    matches!(
        c,
        '\u{2010}'..='\u{2015}'
            | '\u{2212}'
            | '\u{FF0D}'..='\u{FF0F}'
            | '\u{00A0}'
            | '\u{00AD}'
            | '\u{200B}'
            | '\u{2060}'
            | '\u{3000}'
            | '\u{FF08}'
            | '\u{FF09}'
            | '\u{FF3B}'
            | '\u{FF3D}'
            | '\u{2053}'
            | '\u{223C}'
    )
}

/// libphonenumber's extension pattern for parsing (`createExtnPattern(true)`, as
/// `rlibphonenumber` 2.2.15 writes it with its `regex` feature), anchored at the end: `;ext=`,
/// explicit labels (`ext`, `доб`, `anexo`), ambiguous ones (`x`, `#`, `~`, `int`), the American
/// `- 503#`, and the auto-dialling `,,` / `;` and commas.
const EXTENSION: &str = concat!(
    "(?i)(?:",
    ";ext=([\\p{Nd}]{1,20})",
    "|[ \u{A0}\\t,]*(?:e?xt(?:ensi(?:o\u{301}?|\u{F3}))?n?|(?:\u{FF45})?\u{FF58}\u{FF54}(?:\u{FF4E})?",
    "|\u{434}\u{43E}\u{431}|anexo)[:\\.\u{FF0E}]?[ \u{A0}\\t,-]*([\\p{Nd}]{1,20})#?",
    "|[ \u{A0}\\t,]*(?:[x\u{FF58}#\u{FF03}~\u{FF5E}]|int|\u{FF49}\u{FF4E}\u{FF54})",
    "[:\\.\u{FF0E}]?[ \u{A0}\\t,-]*([\\p{Nd}]{1,9})#?",
    "|[- ]+([\\p{Nd}]{1,6})#",
    "|[ \u{A0}\\t]*(?:,{2}|;)[:\\.\u{FF0E}]?[ \u{A0}\\t,-]*([\\p{Nd}]{1,15})#?",
    "|[ \u{A0}\\t]*(?:,)+[:\\.\u{FF0E}]?[ \u{A0}\\t,-]*([\\p{Nd}]{1,9})#?",
    ")$"
);

static EXTENSION_AT_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(EXTENSION).expect("libphonenumber's extension pattern"));

/// The number `text` holds after libphonenumber's first steps: `Some(Ok(plus))` with its digits
/// pushed onto `digits`, `Some(Err(()))` for no viable number, `None` where this does not tell.
pub(super) fn extract(
    util: &PhoneNumberUtil,
    text: &str,
    digits: &mut Digits,
) -> Option<Result<bool, ()>> {
    if text.len() > MAX_INPUT
        || !text.chars().all(known_char)
        || text.contains(";phone-context=")
        || text.contains(";isub=")
    {
        return None;
    }
    // `extractPossibleNumber`: from the first `+` or digit, less what ends it that is neither
    // a letter nor a digit nor `#`.
    let Some(start) = text.find(|c: char| c.is_ascii_digit() || c == '+') else {
        return Some(Err(()));
    };
    let number = text[start..]
        .trim_end_matches(|c: char| c != '#' && !c.is_ascii_alphanumeric() && !russian_letter(c));
    if number.is_empty() {
        return Some(Err(()));
    }
    if second_number_starts(number) {
        return None;
    }
    if !util.is_viable_phone_number(number) {
        return Some(Err(()));
    }
    let number = strip_extension(util, number);
    // `normalize`: with three Latin letters or more, letters are keypad digits; fewer are
    // dropped with the other characters.
    let keypad = number.bytes().filter(u8::is_ascii_alphabetic).count() >= 3;
    for b in number.bytes() {
        match b {
            b'0'..=b'9' => digits.push(b),
            b'A'..=b'Z' | b'a'..=b'z' if keypad => digits.push(keypad_digit(b)),
            _ => {}
        }
    }
    // Two digits alone are viable (`\d{2}`): left to rlibphonenumber, as `scan` leaves them.
    (digits.len() > 2).then_some(Ok(number.starts_with('+')))
}

/// The digit a letter is on a phone's keypad (libphonenumber's `ALPHA_MAPPINGS`).
fn keypad_digit(letter: u8) -> u8 {
    match letter.to_ascii_uppercase() {
        b'A'..=b'C' => b'2',
        b'D'..=b'F' => b'3',
        b'G'..=b'I' => b'4',
        b'J'..=b'L' => b'5',
        b'M'..=b'O' => b'6',
        b'P'..=b'S' => b'7',
        b'T'..=b'V' => b'8',
        _ => b'9',
    }
}

/// `[\\/] *x`: a second number after the first (`(530) 583-6985 x302/x2303`).
fn second_number_starts(number: &str) -> bool {
    number
        .match_indices(['/', '\\'])
        .any(|(at, _)| number[at + 1..].trim_start_matches(' ').starts_with('x'))
}

/// `maybeStripExtension`: the number without an extension at its end, when what precedes the
/// extension is viable on its own.
fn strip_extension<'a>(util: &PhoneNumberUtil, number: &'a str) -> &'a str {
    // Every extension has a label, a `#` or a `;` or `,`.
    let may_have_one = number.contains([',', ';', '#', '~'])
        || number
            .chars()
            .any(|c| c.is_ascii_alphabetic() || c == 'д' || c == 'Д');
    if !may_have_one {
        return number;
    }
    match EXTENSION_AT_END.find(number) {
        Some(found) if util.is_viable_phone_number(&number[..found.start()]) => {
            &number[..found.start()]
        }
        _ => number,
    }
}
