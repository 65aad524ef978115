//! Reading `get_operator` answers, whatever shape, format and charset the provider chose.
//!
//! Contract: [`read`] turns a [`RawAnswer`] into an [`Answered`] for the numbers sent, or a
//! [`ProviderError`]. The body is decoded by its bytes first ([`decode`]); the format is the one
//! the body is in, whatever `fmt` asked for ([`Fmt::sniff`]); a provider error is recognised in
//! every form and at any HTTP status before a body is called malformed. Each format's parser
//! reduces the body to records of named values (one per number, or one for the whole request);
//! [`Reply::match_to`] then pairs entries with the numbers sent by digits, never by position,
//! so a number without an entry stays unanswered, and one unreadable entry costs only its own
//! number. Text that looks mis-decoded makes the whole answer malformed: it is never stored.

pub mod decode;
mod fields;
mod json;
mod text;
mod xml;

use std::collections::{HashMap, HashSet};

use super::{ApiCode, NumberAnswer, OperatorInfo, ProviderError, RawAnswer};
use crate::normalize::E164;
use fields::{stated_error, Fields, Stated};

/// The provider's `fmt` parameter, and the format an answer turned out to be in.
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

    /// The format `body` is in, by its first characters; an HTML page is none of them.
    pub fn sniff(body: &str) -> Result<Fmt, ProviderError> {
        let start = body.trim_start();
        let first_line = start.lines().next().unwrap_or("").trim();
        if start.starts_with(['{', '[']) {
            return Ok(Fmt::Json);
        }
        if start.starts_with('<') {
            let head = start.get(..start.len().min(512)).unwrap_or(start);
            let head = head.to_ascii_lowercase();
            if ["<!doctype html", "<html", "<head", "<body"]
                .iter()
                .any(|tag| head.contains(tag))
            {
                return Err(malformed("an HTML page, not an answer", body));
            }
            return Ok(Fmt::Xml);
        }
        let is_text = first_line.contains('=') || !first_line.contains(',');
        Ok(if is_text { Fmt::Text } else { Fmt::Csv })
    }
}

/// A value the parser could not read and left empty; the caller logs each one once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnreadValue {
    /// `mcc`, `mnc` or `tz`.
    pub field: &'static str,
    /// The value as the provider wrote it.
    pub value: String,
}

/// What one entry says about its number.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// The number's operator.
    Info(OperatorInfo),
    /// The number's own error: 3 not found, 1 rejected; 2, 4 and 9 concern the whole request.
    Error { code: i64, message: String },
    /// An entry the parser cannot read; its number stays unanswered.
    Unreadable(String),
}

/// One entry of an answer, with the `phone` the provider echoed, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The number as the provider echoed it.
    pub phone: Option<String>,
    pub content: Content,
    /// Values left empty because they could not be read.
    pub unread: Vec<UnreadValue>,
}

/// A parsed answer body.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An error for the whole request.
    Error { code: i64, message: String },
    /// One entry per number answered.
    Entries(Vec<Entry>),
}

/// What an answer said about the numbers sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answered {
    /// A terminal answer for each number the answer is about; the others stay unanswered.
    pub answers: Vec<(E164, NumberAnswer)>,
    /// Values left empty because they could not be read.
    pub unread: Vec<UnreadValue>,
    /// Entries of a list with no usable `phone`, which nothing could pair with a number.
    pub phoneless: usize,
    /// Why entries could not be read (their numbers stay unanswered).
    pub unreadable: Vec<String>,
}

/// Decodes and parses one answer to a request for `sent`.
pub fn read(raw: &RawAnswer, sent: &[E164]) -> Result<Answered, ProviderError> {
    let text = decode::decode(&raw.body, raw.content_type.as_deref())
        .map_err(ProviderError::Malformed)?
        .text;
    let success = (200..300).contains(&raw.status);
    let reply = match parse(&text) {
        // A provider error is one whatever the HTTP status.
        Ok((_, reply @ Reply::Error { .. })) => reply,
        Ok((_, reply)) if success => reply,
        Err(e) if success => return Err(e),
        _ => return Err(ProviderError::Http { status: raw.status }),
    };
    check_text(&reply)?;
    reply.match_to(sent)
}

/// Parses an answer body in whatever format it is in.
pub fn parse(body: &str) -> Result<(Fmt, Reply), ProviderError> {
    let body = body.trim_start_matches('\u{feff}').trim();
    if body.is_empty() {
        return Err(ProviderError::Malformed("empty body".into()));
    }
    let fmt = Fmt::sniff(body)?;
    let records = match fmt {
        Fmt::Json => json::records(body)?,
        Fmt::Text => text::text_records(body),
        Fmt::Csv => text::csv_records(body)?,
        Fmt::Xml => xml::records(body)?,
    };
    Ok((fmt, reply(records, body)?))
}

/// One number's values (or one whole-request error's) by key, as text, whatever the format:
/// a JSON object, an XML block, a line. `Err` describes a record that is not one.
type Record = Result<HashMap<String, String>, String>;

/// The keys a record may hold.
const KEYS: &[&str] = &[
    "phone",
    "error",
    "error_code",
    "country",
    "operator",
    "region",
    "mcc",
    "mnc",
    "tz",
];

fn fields_of(record: &HashMap<String, String>) -> Fields {
    let get = |k: &str| record.get(k).cloned();
    Fields {
        country: get("country"),
        operator: get("operator"),
        region: get("region"),
        mcc: get("mcc"),
        mnc: get("mnc"),
        tz: get("tz"),
    }
}

/// The reply records make: a lone record with neither a phone nor an answer's values is the
/// whole request's error; anything else is entries.
fn reply(mut records: Vec<Record>, body: &str) -> Result<Reply, ProviderError> {
    if let [Ok(only)] = records.as_slice() {
        if !only.contains_key("phone") && !fields_of(only).any() {
            let get = |k: &str| only.get(k).map(String::as_str);
            return match stated_error(get("error_code"), get("error")) {
                Stated::Error(code, message) => Ok(Reply::Error { code, message }),
                Stated::Success | Stated::Unknown(_) => {
                    Err(malformed("neither an answer nor a known error", body))
                }
            };
        }
    }
    Ok(Reply::Entries(records.drain(..).map(entry).collect()))
}

fn entry(record: Record) -> Entry {
    let record = match record {
        Ok(r) => r,
        Err(why) => {
            return Entry {
                phone: None,
                content: Content::Unreadable(why),
                unread: Vec::new(),
            }
        }
    };
    let get = |k: &str| record.get(k).map(String::as_str);
    let phone = get("phone")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let fields = fields_of(&record);
    let mut unread = Vec::new();
    let content = match stated_error(get("error_code"), get("error")) {
        Stated::Error(code, message) => Content::Error { code, message },
        Stated::Unknown(why) => Content::Unreadable(format!("an unknown error: {why}")),
        Stated::Success if fields.any() => fields.into_content(&mut unread),
        Stated::Success => Content::Unreadable("an entry with no values".into()),
    };
    Entry {
        phone,
        content,
        unread,
    }
}

/// Refuses an answer whose text was decoded by the wrong charset somewhere on the way.
fn check_text(reply: &Reply) -> Result<(), ProviderError> {
    let Reply::Entries(entries) = reply else {
        return Ok(());
    };
    for entry in entries {
        if let Content::Info(info) = &entry.content {
            for text in [&info.country, &info.operator, &info.region] {
                if decode::looks_mis_decoded(text) {
                    return Err(ProviderError::Malformed(format!(
                        "`{text}` looks like Cyrillic decoded by the wrong charset"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn malformed(what: &str, body: &str) -> ProviderError {
    let shown: String = body.chars().take(120).collect();
    ProviderError::Malformed(format!("{what}: `{shown}`"))
}

/// The number sent that an echoed `phone` names: the same digits, or the national `8` for
/// `7`. `None` when it names no number sent.
fn echoed(phone: &str, wanted: &HashSet<E164>) -> Option<E164> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let exact = E164::from_digits(&digits).filter(|n| wanted.contains(n));
    let trunk = || {
        digits
            .strip_prefix('8')
            .filter(|rest| rest.len() == 10)
            .and_then(|rest| E164::from_digits(&format!("7{rest}")))
            .filter(|n| wanted.contains(n))
    };
    exact.or_else(trunk)
}

/// Whether `phone` could name a number at all.
fn usable(phone: &Option<String>) -> bool {
    phone
        .as_deref()
        .is_some_and(|p| p.chars().filter(char::is_ascii_digit).count() >= 8)
}

impl Reply {
    /// Pairs the entries with the numbers sent. A whole-request error 3 or 1 for a single number
    /// is that number's answer; for a list it stays an error (the caller splits the list). An
    /// entry's error 2, 4 or 9 is the whole request's. Entries without a usable `phone` are
    /// paired only when the list proves it: one per unanswered number, all alike (for a single
    /// number, always).
    pub fn match_to(self, sent: &[E164]) -> Result<Answered, ProviderError> {
        let entries = match self {
            Reply::Error { code, message } => {
                return match (ApiCode::from_number(code), sent) {
                    (ApiCode::NotFound, [one]) => Ok(Answered {
                        answers: vec![(*one, NumberAnswer::NotFound)],
                        ..Answered::default()
                    }),
                    (ApiCode::Parameters, [one]) => Ok(Answered {
                        answers: vec![(*one, NumberAnswer::Rejected)],
                        ..Answered::default()
                    }),
                    (code, _) => Err(ProviderError::Api { code, message }),
                }
            }
            Reply::Entries(entries) => entries,
        };
        let wanted: HashSet<E164> = sent.iter().copied().collect();
        let mut out = Answered::default();
        let mut answered = HashSet::new();
        let mut phoneless = Vec::new();
        for entry in entries {
            if let Content::Error {
                code: code @ (2 | 4 | 9),
                message,
            } = entry.content
            {
                let code = ApiCode::from_number(code);
                return Err(ProviderError::Api { code, message });
            }
            out.unread.extend(entry.unread.iter().cloned());
            match entry.phone.as_deref().and_then(|p| echoed(p, &wanted)) {
                Some(number) if answered.insert(number) => out.settle(number, entry.content),
                Some(_) => {}
                // A number that was not asked: nothing to pair it with.
                None if usable(&entry.phone) => {}
                None => match entry.content {
                    Content::Unreadable(why) => out.unreadable.push(why),
                    content => phoneless.push(content),
                },
            }
        }
        let unanswered: Vec<E164> = sent
            .iter()
            .copied()
            .filter(|n| !answered.contains(n))
            .collect();
        let alike = phoneless.windows(2).all(|w| w[0] == w[1]);
        if !phoneless.is_empty() && phoneless.len() == unanswered.len() && alike {
            for (number, content) in unanswered.into_iter().zip(phoneless) {
                out.settle(number, content);
            }
        } else {
            out.phoneless = phoneless.len();
        }
        Ok(out)
    }
}

impl Answered {
    /// Records what `content` says for `number`; an unreadable entry or an error of another
    /// code leaves it unanswered.
    fn settle(&mut self, number: E164, content: Content) {
        let answer = match content {
            Content::Info(info) => NumberAnswer::Found(info),
            Content::Error { code: 3, .. } => NumberAnswer::NotFound,
            Content::Error { code: 1, .. } => NumberAnswer::Rejected,
            Content::Error { code, message } => {
                self.unreadable
                    .push(format!("{number}: error {code} ({message})"));
                return;
            }
            Content::Unreadable(why) => {
                self.unreadable.push(format!("{number}: {why}"));
                return;
            }
        };
        self.answers.push((number, answer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: E164 = E164(79161234567);
    const B: E164 = E164(79031234567);
    const C: E164 = E164(79261234567);

    fn mts() -> OperatorInfo {
        OperatorInfo::example()
    }

    fn raw(status: u16, content_type: &str, body: impl AsRef<[u8]>) -> RawAnswer {
        RawAnswer {
            status,
            content_type: Some(content_type.to_string()).filter(|c| !c.is_empty()),
            body: body.as_ref().to_vec(),
        }
    }

    fn json(body: &str) -> RawAnswer {
        raw(200, "application/json; charset=utf-8", body)
    }

    fn code(result: Result<Answered, ProviderError>) -> Option<i64> {
        match result {
            Err(ProviderError::Api { code, .. }) => Some(code.number()),
            _ => None,
        }
    }

    #[test]
    fn provider_errors_in_every_form_and_at_any_status() {
        let cases: &[(u16, &str, i64)] = &[
            (200, "ERROR = 3 (operator not found)", 3),
            (200, "ERROR = 2 (authorise error)", 2),
            (200, "ERROR = 4 (IP address is temporarily blocked)", 4),
            (200, "ERROR = 9 (duplicate request, wait a minute)", 9),
            (200, "ERROR = authorise error", 2),
            (200, "authorise error", 2),
            (200, "Неверный логин или пароль", 2),
            (200, "0,-1", 1),
            (200, "0,-2", 2),
            (200, "0,-9", 9),
            (
                200,
                "<result>\n<error>parameters error</error>\n<error_code>1</error_code>\n</result>",
                1,
            ),
            (
                200,
                "<result><error>authorise error</error><error_code>2</error_code></result>",
                2,
            ),
            (200, "<result><error>authorise error</error></result>", 2),
            (200, r#"{"error": "parameters error", "error_code": 1}"#, 1),
            (200, r#"{"error": "blocked", "error_code": "4"}"#, 4),
            (200, r#"{"error": "authorise error"}"#, 2),
            (200, r#"{"error": "ошибка авторизации"}"#, 2),
            (200, r#"{"error": "too many requests"}"#, 9),
            (200, r#"{"error": "operator not found"}"#, 3),
            (401, r#"{"error": "authorise error", "error_code": 2}"#, 2),
            (403, "ERROR = 2 (authorise error)", 2),
            (500, r#"{"error": "too many requests", "error_code": 9}"#, 9),
            // An entry's error 2, 4 or 9 concerns the whole request.
            (
                200,
                r#"[{"phone": "79161234567", "error": "authorise error"}]"#,
                2,
            ),
        ];
        for (status, body, want) in cases {
            let got = read(&raw(*status, "text/plain", body), &[A, B]);
            assert_eq!(code(got), Some(*want), "{status} {body}");
        }
    }

    #[test]
    fn statuses_and_bodies_that_are_no_answer() {
        let html = "<!DOCTYPE html><html><head><title>Login</title></head><body>login or password</body></html>";
        let cases: &[(u16, &str, &str)] = &[
            (200, "", "malformed"),
            (200, html, "malformed"),
            (
                200,
                r#"[{"phone": "79161234567", "country": "Росс"#,
                "malformed",
            ),
            (200, r#"{"status": "ok"}"#, "malformed"),
            (200, r#"{"error": "something odd"}"#, "malformed"),
            (200, "Россия,МТС", "malformed"),
            (503, "503 Service Temporarily Unavailable", "http_503"),
            (401, html, "http_401"),
            (200, "<html>oops</html>", "malformed"),
        ];
        for (status, body, label) in cases {
            let got = read(&raw(*status, "text/html", body), &[A]);
            let label_got = got.as_ref().map_err(|e| e.label());
            assert_eq!(
                label_got.err().as_deref(),
                Some(*label),
                "{status} {body}: {got:?}"
            );
        }
        let unauthorized = ProviderError::Http { status: 401 };
        assert_eq!(unauthorized.class(), crate::provider::ErrorClass::Auth);
    }

    #[test]
    fn one_answer_in_every_spelling() {
        let bodies: &[&str] = &[
            "country = Россия, operator = МТС, region = Москва, mcc = 250, mnc = 01, tz = 3",
            "Россия,МТС,Москва,250,01,3",
            "<info>\n<country>Россия</country>\n<operator>МТС</operator>\n<region>Москва</region>\n<mcc>250</mcc>\n<mnc>01</mnc>\n<tz>3</tz>\n</info>",
            r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": "250", "mnc": "01", "tz": "3"}"#,
            r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": 1, "tz": 3}"#,
            r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": "UTC+3"}"#,
            r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": "+03:00"}"#,
            r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": "MSK"}"#,
            r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3, "error": null}"#,
            r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3, "error": ""}"#,
            r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3, "error_code": 0}"#,
            "{\"country\": \"Россия\", \"operator\": \"МТС\", \"region\": \"Москва\", \"mcc\": 250, \"mnc\": \"01\", \"tz\": 3}\n<!-- 0.012s -->",
            r#"[{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": "250", "mnc": "01", "tz": "3"}]"#,
        ];
        for body in bodies {
            let got = read(&json(body), &[A]).unwrap();
            assert_eq!(got.answers, vec![(A, NumberAnswer::Found(mts()))], "{body}");
            assert!(got.unread.is_empty(), "{body}: {:?}", got.unread);
        }
    }

    #[test]
    fn lists_in_every_shape_match_by_digits_not_position() {
        let bodies: &[&str] = &[
            "phone = 79031234567, ERROR = 3 (operator not found)\nphone = +79161234567, country = Россия, operator = МТС, region = Москва, mcc = 250, mnc = 01, tz = 3",
            "79031234567,0,-3\n79161234567,Россия,МТС,Москва,250,01,3",
            "<list><info><phone>79031234567</phone><error>operator not found</error><error_code>3</error_code></info><info><phone>79161234567</phone><country>Россия</country><operator>МТС</operator><region>Москва</region><mcc>250</mcc><mnc>01</mnc><tz>3</tz></info></list>",
            r#"[{"phone": "79031234567", "error": "operator not found", "error_code": 3}, {"phone": "+79161234567", "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": "250", "mnc": "01", "tz": "3"}]"#,
            r#"{"phones": [{"phone": 79031234567, "error_code": 3}, {"phone": 79161234567, "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}]}"#,
            r#"{"79161234567": {"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}, "79031234567": {"error": "operator not found"}}"#,
            // Not found as an entry with no operator, MCC or MNC; the phone echoed nationally.
            r#"[{"phone": "89031234567", "country": "", "operator": "", "region": "", "mcc": "", "mnc": "", "tz": ""}, {"phone": "8 (916) 123-45-67", "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}]"#,
            r#"[{"phone": "79031234567", "country": "Россия", "operator": null, "mcc": null, "mnc": null}, {"phone": "79161234567", "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}]"#,
        ];
        for body in bodies {
            let mut got = read(&json(body), &[A, B, C]).unwrap().answers;
            got.sort_by_key(|(n, _)| *n);
            // The third number has no entry: it is unanswered, not "not found".
            let want = vec![(B, NumberAnswer::NotFound), (A, NumberAnswer::Found(mts()))];
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn an_unreadable_entry_costs_only_its_own_number() {
        let bodies: &[&str] = &[
            r#"[{"phone": "79031234567", "error": "something odd"}, {"phone": "79161234567", "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}]"#,
            r#"[{"phone": "79031234567"}, {"phone": "79161234567", "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}]"#,
            r#"["79031234567: no data", {"phone": "79161234567", "country": "Россия", "operator": "МТС", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}]"#,
            "79031234567,Россия\n79161234567,Россия,МТС,Москва,250,01,3",
        ];
        for body in bodies {
            let got = read(&json(body), &[A, B]).unwrap();
            assert_eq!(got.answers, vec![(A, NumberAnswer::Found(mts()))], "{body}");
            assert_eq!(got.unreadable.len(), 1, "{body}");
            assert_eq!(got.phoneless, 0, "{body}");
        }
    }

    #[test]
    fn entries_without_a_phone_are_paired_only_when_the_list_proves_it() {
        let entry = |operator: &str| {
            format!(
                r#"{{"country": "Россия", "operator": "{operator}", "region": "Москва", "mcc": 250, "mnc": "01", "tz": 3}}"#
            )
        };
        // Two different answers: which is whose cannot be known.
        let differ = format!("[{}, {}]", entry("МТС"), entry("Билайн"));
        let got = read(&json(&differ), &[A, B]).unwrap();
        assert!(got.answers.is_empty());
        assert_eq!(got.phoneless, 2);
        // One alike answer per number: whoever is whose, each has it.
        let alike = format!("[{}, {}]", entry("МТС"), entry("МТС"));
        let got = read(&json(&alike), &[A, B]).unwrap();
        assert_eq!(got.answers.len(), 2);
        assert_eq!(got.phoneless, 0);
        // Alike, but fewer than the numbers: one was left out, which one is unknown.
        let got = read(&json(&alike), &[A, B, C]).unwrap();
        assert!(got.answers.is_empty());
        assert_eq!(got.phoneless, 2);
    }

    #[test]
    fn charsets_and_mis_decoded_text() {
        let body = "{\"country\": \"Россия\", \"operator\": \"МТС\", \"region\": \"Москва\", \"mcc\": 250, \"mnc\": \"01\", \"tz\": 3}";
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(body);
        for content_type in [
            "application/json",
            "application/json; charset=windows-1251",
            "application/json; charset=utf-8",
        ] {
            let got = read(&raw(200, content_type, &cp1251), &[A]).unwrap();
            assert_eq!(
                got.answers,
                vec![(A, NumberAnswer::Found(mts()))],
                "{content_type}"
            );
        }
        // UTF-8 bytes once read as windows-1251 and sent on as UTF-8: never an answer.
        let mangled = encoding_rs::WINDOWS_1251
            .decode(body.as_bytes())
            .0
            .into_owned();
        let got = read(&json(&mangled), &[A]);
        assert!(matches!(got, Err(ProviderError::Malformed(_))), "{got:?}");
    }

    #[test]
    fn values_that_cannot_be_read_are_reported() {
        let body = r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": "RU", "mnc": "01", "tz": "Europe/Moscow"}"#;
        let got = read(&json(body), &[A]).unwrap();
        let NumberAnswer::Found(info) = &got.answers[0].1 else {
            panic!("{got:?}");
        };
        assert_eq!((info.mcc, info.tz), (None, None));
        let unread: Vec<(&str, &str)> = got
            .unread
            .iter()
            .map(|u| (u.field, u.value.as_str()))
            .collect();
        assert_eq!(unread, [("mcc", "RU"), ("tz", "Europe/Moscow")]);
    }

    #[test]
    fn values_with_commas_survive_text_and_csv() {
        let region = |body: &str| match parse(body).unwrap().1 {
            Reply::Entries(e) => match &e[0].content {
                Content::Info(info) => info.region.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        let text = "country = Россия, operator = МТС, region = Москва и Московская область, г. Зеленоград, mcc = 250, mnc = 01, tz = 3";
        assert_eq!(region(text), "Москва и Московская область, г. Зеленоград");
        assert_eq!(
            region("Россия,МТС,Москва, Зеленоград,250,01,3"),
            "Москва, Зеленоград"
        );
    }

    #[test]
    fn single_number_errors_become_its_answer_but_list_errors_do_not() {
        let not_found = json(r#"{"error": "operator not found", "error_code": 3}"#);
        let params = json(r#"{"error": "parameters error", "error_code": 1}"#);
        let answers = |r: &RawAnswer, sent: &[E164]| read(r, sent).map(|a| a.answers);
        assert_eq!(
            answers(&not_found, &[A]).unwrap(),
            vec![(A, NumberAnswer::NotFound)]
        );
        assert_eq!(
            answers(&params, &[A]).unwrap(),
            vec![(A, NumberAnswer::Rejected)]
        );
        assert_eq!(code(read(&not_found, &[A, B])), Some(3));
        assert_eq!(code(read(&params, &[A, B])), Some(1));
    }
}
