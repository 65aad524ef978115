//! The sandbox's answers as text: in each `fmt` the provider's page documents, and in each
//! [`Dialect`]'s deviation from it.
//!
//! Contract: [`error`] renders a whole-request error and [`items`] the answers to a request;
//! the client's parser reads back everything rendered here, in every dialect (tested below
//! and, through the binary, in `tests/it/dialects.rs`).

use serde_json::{json, Map, Value};

use super::data::mix;
use crate::config::Dialect;
use crate::normalize::E164;
use crate::provider::answer::Fmt;
use crate::provider::OperatorInfo;

/// One number's answer as the sandbox renders it: `info` is `None` for "operator not found".
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub number: E164,
    /// The number as the request spelled it.
    pub phone: String,
    pub info: Option<OperatorInfo>,
}

/// The error the sandbox gives a number it has no operator for.
pub const NOT_FOUND: (i64, &str) = (3, "operator not found");

/// An error's text in Russian, as [`Dialect::RussianErrors`] words it.
fn russian(code: i64) -> &'static str {
    match code {
        1 => "ошибка в параметрах",
        2 => "неверный логин или пароль",
        3 => "оператор не найден",
        4 => "IP-адрес временно заблокирован",
        _ => "слишком много запросов, подождите минуту",
    }
}

/// How `dialect` words an error: its message, and whether the code goes with it.
fn wording(dialect: Dialect, code: i64, message: &str) -> (String, bool) {
    match dialect {
        Dialect::RussianErrors => (russian(code).to_string(), false),
        Dialect::ErrorCodeless => (message.to_string(), false),
        Dialect::NotFoundText if code == NOT_FOUND.0 => (message.to_string(), false),
        _ => (message.to_string(), true),
    }
}

/// Renders a whole-request error in `fmt`, as `dialect` words it.
pub fn error(fmt: Fmt, dialect: Dialect, code: i64, message: &str) -> String {
    let (message, coded) = wording(dialect, code, message);
    match fmt {
        Fmt::Text if coded => format!("ERROR = {code} ({message})"),
        Fmt::Text => format!("ERROR = {message}"),
        Fmt::Csv => format!("0,-{code}"),
        Fmt::Xml => {
            let code = coded.then(|| format!("<error_code>{code}</error_code>\n"));
            let message = xml_escape(&message);
            format!(
                "<result>\n<error>{message}</error>\n{}</result>",
                code.unwrap_or_default()
            )
        }
        Fmt::Json if coded => json!({ "error": message, "error_code": code }).to_string(),
        Fmt::Json => json!({ "error": message }).to_string(),
    }
}

/// Renders the answers to one request. `list` (several numbers were asked) adds `phone` to
/// each entry (unless the dialect leaves it out) and wraps the entries as the format's list.
pub fn items(fmt: Fmt, dialect: Dialect, items: &[Item], list: bool) -> String {
    let shown = items
        .iter()
        .filter(|item| !(list && dialect == Dialect::NotFoundOmitted && item.info.is_none()));
    let with_phone = list && dialect != Dialect::Phoneless;
    match fmt {
        Fmt::Json => json_items(dialect, shown, list, with_phone),
        Fmt::Xml => {
            let entries: String = shown.map(|i| xml_entry(i, with_phone)).collect();
            if list {
                format!("<list>{entries}</list>")
            } else {
                entries
            }
        }
        Fmt::Text | Fmt::Csv => shown
            .map(|i| line_entry(fmt, i, with_phone))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The names of an answer's six fields, in the page's order.
const FIELD_NAMES: [&str; 6] = ["country", "operator", "region", "mcc", "mnc", "tz"];

/// The six fields of an answer, as text, in the page's order.
fn fields(info: &OperatorInfo) -> [(&'static str, String); 6] {
    let text = |v: Option<String>| v.unwrap_or_default();
    let values = [
        info.country.clone(),
        info.operator.clone(),
        info.region.clone(),
        text(info.mcc.map(|m| m.to_string())),
        info.mnc.clone(),
        text(info.tz.map(|t| t.to_string())),
    ];
    let mut values = values.into_iter();
    FIELD_NAMES.map(|name| (name, values.next().unwrap_or_default()))
}

/// The number as `dialect` echoes it.
fn echoed_phone(dialect: Dialect, item: &Item) -> Value {
    let digits = item.number.to_string();
    match dialect {
        Dialect::Numbers => json!(item.number.0),
        Dialect::PhoneFormatted => match digits.strip_prefix('7') {
            Some(n) if n.len() == 10 => {
                json!(format!(
                    "8 ({}) {}-{}-{}",
                    &n[..3],
                    &n[3..6],
                    &n[6..8],
                    &n[8..]
                ))
            }
            _ => json!(format!("+{digits}")),
        },
        _ => json!(item.phone),
    }
}

/// A found answer's value as `dialect` writes it: text, or a number in [`Dialect::Numbers`];
/// `tz` in one of several spellings in [`Dialect::TzSpellings`].
fn json_value(dialect: Dialect, key: &str, value: String, number: E164) -> Value {
    let as_number = value.parse::<i64>().ok().filter(|_| !value.is_empty());
    match (dialect, key, as_number) {
        (Dialect::Numbers, "mcc" | "mnc" | "tz", Some(n)) => json!(n),
        (Dialect::TzSpellings, "tz", Some(t)) => json!(match mix(number.0) % 5 {
            0 => format!("{t:+}"),
            1 => format!("UTC{t:+}"),
            2 => format!("{t:+03}:00"),
            3 => format!("GMT{t:+}"),
            _ => format!("MSK{:+}", t - 3),
        }),
        _ => json!(value),
    }
}

fn json_entry(dialect: Dialect, item: &Item, with_phone: bool) -> Value {
    if dialect == Dialect::UnreadableEntry && with_phone && mix(item.number.0).is_multiple_of(3) {
        return json!(format!("{}: no data", item.phone));
    }
    let mut obj = Map::new();
    if with_phone {
        obj.insert("phone".into(), echoed_phone(dialect, item));
    }
    match (&item.info, dialect) {
        (Some(info), _) => {
            for (key, value) in fields(info) {
                obj.insert(key.into(), json_value(dialect, key, value, item.number));
            }
            if dialect == Dialect::SuccessErrorFields {
                let (key, value) = match mix(item.number.0) % 3 {
                    0 => ("error", Value::Null),
                    1 => ("error", json!("")),
                    _ => ("error_code", json!(0)),
                };
                obj.insert(key.into(), value);
            }
        }
        (None, Dialect::NotFoundEmpty) => {
            for key in FIELD_NAMES {
                obj.insert(key.into(), json!(""));
            }
        }
        (None, _) => {
            let (code, message) = NOT_FOUND;
            let (message, coded) = wording(dialect, code, message);
            obj.insert("error".into(), json!(message));
            if coded {
                obj.insert("error_code".into(), json!(code));
            }
        }
    }
    Value::Object(obj)
}

fn json_items<'a>(
    dialect: Dialect,
    items: impl Iterator<Item = &'a Item>,
    list: bool,
    with_phone: bool,
) -> String {
    let items: Vec<&Item> = items.collect();
    let entries = || items.iter().map(|i| json_entry(dialect, i, with_phone));
    let value = match (list, dialect) {
        (false, _) => entries().next().unwrap_or(Value::Null),
        (true, Dialect::WrappedList) => json!({ "phones": entries().collect::<Vec<_>>() }),
        (true, Dialect::KeyedList) => Value::Object(
            items
                .iter()
                .map(|i| (i.phone.clone(), json_entry(dialect, i, false)))
                .collect(),
        ),
        (true, _) => Value::Array(entries().collect()),
    };
    value.to_string()
}

/// One entry of `fmt=0` or `fmt=1`.
fn line_entry(fmt: Fmt, item: &Item, with_phone: bool) -> String {
    let (code, message) = NOT_FOUND;
    let (body, phone) = match (fmt, &item.info) {
        (Fmt::Text, Some(info)) => (
            fields(info).map(|(k, v)| format!("{k} = {v}")).join(", "),
            format!("phone = {}, ", item.phone),
        ),
        (Fmt::Text, None) => (
            format!("ERROR = {code} ({message})"),
            format!("phone = {}, ", item.phone),
        ),
        (_, Some(info)) => (
            fields(info).map(|(_, v)| v).join(","),
            format!("{},", item.phone),
        ),
        (_, None) => (format!("0,-{code}"), format!("{},", item.phone)),
    };
    match with_phone {
        true => phone + &body,
        false => body,
    }
}

fn xml_entry(item: &Item, with_phone: bool) -> String {
    let mut out = String::from("<info>");
    if with_phone {
        out.push_str(&format!("<phone>{}</phone>", xml_escape(&item.phone)));
    }
    let (code, message) = NOT_FOUND;
    let tags: Vec<(&str, String)> = match &item.info {
        Some(info) => fields(info).into(),
        None => vec![("error", message.into()), ("error_code", code.to_string())],
    };
    for (tag, value) in tags {
        out.push_str(&format!("<{tag}>{}</{tag}>", xml_escape(&value)));
    }
    out + "</info>"
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::answer::{parse, Content, Reply};
    use crate::provider::NumberAnswer;

    fn items_of(numbers: &[u64]) -> Vec<Item> {
        numbers
            .iter()
            .map(|n| Item {
                number: E164(*n),
                phone: n.to_string(),
                info: super::super::operator_of(E164(*n), 30),
            })
            .collect()
    }

    #[test]
    fn every_format_is_read_back_as_rendered() {
        let list = items_of(&[79161234567, 79031234567, 79261234567, 77011234567]);
        for fmt in [Fmt::Text, Fmt::Csv, Fmt::Xml, Fmt::Json] {
            let (sniffed, reply) = parse(&items(fmt, Dialect::Documented, &list, true)).unwrap();
            assert_eq!(sniffed, fmt);
            let Reply::Entries(entries) = reply else {
                panic!("{fmt:?}: {reply:?}");
            };
            assert_eq!(entries.len(), list.len(), "{fmt:?}");
            for (entry, item) in entries.iter().zip(&list) {
                assert_eq!(entry.phone.as_deref(), Some(item.phone.as_str()), "{fmt:?}");
                match (&entry.content, &item.info) {
                    (Content::Info(got), Some(want)) => assert_eq!(got, want, "{fmt:?}"),
                    (Content::Error { code: 3, .. }, None) => {}
                    (got, want) => panic!("{fmt:?}: {got:?} for {want:?}"),
                }
            }
            for (code, message) in [(9, "limit"), (2, "authorise error")] {
                let (_, reply) = parse(&error(fmt, Dialect::Documented, code, message)).unwrap();
                assert!(
                    matches!(reply, Reply::Error { code: c, .. } if c == code),
                    "{fmt:?}"
                );
            }
        }
    }

    #[test]
    fn every_json_dialect_is_read_back_as_the_documented_one() {
        let numbers: Vec<u64> = (0..12).map(|i| 79161234560 + i * 1_000_003).collect();
        let list = items_of(&numbers);
        let sent: Vec<E164> = list.iter().map(|i| i.number).collect();
        let read = |dialect: Dialect, items: &[Item], list: bool| {
            let sent: Vec<E164> = items.iter().map(|i| i.number).collect();
            let body = super::items(Fmt::Json, dialect, items, list);
            crate::provider::answer::parse(&body)
                .unwrap()
                .1
                .match_to(&sent)
                .unwrap()
        };
        let want = read(Dialect::Documented, &list, true).answers;
        assert_eq!(want.len(), sent.len());
        assert!(want.iter().any(|(_, a)| *a == NumberAnswer::NotFound));
        for dialect in Dialect::ALL {
            let got = read(dialect, &list, true);
            match dialect {
                Dialect::Phoneless => assert_eq!(got.phoneless, list.len(), "{dialect:?}"),
                Dialect::NotFoundOmitted => {
                    let found: Vec<_> = want
                        .iter()
                        .filter(|(_, a)| *a != NumberAnswer::NotFound)
                        .cloned()
                        .collect();
                    assert_eq!(got.answers, found, "{dialect:?}");
                }
                Dialect::UnreadableEntry => {
                    assert!(!got.unreadable.is_empty(), "{dialect:?}");
                    assert!(got.answers.iter().all(|a| want.contains(a)), "{dialect:?}");
                }
                _ => {
                    let mut got = got.answers;
                    got.sort_by_key(|(n, _)| sent.iter().position(|s| s == n));
                    assert_eq!(got, want, "{dialect:?}");
                }
            }
            // One number at a time, every dialect reads as the documented one.
            for item in list.iter().filter(|i| i.info.is_some()) {
                let one = std::slice::from_ref(item);
                assert_eq!(
                    read(dialect, one, false),
                    read(Dialect::Documented, one, false),
                    "{dialect:?}"
                );
            }
        }
    }
}
