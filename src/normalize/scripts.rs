//! Digits of every script read as libphonenumber reads them.
//!
//! Contract: [`to_ascii_digits`] gives a cell's text with every Unicode decimal digit (general
//! category Nd: fullwidth `７`, Arabic-Indic `٧`, Eastern Arabic-Indic `۷`, Devanagari `७`, ...)
//! as its ASCII digit and the fullwidth plus `＋` as `+`, everything else unchanged, as
//! libphonenumber's `normalizeDigits` reads digits (`Character.digit(c, 10)`) and its
//! `PLUS_CHARS` read a plus. The `phonenumber` crate reads only ASCII digits, so both of the
//! normalizer's paths are given this text. ASCII text is returned as it is, without a copy.

use std::borrow::Cow;

/// The zero of every run of ten Unicode decimal digits beyond ASCII (Unicode 16), ascending:
/// a digit's value is its distance from the zero of its run (each run is ten code points, 0 to
/// 9, by Unicode's stability policy).
const ZEROS: &[u32] = &[
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x10D40, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x116D0, 0x116DA, 0x11730, 0x118E0, 0x11950, 0x11BF0, 0x11C50, 0x11D50,
    0x11DA0, 0x11F50, 0x16130, 0x16A60, 0x16AC0, 0x16B50, 0x16D70, 0x1CCF0, 0x1D7CE, 0x1D7D8,
    0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E5F1, 0x1E950, 0x1FBF0,
];

/// The fullwidth plus sign, one of libphonenumber's `PLUS_CHARS`.
const FULLWIDTH_PLUS: char = '\u{FF0B}';

/// A non-ASCII decimal digit's ASCII digit.
fn ascii_digit(c: char) -> Option<char> {
    let code = u32::from(c);
    let run = ZEROS.partition_point(|&zero| zero <= code).checked_sub(1)?;
    let value = code - ZEROS[run];
    (value < 10).then(|| char::from(b'0' + value as u8))
}

/// `text` with every decimal digit in ASCII and `＋` as `+`; borrowed when nothing changes.
pub(super) fn to_ascii_digits(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let folded = |c: char| match c {
        FULLWIDTH_PLUS => Some('+'),
        c if c.is_ascii() => None,
        c => ascii_digit(c),
    };
    let Some(first) = text.char_indices().find(|&(_, c)| folded(c).is_some()) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first.0]);
    out.extend(text[first.0..].chars().map(|c| folded(c).unwrap_or(c)));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_every_script_become_ascii() {
        let cases: &[(&str, &str)] = &[
            ("+7 916 123-45-67", "+7 916 123-45-67"),
            ("＋７ ９１６ １２３ ４５ ６７", "+7 916 123 45 67"),
            ("+٧ ٩١٦ ١٢٣ ٤٥ ٦٧", "+7 916 123 45 67"),
            ("+۷ ۹۱۶ ۱۲۳ ۴۵ ۶۷", "+7 916 123 45 67"),
            ("+७ ९१६ १२३ ४५ ६७", "+7 916 123 45 67"),
            ("８（９１６）１２３－４５－６７", "8（916）123－45－67"),
            ("тел. ٨ ٩١٦ ١٢٣ ٤٥ ٦٧ (Иван)", "тел. 8 916 123 45 67 (Иван)"),
            ("𝟖 𝟗𝟏𝟔", "8 916"),
            ("тел. 8 916", "тел. 8 916"),
            // Other numerals (superscripts, circled, Roman) are no digits to libphonenumber.
            ("²③Ⅳ", "²③Ⅳ"),
        ];
        for (text, want) in cases {
            assert_eq!(to_ascii_digits(text), *want, "{text:?}");
        }
        assert!(matches!(to_ascii_digits("тел. 8"), Cow::Borrowed(_)));
    }

    /// The table holds exactly the decimal digits (`\p{Nd}`) of the regex crate's Unicode
    /// tables, each with its value.
    #[test]
    fn the_table_holds_every_decimal_digit() {
        let nd = regex::Regex::new(r"^\p{Nd}$").unwrap();
        for code in 0x80..=0x10FFFFu32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let mut buf = [0; 4];
            let is_digit = nd.is_match(c.encode_utf8(&mut buf));
            assert_eq!(ascii_digit(c).is_some(), is_digit, "U+{code:04X}");
        }
        assert!(ZEROS.windows(2).all(|w| w[1] - w[0] >= 10));
        assert_eq!(ascii_digit('٧'), Some('7'));
        assert_eq!(ascii_digit('\u{1D7D8}'), Some('0'));
    }
}
