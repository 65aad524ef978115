//! The wire format of `get_operator` answers, both ways: parsing (for the client) and rendering
//! (for the sandbox), for every `fmt` (0 text, 1 comma-separated, 2 XML, 3 JSON).
//!
//! Contract: [`parse`] turns a body into a [`Reply`] without knowing what was asked;
//! [`Reply::match_to`] then pairs entries with the numbers sent, by digits and never by
//! position, so a number without an entry stays unanswered. Values may be strings or numbers;
//! `mnc` keeps its leading zeros; anything that is neither an error nor an answer is
//! [`ProviderError::Malformed`].

use std::collections::HashMap;

use super::{ApiCode, NumberAnswer, OperatorInfo, ProviderError};
use crate::normalize::E164;

/// The provider's `fmt` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Text = 0,
    Csv = 1,
    Xml = 2,
    Json = 3,
}

impl Fmt {
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
    pub phone: Option<String>,
    pub result: Result<OperatorInfo, (i64, String)>,
}

/// A parsed answer body.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An error for the whole request.
    Error {
        code: i64,
        message: String,
    },
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
        Fmt::Json => parse_json(body),
        Fmt::Text => parse_text(body),
        Fmt::Csv => parse_csv(body),
        Fmt::Xml => parse_xml(body),
    }
}

fn malformed(body: &str) -> ProviderError {
    let shown: String = body.chars().take(120).collect();
    ProviderError::Malformed(format!("unexpected answer `{shown}`"))
}

// ---- JSON (fmt=3) ----------------------------------------------------------------------------

fn parse_json(body: &str) -> Result<Reply, ProviderError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| ProviderError::Malformed(format!("JSON: {e}")))?;
    match &value {
        serde_json::Value::Array(items) => Ok(Reply::Entries(
            items
                .iter()
                .map(|v| json_entry(v, body))
                .collect::<Result<_, _>>()?,
        )),
        serde_json::Value::Object(map) => {
            if map.contains_key("error_code") || map.contains_key("error") {
                if map.contains_key("phone") {
                    return Ok(Reply::Entries(vec![json_entry(&value, body)?]));
                }
                let (code, message) = json_error(map).ok_or_else(|| malformed(body))?;
                return Ok(Reply::Error { code, message });
            }
            if map.contains_key("operator")
                || map.contains_key("country")
                || map.contains_key("mcc")
            {
                return Ok(Reply::Entries(vec![json_entry(&value, body)?]));
            }
            // A list wrapped in an object, e.g. {"list": [...]}.
            if let Some(items) = map.values().find_map(|v| v.as_array()) {
                return Ok(Reply::Entries(
                    items
                        .iter()
                        .map(|v| json_entry(v, body))
                        .collect::<Result<_, _>>()?,
                ));
            }
            Err(malformed(body))
        }
        _ => Err(malformed(body)),
    }
}

fn json_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn json_error(map: &serde_json::Map<String, serde_json::Value>) -> Option<(i64, String)> {
    let message = json_text(map.get("error")).unwrap_or_default();
    let code = match json_text(map.get("error_code")) {
        Some(c) => c.trim().parse().ok()?,
        None => code_from_message(&message)?,
    };
    Some((code, message))
}

fn json_entry(v: &serde_json::Value, body: &str) -> Result<Entry, ProviderError> {
    let map = v.as_object().ok_or_else(|| malformed(body))?;
    let phone = json_text(map.get("phone"));
    if map.contains_key("error_code") || map.contains_key("error") {
        let err = json_error(map).ok_or_else(|| malformed(body))?;
        return Ok(Entry {
            phone,
            result: Err(err),
        });
    }
    let field = |k: &str| json_text(map.get(k));
    Ok(Entry {
        phone,
        result: Ok(info_from_fields(
            field("country"),
            field("operator"),
            field("region"),
            field("mcc"),
            field("mnc"),
            field("tz"),
        )),
    })
}

// ---- shared field coercion ------------------------------------------------------------------

fn info_from_fields(
    country: Option<String>,
    operator: Option<String>,
    region: Option<String>,
    mcc: Option<String>,
    mnc: Option<String>,
    tz: Option<String>,
) -> OperatorInfo {
    OperatorInfo {
        country: country.unwrap_or_default().trim().to_string(),
        operator: operator.unwrap_or_default().trim().to_string(),
        region: region.unwrap_or_default().trim().to_string(),
        mcc: mcc.and_then(|m| m.trim().parse().ok()),
        mnc: mnc.map(|m| normalize_mnc(m.trim())).unwrap_or_default(),
        tz: tz.and_then(|t| parse_tz(&t)),
    }
}

/// MNCs are two or three digits; one that arrives as a bare number (`1`) gets its zero back.
fn normalize_mnc(m: &str) -> String {
    if m.len() == 1 && m.as_bytes()[0].is_ascii_digit() {
        format!("0{m}")
    } else {
        m.to_string()
    }
}

/// `3`, `+3`, `-2`, `UTC+3`, `GMT+03:00`, `3.0` -> hours from UTC.
fn parse_tz(t: &str) -> Option<i8> {
    let t = t.trim();
    let t = t
        .strip_prefix("UTC")
        .or_else(|| t.strip_prefix("GMT"))
        .unwrap_or(t)
        .trim();
    if t.is_empty() {
        return None;
    }
    let hours = t.split(':').next()?;
    let value: f32 = hours.trim_start_matches('+').parse().ok()?;
    if !(-12.0..=14.0).contains(&value) {
        return None;
    }
    Some(value.trunc() as i8)
}

/// `operator not found` -> 3, for error texts that come without a code.
fn code_from_message(message: &str) -> Option<i64> {
    let m = message.to_lowercase();
    if m.contains("not found") {
        Some(3)
    } else if m.contains("parameter") {
        Some(1)
    } else {
        None
    }
}

// ---- text (fmt=0) ----------------------------------------------------------------------------

const TEXT_KEYS: &[&str] = &[
    "phone", "country", "operator", "region", "mcc", "mnc", "tz", "error",
];

/// `ERROR = 3 (operator not found)` -> (3, "operator not found").
fn parse_error_text(s: &str) -> Option<(i64, String)> {
    let rest = s.trim();
    let rest = rest
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("error"))
        .map(|_| &rest[5..])?;
    let rest = rest.trim_start().strip_prefix('=')?.trim();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '-')
        .unwrap_or(rest.len());
    let code: i64 = rest[..digits_end].parse().ok()?;
    let message = rest[digits_end..]
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .to_string();
    Some((code, message))
}

/// Splits `phone = 1, country = A, B, region = C` on the known keys only, so values may hold
/// commas.
fn text_fields(line: &str) -> HashMap<&'static str, String> {
    let lower = line.to_ascii_lowercase();
    let mut starts: Vec<(usize, usize, &'static str)> = Vec::new();
    for key in TEXT_KEYS {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(key).map(|p| p + from) {
            from = pos + key.len();
            let at_field_start = pos == 0 || lower[..pos].trim_end().ends_with(',');
            let after = lower[pos + key.len()..].trim_start();
            if at_field_start && after.starts_with('=') {
                let value_start = line.len() - after.len() + 1;
                starts.push((pos, value_start, key));
            }
        }
    }
    starts.sort();
    let mut out = HashMap::new();
    for (i, (_, value_start, key)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map(|(p, _, _)| *p).unwrap_or(line.len());
        let value = line[*value_start..end].trim().trim_end_matches(',').trim();
        out.insert(*key, value.to_string());
    }
    out
}

fn parse_text(body: &str) -> Result<Reply, ProviderError> {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let [only] = lines.as_slice() {
        if let Some((code, message)) = parse_error_text(only) {
            return Ok(Reply::Error { code, message });
        }
    }
    let mut entries = Vec::new();
    for line in lines {
        let mut fields = text_fields(line);
        let phone = fields.remove("phone");
        if let Some(err) = fields.get("error") {
            let err = parse_error_text(&format!("ERROR = {err}")).ok_or_else(|| malformed(line))?;
            entries.push(Entry {
                phone,
                result: Err(err),
            });
            continue;
        }
        if !fields.contains_key("operator") && !fields.contains_key("country") {
            return Err(malformed(line));
        }
        let mut take = |k: &str| fields.remove(k);
        let info = info_from_fields(
            take("country"),
            take("operator"),
            take("region"),
            take("mcc"),
            take("mnc"),
            take("tz"),
        );
        entries.push(Entry {
            phone,
            result: Ok(info),
        });
    }
    Ok(Reply::Entries(entries))
}

// ---- comma-separated (fmt=1) -----------------------------------------------------------------

fn parse_csv(body: &str) -> Result<Reply, ProviderError> {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let csv_error = |fields: &[&str]| -> Option<(i64, String)> {
        match fields {
            [zero, neg] if zero.trim() == "0" && neg.trim().starts_with('-') => {
                neg.trim()[1..].parse().ok().map(|c| (c, String::new()))
            }
            _ => None,
        }
    };
    if let [only] = lines.as_slice() {
        let fields: Vec<&str> = only.split(',').collect();
        if let Some((code, message)) = csv_error(&fields) {
            return Ok(Reply::Error { code, message });
        }
    }
    let mut entries = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let first_is_phone = fields
            .first()
            .is_some_and(|f| E164::from_digits(f).is_some());
        if first_is_phone {
            if let Some(err) = csv_error(&fields[1..]) {
                entries.push(Entry {
                    phone: Some(fields[0].trim().to_string()),
                    result: Err(err),
                });
                continue;
            }
        }
        let (phone, rest) = if first_is_phone && fields.len() >= 7 {
            (Some(fields[0].trim().to_string()), &fields[1..])
        } else {
            (None, &fields[..])
        };
        if rest.len() < 6 {
            return Err(malformed(line));
        }
        // mcc, mnc, tz are the last three; a comma inside a name lands in the region.
        let n = rest.len();
        let s = |v: &str| Some(v.to_string());
        let info = info_from_fields(
            s(rest[0]),
            s(rest[1]),
            s(&rest[2..n - 3].join(",")),
            s(rest[n - 3]),
            s(rest[n - 2]),
            s(rest[n - 1]),
        );
        entries.push(Entry {
            phone,
            result: Ok(info),
        });
    }
    Ok(Reply::Entries(entries))
}

// ---- XML (fmt=2) -----------------------------------------------------------------------------

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The text of the first `<tag>...</tag>` in `s`.
fn xml_tag(s: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = s.find(&open)? + open.len();
    let end = s[start..].find(&close)? + start;
    Some(xml_unescape(s[start..end].trim()))
}

/// Every `<tag>...</tag>` block in `s`.
fn xml_blocks<'a>(s: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = s[from..].find(&open).map(|p| p + from + open.len()) {
        let Some(end) = s[start..].find(&close).map(|p| p + start) else {
            break;
        };
        out.push(&s[start..end]);
        from = end + close.len();
    }
    out
}

fn xml_entry(block: &str) -> Result<Entry, ProviderError> {
    let phone = xml_tag(block, "phone");
    if block.contains("<error") {
        let message = xml_tag(block, "error").unwrap_or_default();
        let code = xml_tag(block, "error_code")
            .and_then(|c| c.parse().ok())
            .or_else(|| code_from_message(&message))
            .ok_or_else(|| malformed(block))?;
        return Ok(Entry {
            phone,
            result: Err((code, message)),
        });
    }
    let t = |k: &str| xml_tag(block, k);
    Ok(Entry {
        phone,
        result: Ok(info_from_fields(
            t("country"),
            t("operator"),
            t("region"),
            t("mcc"),
            t("mnc"),
            t("tz"),
        )),
    })
}

fn parse_xml(body: &str) -> Result<Reply, ProviderError> {
    let infos = xml_blocks(body, "info");
    if infos.is_empty() {
        let result = xml_blocks(body, "result");
        let block = result.first().copied().unwrap_or(body);
        if block.contains("<error") {
            return match xml_entry(block)? {
                Entry {
                    phone: Some(p),
                    result,
                } => Ok(Reply::Entries(vec![Entry {
                    phone: Some(p),
                    result,
                }])),
                Entry {
                    phone: None,
                    result: Err((code, message)),
                } => Ok(Reply::Error { code, message }),
                Entry {
                    phone: None,
                    result: Ok(_),
                } => Err(malformed(body)),
            };
        }
        return Err(malformed(body));
    }
    Ok(Reply::Entries(
        infos.into_iter().map(xml_entry).collect::<Result<_, _>>()?,
    ))
}

// ---- rendering (the sandbox's side) ----------------------------------------------------------

/// Renders a whole-request error in the given format.
pub fn render_error(fmt: Fmt, code: i64, message: &str) -> String {
    match fmt {
        Fmt::Text => format!("ERROR = {code} ({message})"),
        Fmt::Csv => format!("0,-{code}"),
        Fmt::Xml => format!(
            "<result>\n<error>{}</error>\n<error_code>{code}</error_code>\n</result>",
            xml_escape(message)
        ),
        Fmt::Json => serde_json::json!({ "error": message, "error_code": code }).to_string(),
    }
}

/// Renders entries. `list` adds `phone` to each entry and wraps them as the format's list.
pub fn render_entries(fmt: Fmt, entries: &[Entry], list: bool) -> String {
    match fmt {
        Fmt::Json => {
            let items: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let mut obj = serde_json::Map::new();
                    if list {
                        obj.insert("phone".into(), e.phone.clone().unwrap_or_default().into());
                    }
                    match &e.result {
                        Ok(i) => {
                            obj.insert("country".into(), i.country.clone().into());
                            obj.insert("operator".into(), i.operator.clone().into());
                            obj.insert("region".into(), i.region.clone().into());
                            obj.insert("mcc".into(), i.mcc.map(|m| m.to_string()).unwrap_or_default().into());
                            obj.insert("mnc".into(), i.mnc.clone().into());
                            obj.insert("tz".into(), i.tz.map(|t| t.to_string()).unwrap_or_default().into());
                        }
                        Err((code, message)) => {
                            obj.insert("error".into(), message.clone().into());
                            obj.insert("error_code".into(), (*code).into());
                        }
                    }
                    serde_json::Value::Object(obj)
                })
                .collect();
            if list {
                serde_json::Value::Array(items).to_string()
            } else {
                items.into_iter().next().map(|v| v.to_string()).unwrap_or_default()
            }
        }
        Fmt::Text => entries
            .iter()
            .map(|e| {
                let phone = if list { format!("phone = {}, ", e.phone.clone().unwrap_or_default()) } else { String::new() };
                match &e.result {
                    Ok(i) => format!(
                        "{phone}country = {}, operator = {}, region = {}, mcc = {}, mnc = {}, tz = {}",
                        i.country,
                        i.operator,
                        i.region,
                        i.mcc.map(|m| m.to_string()).unwrap_or_default(),
                        i.mnc,
                        i.tz.map(|t| t.to_string()).unwrap_or_default()
                    ),
                    Err((code, message)) => format!("{phone}ERROR = {code} ({message})"),
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Fmt::Csv => entries
            .iter()
            .map(|e| {
                let phone = if list { format!("{},", e.phone.clone().unwrap_or_default()) } else { String::new() };
                match &e.result {
                    Ok(i) => format!(
                        "{phone}{},{},{},{},{},{}",
                        i.country,
                        i.operator,
                        i.region,
                        i.mcc.map(|m| m.to_string()).unwrap_or_default(),
                        i.mnc,
                        i.tz.map(|t| t.to_string()).unwrap_or_default()
                    ),
                    Err((code, _)) => format!("{phone}0,-{code}"),
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Fmt::Xml => {
            let items: Vec<String> = entries
                .iter()
                .map(|e| {
                    let phone = if list { format!("<phone>{}</phone>", xml_escape(e.phone.as_deref().unwrap_or(""))) } else { String::new() };
                    match &e.result {
                        Ok(i) => format!(
                            "<info>{phone}<country>{}</country><operator>{}</operator><region>{}</region><mcc>{}</mcc><mnc>{}</mnc><tz>{}</tz></info>",
                            xml_escape(&i.country),
                            xml_escape(&i.operator),
                            xml_escape(&i.region),
                            i.mcc.map(|m| m.to_string()).unwrap_or_default(),
                            xml_escape(&i.mnc),
                            i.tz.map(|t| t.to_string()).unwrap_or_default()
                        ),
                        Err((code, message)) => format!("<info>{phone}<error>{}</error><error_code>{code}</error_code></info>", xml_escape(message)),
                    }
                })
                .collect();
            if list {
                format!("<list>{}</list>", items.join(""))
            } else {
                items.join("")
            }
        }
    }
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

    #[test]
    fn rendered_answers_parse_back_in_every_format() {
        let list = vec![
            Entry {
                phone: Some("79161234567".into()),
                result: Ok(mts()),
            },
            Entry {
                phone: Some("79031234567".into()),
                result: Err((3, "operator not found".into())),
            },
        ];
        for fmt in [Fmt::Text, Fmt::Csv, Fmt::Xml, Fmt::Json] {
            let mut want = list.clone();
            if fmt == Fmt::Csv {
                // fmt=1 carries error codes without their text.
                want[1].result = Err((3, String::new()));
            }
            assert_eq!(
                entries(parse(fmt, &render_entries(fmt, &list, true))),
                want,
                "{fmt:?}"
            );
            let single = render_entries(fmt, &list[..1], false);
            assert_eq!(
                entries(parse(fmt, &single)),
                vec![Entry {
                    phone: None,
                    result: Ok(mts())
                }],
                "{fmt:?}"
            );
            assert_eq!(
                parse(fmt, &render_error(fmt, 9, "limit"))
                    .unwrap()
                    .match_to(&[E164(79161234567)])
                    .unwrap_err()
                    .label(),
                "api_9",
                "{fmt:?}"
            );
        }
    }
}
