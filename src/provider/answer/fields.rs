//! Field values as the provider writes them, whatever the format: text or numbers, `mnc` with
//! its leading zeros, `tz` in its several spellings, errors with a code, without one, or saying
//! success.
//!
//! Contract: [`Fields::into_content`] makes one entry's [`Content`] from its six values; a value
//! it cannot read is left empty and reported as an [`UnreadValue`], never dropped silently.
//! [`stated_error`] reads an `error_code` / `error` pair, and [`code_from_message`] an error
//! text without a code, in English or Russian.

use super::{Content, UnreadValue};
use crate::provider::OperatorInfo;

/// The six values of an answer, as text, as the provider wrote them (`None` when absent or null).
#[derive(Debug, Default)]
pub struct Fields {
    pub country: Option<String>,
    pub operator: Option<String>,
    pub region: Option<String>,
    pub mcc: Option<String>,
    pub mnc: Option<String>,
    pub tz: Option<String>,
}

impl Fields {
    /// Whether any of the six values is present.
    pub fn any(&self) -> bool {
        [
            &self.country,
            &self.operator,
            &self.region,
            &self.mcc,
            &self.mnc,
            &self.tz,
        ]
        .iter()
        .any(|v| v.is_some())
    }

    /// The entry these values make: the operator, or "not found" when they name no operator,
    /// no MCC and no MNC. Values that cannot be read are left empty and added to `unread`.
    pub fn into_content(self, unread: &mut Vec<UnreadValue>) -> Content {
        let text = |v: Option<String>| v.map(|s| s.trim().to_string()).unwrap_or_default();
        let (operator, mcc, mnc, tz) = (
            text(self.operator),
            text(self.mcc),
            text(self.mnc),
            text(self.tz),
        );
        if operator.is_empty() && mcc.is_empty() && mnc.is_empty() {
            return Content::Error {
                code: 3,
                message: "no operator, MCC or MNC".into(),
            };
        }
        let mut note = |field: &'static str, value: &str| {
            unread.push(UnreadValue {
                field,
                value: value.to_string(),
            })
        };
        let mcc_read = parse_mcc(&mcc).unwrap_or_else(|()| {
            note("mcc", &mcc);
            None
        });
        let tz_read = parse_tz(&tz).unwrap_or_else(|()| {
            note("tz", &tz);
            None
        });
        let mnc_read = normalize_mnc(&mnc).unwrap_or_else(|()| {
            note("mnc", &mnc);
            String::new()
        });
        Content::Info(OperatorInfo {
            country: text(self.country),
            operator,
            region: text(self.region),
            mcc: mcc_read,
            mnc: mnc_read,
            tz: tz_read,
        })
    }
}

/// An MCC: three digits at most (`250`, also written `250.0`); empty is none.
fn parse_mcc(m: &str) -> Result<Option<u16>, ()> {
    if m.is_empty() {
        return Ok(None);
    }
    let value: f64 = m.parse().map_err(|_| ())?;
    match value.fract() == 0.0 && (0.0..=999.0).contains(&value) {
        true => Ok(Some(value as u16)),
        false => Err(()),
    }
}

/// MNCs are two or three digits; one that arrived as a bare number (`1`) gets its zero back.
fn normalize_mnc(m: &str) -> Result<String, ()> {
    match m.len() {
        _ if !m.bytes().all(|b| b.is_ascii_digit()) => Err(()),
        1 => Ok(format!("0{m}")),
        _ => Ok(m.to_string()),
    }
}

/// Hours from UTC: `3`, `+3`, `-2`, `3.0`, `UTC+3`, `GMT+03:00`, `+03:00`, `MSK`, `MSK+4`
/// (Moscow is UTC+3). Empty is none.
fn parse_tz(t: &str) -> Result<Option<i8>, ()> {
    if t.is_empty() {
        return Ok(None);
    }
    let upper = t.to_ascii_uppercase();
    let (base, rest) = [("UTC", 0.0), ("GMT", 0.0), ("MSK", 3.0)]
        .iter()
        .find_map(|(zone, base)| upper.strip_prefix(zone).map(|rest| (*base, rest.trim())))
        .unwrap_or((0.0, upper.as_str()));
    let offset: f32 = match rest.split(':').next().unwrap_or("") {
        // A zone alone: `UTC`, `MSK`.
        "" if rest.is_empty() => 0.0,
        hours => hours.trim_start_matches('+').parse().map_err(|_| ())?,
    };
    let hours = base + offset;
    match (-12.0..=14.0).contains(&hours) {
        true => Ok(Some(hours.trunc() as i8)),
        false => Err(()),
    }
}

/// What an `error_code` / `error` pair says.
#[derive(Debug, PartialEq, Eq)]
pub enum Stated {
    /// No error: both absent, null or empty, or the code 0.
    Success,
    /// The provider's error `code` with its message.
    Error(i64, String),
    /// An error whose code cannot be known: a text no rule recognises, or a code that is no
    /// number.
    Unknown(String),
}

/// Reads an `error_code` and `error` pair, each as text when present.
pub fn stated_error(code: Option<&str>, message: Option<&str>) -> Stated {
    let message = message.map(str::trim).unwrap_or("").to_string();
    match code.map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => match code.parse::<i64>() {
            Ok(0) => Stated::Success,
            Ok(code) => Stated::Error(code, message),
            Err(_) => Stated::Unknown(format!("error_code `{code}`")),
        },
        None if message.is_empty() => Stated::Success,
        None => match code_from_message(&message) {
            Some(code) => Stated::Error(code, message),
            None => Stated::Unknown(message),
        },
    }
}

/// The provider's code for an error text that came without one, in English or Russian:
/// blocked → 4, credentials → 2, a limit → 9, not found → 3, parameters → 1.
pub fn code_from_message(message: &str) -> Option<i64> {
    const RULES: &[(i64, &[&str])] = &[
        (4, &["blocked", "заблокирован", "блокировк"]),
        (
            2,
            &[
                "authoris",
                "authoriz",
                "authenticat",
                "login or password",
                "логин",
                "парол",
                "авториз",
            ],
        ),
        (
            9,
            &[
                "too many",
                "duplicate",
                "слишком много",
                "повторн",
                "превышен",
            ],
        ),
        (3, &["not found", "не найден"]),
        (1, &["parameter", "параметр"]),
    ];
    let m = message.to_lowercase();
    RULES
        .iter()
        .find(|(_, words)| words.iter().any(|w| m.contains(w)))
        .map(|(code, _)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_in_every_spelling() {
        let cases: &[(&str, Result<Option<i8>, ()>)] = &[
            ("3", Ok(Some(3))),
            ("+3", Ok(Some(3))),
            ("-2", Ok(Some(-2))),
            ("3.0", Ok(Some(3))),
            ("UTC+3", Ok(Some(3))),
            ("utc+3", Ok(Some(3))),
            ("GMT+03:00", Ok(Some(3))),
            ("+03:00", Ok(Some(3))),
            ("UTC", Ok(Some(0))),
            ("MSK", Ok(Some(3))),
            ("MSK+4", Ok(Some(7))),
            ("MSK-1", Ok(Some(2))),
            ("MSK+9", Ok(Some(12))),
            ("", Ok(None)),
            ("Moscow", Err(())),
            ("+30", Err(())),
            ("MSK+", Err(())),
        ];
        for (tz, want) in cases {
            assert_eq!(parse_tz(tz), *want, "{tz}");
        }
    }

    #[test]
    fn mcc_and_mnc_as_numbers_or_text() {
        assert_eq!(parse_mcc("250"), Ok(Some(250)));
        assert_eq!(parse_mcc("250.0"), Ok(Some(250)));
        assert_eq!(parse_mcc(""), Ok(None));
        assert_eq!(parse_mcc("RU"), Err(()));
        assert_eq!(parse_mcc("2500"), Err(()));
        assert_eq!(normalize_mnc("1"), Ok("01".into()));
        assert_eq!(normalize_mnc("01"), Ok("01".into()));
        assert_eq!(normalize_mnc("020"), Ok("020".into()));
        assert_eq!(normalize_mnc(""), Ok(String::new()));
        assert_eq!(normalize_mnc("MTS"), Err(()));
    }

    #[test]
    fn errors_with_and_without_codes() {
        let cases: &[(Option<&str>, Option<&str>, Stated)] = &[
            (None, None, Stated::Success),
            (Some("0"), Some(""), Stated::Success),
            (Some(""), None, Stated::Success),
            (None, Some(""), Stated::Success),
            (
                Some("3"),
                Some("operator not found"),
                Stated::Error(3, "operator not found".into()),
            ),
            (Some(" 2 "), None, Stated::Error(2, String::new())),
            (
                Some("two"),
                None,
                Stated::Unknown("error_code `two`".into()),
            ),
            (
                None,
                Some("authorise error"),
                Stated::Error(2, "authorise error".into()),
            ),
            (
                None,
                Some("something odd"),
                Stated::Unknown("something odd".into()),
            ),
        ];
        for (code, message, want) in cases {
            assert_eq!(&stated_error(*code, *message), want, "{code:?} {message:?}");
        }
        let messages: &[(&str, Option<i64>)] = &[
            ("authorise error", Some(2)),
            ("Authorization failed", Some(2)),
            ("wrong login or password", Some(2)),
            ("Неверный логин или пароль", Some(2)),
            ("ошибка авторизации", Some(2)),
            ("IP address is temporarily blocked", Some(4)),
            ("IP-адрес временно заблокирован", Some(4)),
            ("too many requests, wait a minute", Some(9)),
            ("duplicate request, wait a minute", Some(9)),
            ("слишком много запросов", Some(9)),
            ("operator not found", Some(3)),
            ("оператор не найден", Some(3)),
            ("parameters error", Some(1)),
            ("ошибка в параметрах", Some(1)),
            ("internal error", None),
        ];
        for (message, want) in messages {
            assert_eq!(code_from_message(message), *want, "{message}");
        }
    }

    #[test]
    fn an_entry_without_operator_mcc_or_mnc_is_not_found() {
        let mut unread = Vec::new();
        let empty = Fields {
            country: Some("Россия".into()),
            operator: Some(String::new()),
            tz: Some("3".into()),
            ..Fields::default()
        };
        assert!(matches!(
            empty.into_content(&mut unread),
            Content::Error { code: 3, .. }
        ));
        let odd = Fields {
            operator: Some("МТС".into()),
            mcc: Some("RU".into()),
            tz: Some("Moscow".into()),
            ..Fields::default()
        };
        let Content::Info(info) = odd.into_content(&mut unread) else {
            panic!("an operator makes an answer");
        };
        assert_eq!((info.mcc, info.tz), (None, None));
        let fields: Vec<&str> = unread.iter().map(|u| u.field).collect();
        assert_eq!(fields, ["mcc", "tz"]);
    }
}
