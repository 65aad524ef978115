//! The sandbox's answers as text, in each `fmt` the provider's page documents.
//!
//! Contract: [`error`] renders a whole-request error and [`items`] the answers for a request,
//! exactly in the shapes of the provider's page (a list adds `phone` to each entry); the
//! client's parser reads back everything rendered here (tested below).

use crate::provider::answer::Fmt;
use crate::provider::OperatorInfo;

/// One number's answer as the sandbox renders it: `info` is `None` for "operator not found".
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The number as the request spelled it.
    pub phone: String,
    pub info: Option<OperatorInfo>,
}

/// The error the sandbox gives a number it has no operator for.
pub const NOT_FOUND: (i64, &str) = (3, "operator not found");

/// Renders a whole-request error in the given format.
pub fn error(fmt: Fmt, code: i64, message: &str) -> String {
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

/// Renders the answers to one request. `list` (several numbers were asked) adds `phone` to
/// each entry and wraps the entries as the format's list.
pub fn items(fmt: Fmt, items: &[Item], list: bool) -> String {
    let entries = items.iter().map(|item| entry(fmt, item, list));
    match fmt {
        Fmt::Json if list => format!("[{}]", entries.collect::<Vec<_>>().join(",")),
        Fmt::Xml if list => format!("<list>{}</list>", entries.collect::<String>()),
        Fmt::Xml | Fmt::Json => entries.collect(),
        Fmt::Text | Fmt::Csv => entries.collect::<Vec<_>>().join("\n"),
    }
}

/// The six fields of an answer, as text, in the page's order.
fn fields(info: &OperatorInfo) -> [(&'static str, String); 6] {
    let text = |v: Option<String>| v.unwrap_or_default();
    [
        ("country", info.country.clone()),
        ("operator", info.operator.clone()),
        ("region", info.region.clone()),
        ("mcc", text(info.mcc.map(|m| m.to_string()))),
        ("mnc", info.mnc.clone()),
        ("tz", text(info.tz.map(|t| t.to_string()))),
    ]
}

/// One entry: a number's fields, or its "not found" error.
fn entry(fmt: Fmt, item: &Item, list: bool) -> String {
    let phone = list.then_some(item.phone.as_str());
    let (code, message) = NOT_FOUND;
    match (fmt, &item.info) {
        (Fmt::Json, info) => {
            let mut obj = serde_json::Map::new();
            if let Some(p) = phone {
                obj.insert("phone".into(), p.into());
            }
            match info {
                Some(info) => obj.extend(fields(info).map(|(k, v)| (k.to_string(), v.into()))),
                None => {
                    obj.insert("error".into(), message.into());
                    obj.insert("error_code".into(), code.into());
                }
            }
            serde_json::Value::Object(obj).to_string()
        }
        (Fmt::Text, info) => {
            let body = match info {
                Some(info) => fields(info)
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => format!("ERROR = {code} ({message})"),
            };
            match phone {
                Some(p) => format!("phone = {p}, {body}"),
                None => body,
            }
        }
        (Fmt::Csv, info) => {
            let body = match info {
                Some(info) => fields(info).map(|(_, v)| v).join(","),
                None => format!("0,-{code}"),
            };
            match phone {
                Some(p) => format!("{p},{body}"),
                None => body,
            }
        }
        (Fmt::Xml, info) => {
            let mut out = String::from("<info>");
            if let Some(p) = phone {
                out.push_str(&format!("<phone>{}</phone>", xml_escape(p)));
            }
            let tags: Vec<(&str, String)> = match info {
                Some(info) => fields(info).into(),
                None => vec![("error", message.into()), ("error_code", code.to_string())],
            };
            for (tag, value) in tags {
                out.push_str(&format!("<{tag}>{}</{tag}>", xml_escape(&value)));
            }
            out + "</info>"
        }
    }
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
    use crate::normalize::E164;
    use crate::provider::answer::{parse, Entry, Reply};

    #[test]
    fn rendered_answers_parse_back_in_every_format() {
        let mts = OperatorInfo::example();
        let list = [
            Item {
                phone: "79161234567".into(),
                info: Some(mts.clone()),
            },
            Item {
                phone: "79031234567".into(),
                info: None,
            },
        ];
        for fmt in [Fmt::Text, Fmt::Csv, Fmt::Xml, Fmt::Json] {
            // fmt=1 carries error codes without their text.
            let message = if fmt == Fmt::Csv { "" } else { NOT_FOUND.1 };
            let want = vec![
                Entry {
                    phone: Some("79161234567".into()),
                    result: Ok(mts.clone()),
                },
                Entry {
                    phone: Some("79031234567".into()),
                    result: Err((3, message.into())),
                },
            ];
            let got = parse(fmt, &items(fmt, &list, true));
            assert_eq!(got.unwrap(), Reply::Entries(want), "{fmt:?}");
            let single = parse(fmt, &items(fmt, &list[..1], false));
            let want = Reply::Entries(vec![Entry {
                phone: None,
                result: Ok(mts.clone()),
            }]);
            assert_eq!(single.unwrap(), want, "{fmt:?}");
            let limit = parse(fmt, &error(fmt, 9, "limit")).unwrap();
            let label = limit.match_to(&[E164(79161234567)]).unwrap_err().label();
            assert_eq!(label, "api_9", "{fmt:?}");
        }
    }
}
