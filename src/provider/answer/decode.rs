//! Bytes to text: the charset an answer is decoded by, and the checks that its text came out
//! right.
//!
//! Contract: [`decode`] reads valid UTF-8 as UTF-8 whatever the header says; otherwise the
//! declared charset (unless it is UTF-8, which the bytes just failed); otherwise windows-1251,
//! the provider's default. Text that still holds replacement characters is refused.
//! [`looks_mis_decoded`] tells text that was decoded by the wrong charset somewhere on the way
//! (UTF-8 read as windows-1251 or -1252, windows-1251 read as Latin-1), so it is never stored.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1251, WINDOWS_1252};

/// A body as text, with the charset it was decoded by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    /// The charset's name, as encoding_rs spells it (`UTF-8`, `windows-1251`, ...).
    pub charset: &'static str,
}

/// The `charset` parameter of a `Content-Type` header, if it names one encoding_rs knows.
pub fn declared_charset(content_type: Option<&str>) -> Option<&'static Encoding> {
    content_type?.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        let label = value.trim().trim_matches('"');
        (key.trim().eq_ignore_ascii_case("charset"))
            .then(|| Encoding::for_label(label.as_bytes()))
            .flatten()
    })
}

/// Decodes `body` (see the module's contract); `Err` says why the text cannot be trusted.
pub fn decode(body: &[u8], content_type: Option<&str>) -> Result<Decoded, String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Ok(text) = std::str::from_utf8(body) {
        return Ok(Decoded {
            text: text.to_string(),
            charset: UTF_8.name(),
        });
    }
    let encoding = match declared_charset(content_type) {
        Some(declared) if declared != UTF_8 => declared,
        _ => WINDOWS_1251,
    };
    let (text, _) = encoding.decode_without_bom_handling(body);
    if text.contains('\u{FFFD}') {
        return Err(format!(
            "the body is neither UTF-8 nor {} (it decodes to replacement characters)",
            encoding.name()
        ));
    }
    Ok(Decoded {
        text: text.into_owned(),
        charset: encoding.name(),
    })
}

/// Whether `text` reads as Cyrillic decoded by the wrong charset: UTF-8 bytes read as a
/// single-byte charset (`РњРўРЎ`, `ÐœÐ¢Ð¡` for `МТС`), or windows-1251 read as Latin-1
/// (`ÌÒÑ`). Genuine names in Cyrillic or Latin script do not look like either.
pub fn looks_mis_decoded(text: &str) -> bool {
    if text.is_ascii() {
        return false;
    }
    let utf8_read_as = |single_byte: &'static Encoding| {
        let (bytes, _, unmappable) = single_byte.encode(text);
        !unmappable && std::str::from_utf8(&bytes).is_ok_and(|s| !s.is_ascii())
    };
    if utf8_read_as(WINDOWS_1251) || utf8_read_as(WINDOWS_1252) {
        return true;
    }
    // windows-1251 read as Latin-1: every Cyrillic letter becomes one of À..ÿ.
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let latin1 = text
        .chars()
        .filter(|c| ('\u{C0}'..='\u{FF}').contains(c))
        .count();
    latin1 >= 3 && latin1 * 2 > letters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets_are_chosen_by_the_bytes_first() {
        let utf8 = "МТС".as_bytes();
        let (cp1251, _, _) = WINDOWS_1251.encode("МТС");
        let (koi8, _, _) = encoding_rs::KOI8_R.encode("МТС");
        // (body, Content-Type, the text and charset it decodes to, or none).
        type Case<'a> = (&'a [u8], Option<&'a str>, Option<(&'a str, &'a str)>);
        let cases: &[Case] = &[
            (
                utf8,
                Some("application/json; charset=utf-8"),
                Some(("МТС", "UTF-8")),
            ),
            // UTF-8 labelled windows-1251 is still UTF-8.
            (
                utf8,
                Some("text/plain; charset=windows-1251"),
                Some(("МТС", "UTF-8")),
            ),
            (utf8, None, Some(("МТС", "UTF-8"))),
            (b"\xEF\xBB\xBF{}", None, Some(("{}", "UTF-8"))),
            (
                &cp1251,
                Some("text/plain; charset=windows-1251"),
                Some(("МТС", "windows-1251")),
            ),
            (
                &cp1251,
                Some("text/plain; charset=\"cp1251\""),
                Some(("МТС", "windows-1251")),
            ),
            // No charset, or UTF-8 falsely declared: windows-1251, the provider's default.
            (&cp1251, None, Some(("МТС", "windows-1251"))),
            (
                &cp1251,
                Some("application/json; charset=utf-8"),
                Some(("МТС", "windows-1251")),
            ),
            (
                &koi8,
                Some("text/plain; charset=koi8-r"),
                Some(("МТС", "KOI8-R")),
            ),
            // Bytes the declared charset cannot decode.
            (b"\x82", Some("text/plain; charset=shift_jis"), None),
        ];
        for (body, content_type, want) in cases {
            let got = decode(body, *content_type);
            match (got, want) {
                (Ok(d), Some((text, charset))) => {
                    assert_eq!(
                        (d.text.as_str(), d.charset),
                        (*text, *charset),
                        "{content_type:?}"
                    )
                }
                (Err(_), None) => {}
                (got, _) => panic!("{body:?} {content_type:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn mis_decoded_cyrillic_is_told_from_genuine_names() {
        let mis_decoded = |s: &str, by: &'static Encoding| {
            let (bytes, _, _) = UTF_8.encode(s);
            by.decode_without_bom_handling(&bytes).0.into_owned()
        };
        let (cp1251, _, _) = WINDOWS_1251.encode("Москва");
        let latin1 = WINDOWS_1252
            .decode_without_bom_handling(&cp1251)
            .0
            .into_owned();
        for bad in [
            mis_decoded("МТС", WINDOWS_1251),
            mis_decoded("Республика Саха (Якутия)", WINDOWS_1251),
            mis_decoded("Россия", WINDOWS_1252),
            latin1,
        ] {
            assert!(looks_mis_decoded(&bad), "{bad}");
        }
        for good in [
            "МТС",
            "Республика Саха (Якутия)",
            "Ёлкино",
            "Tele2",
            "Vodafone Украина",
            "life:)",
            "Türkiye",
            "São Tomé e Príncipe",
            "Côte d’Ivoire",
            "Vinnytsia «Київстар» — №1",
        ] {
            assert!(!looks_mis_decoded(good), "{good}");
        }
    }
}
