//! `fmt=3`: a JSON object for one number, an array (or an object wrapping one) for a list, or
//! `{"error", "error_code"}`.

use super::fields::{code_from_message, info_from_fields};
use super::{malformed, Entry, Reply};
use crate::provider::ProviderError;

pub(super) fn parse_json(body: &str) -> Result<Reply, ProviderError> {
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
