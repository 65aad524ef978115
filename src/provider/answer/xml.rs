//! `fmt=2`: `<info>` blocks (in a `<list>` for several numbers), or `<result>` with `<error>`
//! and `<error_code>`.

use std::collections::HashMap;

use super::{malformed, Record, KEYS};
use crate::provider::ProviderError;

/// The records of an XML body: one per `<info>`, or the `<result>` (or the whole body).
pub(super) fn records(body: &str) -> Result<Vec<Record>, ProviderError> {
    let infos = blocks(body, "info");
    if !infos.is_empty() {
        return Ok(infos.into_iter().map(record).collect());
    }
    let whole = blocks(body, "result").first().copied().unwrap_or(body);
    match record(whole) {
        Ok(r) if !r.is_empty() => Ok(vec![Ok(r)]),
        _ => Err(malformed("XML without <info> or <error>", body)),
    }
}

fn record(block: &str) -> Record {
    let record: HashMap<String, String> = KEYS
        .iter()
        .filter_map(|k| Some((k.to_string(), tag(block, k)?)))
        .collect();
    Ok(record)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of the first `<tag>...</tag>` in `s`.
fn tag(s: &str, tag: &str) -> Option<String> {
    blocks(s, tag).first().map(|t| unescape(t.trim()))
}

/// Every `<tag>...</tag>` block in `s`.
fn blocks<'a>(s: &'a str, tag: &str) -> Vec<&'a str> {
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
