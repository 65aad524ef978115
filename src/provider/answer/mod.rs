//! Reading `get_operator` answers, in every `fmt` (0 text, 1 comma-separated, 2 XML, 3 JSON).
//!
//! Contract: [`read`] turns a [`RawAnswer`] into answers for the numbers sent, or a
//! [`ProviderError`]. [`parse`] turns a body into a [`Reply`] without knowing what was asked;
//! [`Reply::match_to`] then pairs entries with the numbers sent, by digits and never by
//! position, so a number without an entry stays unanswered. Values may be strings or numbers;
//! `mnc` keeps its leading zeros; anything that is neither an error nor an answer is
//! [`ProviderError::Malformed`].

mod fields;
mod json;
mod text;
mod xml;

use std::collections::HashMap;

use super::{ApiCode, NumberAnswer, OperatorInfo, ProviderError, RawAnswer};
use crate::normalize::E164;

/// Decodes and parses one answer to a request for `sent`: answers for the numbers it names.
pub fn read(raw: &RawAnswer, sent: &[E164]) -> Result<Vec<(E164, NumberAnswer)>, ProviderError> {
    if !(200..300).contains(&raw.status) {
        return Err(ProviderError::Http { status: raw.status });
    }
    let charset = raw
        .content_type
        .as_deref()
        .and_then(|t| t.split(';').find_map(|p| p.trim().strip_prefix("charset=")))
        .and_then(|label| encoding_rs::Encoding::for_label(label.trim_matches('"').as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (body, _, _) = charset.decode(&raw.body);
    parse(Fmt::Json, &body)?.match_to(sent)
}

/// The provider's `fmt` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    /// 0: `country = ..., operator = ...` lines, `ERROR = N (...)`.
    Text = 0,
    /// 1: comma-separated values, `0,-N` for an error.
    Csv = 1,
    /// 2: `<info>` blocks, `<result><error_code>` for an error.
    Xml = 2,
    /// 3: JSON objects, `{"error", "error_code"}` for an error.
    Json = 3,
}

impl Fmt {
    /// The format a request's `fmt` parameter asks for (text when absent or unknown).
    pub fn from_param(s: Option<&str>) -> Fmt {
        match s.map(str::trim) {
            Some("1") => Fmt::Csv,
            Some("2") => Fmt::Xml,
            Some("3") => Fmt::Json,
            _ => Fmt::Text,
        }
    }
}

/// One entry of an answer: a number's info or its own error, with the `phone` echoed, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The number as the provider echoed it.
    pub phone: Option<String>,
    /// The number's operator, or its own error code and message.
    pub result: Result<OperatorInfo, (i64, String)>,
}

/// A parsed answer body.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An error for the whole request.
    Error { code: i64, message: String },
    /// One entry per number answered.
    Entries(Vec<Entry>),
}

impl Reply {
    /// Pairs the entries with the numbers sent. A whole-request error 3 or 1 for a single number
    /// is that number's answer; for a list it stays an error (the caller splits the list).
    pub fn match_to(self, sent: &[E164]) -> Result<Vec<(E164, NumberAnswer)>, ProviderError> {
        match self {
            Reply::Error { code, message } => {
                let code = ApiCode::from_number(code);
                match (code, sent) {
                    (ApiCode::NotFound, [one]) => Ok(vec![(*one, NumberAnswer::NotFound)]),
                    (ApiCode::Parameters, [one]) => Ok(vec![(*one, NumberAnswer::Rejected)]),
                    _ => Err(ProviderError::Api { code, message }),
                }
            }
            Reply::Entries(entries) => {
                let wanted: HashMap<u64, E164> = sent.iter().map(|n| (n.0, *n)).collect();
                let mut out = Vec::with_capacity(entries.len());
                let lone = sent.len() == 1 && entries.len() == 1;
                for entry in entries {
                    let number = match entry.phone.as_deref().and_then(E164::from_digits) {
                        Some(n) => wanted.get(&n.0).copied(),
                        None if lone && entry.phone.is_none() => Some(sent[0]),
                        None => None,
                    };
                    let Some(number) = number else { continue };
                    let answer = match entry.result {
                        Ok(info) => NumberAnswer::Found(info),
                        Err((3, _)) => NumberAnswer::NotFound,
                        Err((1, _)) => NumberAnswer::Rejected,
                        Err(_) => continue,
                    };
                    out.push((number, answer));
                }
                Ok(out)
            }
        }
    }
}

/// Parses an answer body in the given format.
pub fn parse(fmt: Fmt, body: &str) -> Result<Reply, ProviderError> {
    let body = body.trim_start_matches('\u{feff}').trim();
    if body.is_empty() {
        return Err(ProviderError::Malformed("empty body".into()));
    }
    match fmt {
        Fmt::Json => json::parse_json(body),
        Fmt::Text => text::parse_text(body),
        Fmt::Csv => text::parse_csv(body),
        Fmt::Xml => xml::parse_xml(body),
    }
}

fn malformed(body: &str) -> ProviderError {
    let shown: String = body.chars().take(120).collect();
    ProviderError::Malformed(format!("unexpected answer `{shown}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mts() -> OperatorInfo {
        OperatorInfo::example()
    }

    fn entries(reply: Result<Reply, ProviderError>) -> Vec<Entry> {
        match reply {
            Ok(Reply::Entries(e)) => e,
            other => panic!("expected entries, got {other:?}"),
        }
    }

    #[test]
    fn whole_request_errors_in_every_format() {
        let cases: &[(Fmt, &str, i64)] = &[
            (Fmt::Text, "ERROR = 3 (operator not found)", 3),
            (Fmt::Text, "ERROR = 1 (parameters error)", 1),
            (Fmt::Text, "ERROR = 2 (authorise error)", 2),
            (
                Fmt::Text,
                "ERROR = 4 (IP address is temporarily blocked)",
                4,
            ),
            (Fmt::Text, "ERROR = 9 (duplicate request, wait a minute)", 9),
            (Fmt::Csv, "0,-1", 1),
            (Fmt::Csv, "0,-2", 2),
            (Fmt::Csv, "0,-3", 3),
            (Fmt::Csv, "0,-4", 4),
            (Fmt::Csv, "0,-9", 9),
            (
                Fmt::Xml,
                "<result>\n<error>parameters error</error>\n<error_code>1</error_code>\n</result>",
                1,
            ),
            (
                Fmt::Xml,
                "<result><error>authorise error</error><error_code>2</error_code></result>",
                2,
            ),
            (
                Fmt::Xml,
                "<result><error>operator not found</error><error_code>3</error_code></result>",
                3,
            ),
            (
                Fmt::Xml,
                "<result><error>blocked</error><error_code>4</error_code></result>",
                4,
            ),
            (
                Fmt::Xml,
                "<result><error>too many</error><error_code>9</error_code></result>",
                9,
            ),
            (
                Fmt::Json,
                r#"{"error": "parameters error", "error_code": 1}"#,
                1,
            ),
            (
                Fmt::Json,
                r#"{"error": "authorise error", "error_code": 2}"#,
                2,
            ),
            (
                Fmt::Json,
                r#"{"error": "operator not found", "error_code": 3}"#,
                3,
            ),
            (Fmt::Json, r#"{"error": "blocked", "error_code": "4"}"#, 4),
            (
                Fmt::Json,
                r#"{"error": "duplicate request", "error_code": 9}"#,
                9,
            ),
            (Fmt::Json, r#"{"error": "operator not found"}"#, 3),
        ];
        for (fmt, body, code) in cases {
            match parse(*fmt, body) {
                Ok(Reply::Error { code: got, .. }) => assert_eq!(got, *code, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn single_answers_in_every_format() {
        let cases: &[(Fmt, &str)] = &[
            (Fmt::Text, "country = Россия, operator = МТС, region = Москва, mcc = 250, mnc = 01, tz = 3"),
            (Fmt::Csv, "Россия,МТС,Москва,250,01,3"),
            (Fmt::Xml, "<info>\n<country>Россия</country>\n<operator>МТС</operator>\n<region>Москва</region>\n<mcc>250</mcc>\n<mnc>01</mnc>\n<tz>3</tz>\n</info>"),
            (Fmt::Json, r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": "250", "mnc": "01", "tz": "3"}"#),
            (Fmt::Json, r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": 1, "tz": 3}"#),
            (Fmt::Json, r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": "+3"}"#),
        ];
        for (fmt, body) in cases {
            let e = entries(parse(*fmt, body));
            assert_eq!(e.len(), 1, "{body}");
            assert_eq!(e[0].result, Ok(mts()), "{body}");
            let matched = Reply::Entries(e).match_to(&[E164(79161234567)]).unwrap();
            assert_eq!(
                matched,
                vec![(E164(79161234567), NumberAnswer::Found(mts()))],
                "{body}"
            );
        }
    }

    #[test]
    fn lists_in_every_format_match_by_digits_not_position() {
        let sent = [E164(79161234567), E164(79031234567), E164(79261234567)];
        let cases: &[(Fmt, &str)] = &[
            (Fmt::Text, "phone = 79031234567, ERROR = 3 (operator not found)\nphone = +79161234567, country = Россия, operator = МТС, region = Москва, mcc = 250, mnc = 01, tz = 3"),
            (Fmt::Csv, "79031234567,0,-3\n79161234567,Россия,МТС,Москва,250,01,3"),
            (Fmt::Xml, "<list><info><phone>79031234567</phone><error>operator not found</error><error_code>3</error_code></info><info><phone>79161234567</phone><country>Россия</country><operator>МТС</operator><region>Москва</region><mcc>250</mcc><mnc>01</mnc><tz>3</tz></info></list>"),
            (Fmt::Json, r#"[{"phone": "79031234567", "error": "operator not found", "error_code": 3}, {"phone": "+79161234567", "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": "250", "mnc": "01", "tz": "3"}]"#),
            (Fmt::Json, r#"{"list": [{"phone": 79031234567, "error_code": 3}, {"phone": 79161234567, "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}]}"#),
        ];
        for (fmt, body) in cases {
            let mut got = parse(*fmt, body).unwrap().match_to(&sent).unwrap();
            got.sort_by_key(|(n, _)| *n);
            // The third number has no entry: it is unanswered, not "not found".
            assert_eq!(
                got,
                vec![
                    (E164(79031234567), NumberAnswer::NotFound),
                    (E164(79161234567), NumberAnswer::Found(mts()))
                ],
                "{body}"
            );
        }
    }

    #[test]
    fn single_number_errors_become_its_answer_but_list_errors_do_not() {
        let one = [E164(79161234567)];
        let two = [E164(79161234567), E164(79031234567)];
        let not_found = Reply::Error {
            code: 3,
            message: "operator not found".into(),
        };
        let params = Reply::Error {
            code: 1,
            message: "parameters error".into(),
        };
        assert_eq!(
            not_found.clone().match_to(&one).unwrap(),
            vec![(one[0], NumberAnswer::NotFound)]
        );
        assert_eq!(
            params.clone().match_to(&one).unwrap(),
            vec![(one[0], NumberAnswer::Rejected)]
        );
        assert!(matches!(
            not_found.match_to(&two),
            Err(ProviderError::Api {
                code: ApiCode::NotFound,
                ..
            })
        ));
        assert!(matches!(
            params.match_to(&two),
            Err(ProviderError::Api {
                code: ApiCode::Parameters,
                ..
            })
        ));
        let auth = Reply::Error {
            code: 2,
            message: String::new(),
        };
        assert!(matches!(
            auth.match_to(&one),
            Err(ProviderError::Api {
                code: ApiCode::Auth,
                ..
            })
        ));
    }

    #[test]
    fn values_with_commas_survive_text_and_csv() {
        let e = entries(parse(Fmt::Text, "country = Россия, operator = МТС, region = Москва и Московская область, г. Зеленоград, mcc = 250, mnc = 01, tz = 3"));
        assert_eq!(
            e[0].result.as_ref().unwrap().region,
            "Москва и Московская область, г. Зеленоград"
        );
        let e = entries(parse(Fmt::Csv, "Россия,МТС,Москва, Зеленоград,250,01,3"));
        assert_eq!(e[0].result.as_ref().unwrap().region, "Москва, Зеленоград");
    }

    #[test]
    fn garbage_is_malformed() {
        let cases: &[(Fmt, &str)] = &[
            (Fmt::Json, ""),
            (Fmt::Json, r#"[{"phone": "79161234567", "country": "Росс"#),
            (Fmt::Json, "<html>502 Bad Gateway</html>"),
            (Fmt::Json, r#"{"status": "ok"}"#),
            (Fmt::Text, "<html>502 Bad Gateway</html>"),
            (Fmt::Csv, "Россия,МТС"),
            (Fmt::Xml, "<html>oops</html>"),
        ];
        for (fmt, body) in cases {
            assert!(
                matches!(parse(*fmt, body), Err(ProviderError::Malformed(_))),
                "{body}"
            );
        }
    }
}
