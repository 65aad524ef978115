//! `fmt=2`: `<info>` blocks (in a `<list>` for several numbers), or `<result>` with `<error>`
//! and `<error_code>`.

use super::fields::{code_from_message, info_from_fields};
use super::{malformed, Entry, Reply};
use crate::provider::ProviderError;

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
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

pub(super) fn parse_xml(body: &str) -> Result<Reply, ProviderError> {
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
