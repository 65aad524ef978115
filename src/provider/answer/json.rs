//! `fmt=3`: a JSON object for one number or a whole-request error; for a list, an array, an
//! object wrapping an array (`{"phones": [...]}`) or an object keyed by phone. Whatever follows
//! the JSON value (an HTML comment a proxy appended) is ignored.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{malformed, Record, KEYS};
use crate::provider::ProviderError;

/// The records of a JSON body.
pub(super) fn records(body: &str) -> Result<Vec<Record>, ProviderError> {
    let value = match serde_json::Deserializer::from_str(body)
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(value)) => value,
        Some(Err(e)) => return Err(ProviderError::Malformed(format!("JSON: {e}"))),
        None => return Err(malformed("no JSON value", body)),
    };
    match value {
        Value::Array(items) => Ok(items.iter().map(|v| record(v, None)).collect()),
        Value::Object(map) if KEYS.iter().any(|k| map.contains_key(*k)) => {
            Ok(vec![record(&Value::Object(map), None)])
        }
        Value::Object(map) => list_in_object(&map).ok_or_else(|| malformed("no list", body)),
        _ => Err(malformed("not a JSON object or array", body)),
    }
}

/// A list wrapped in an object (`{"phones": [...]}`) or keyed by phone (`{"7916...": {...}}`).
fn list_in_object(map: &Map<String, Value>) -> Option<Vec<Record>> {
    if let Some(items) = map.values().find_map(Value::as_array) {
        return Some(items.iter().map(|v| record(v, None)).collect());
    }
    let keyed = map.keys().all(|k| {
        k.trim_start_matches('+')
            .bytes()
            .all(|b| b.is_ascii_digit())
    });
    (keyed && !map.is_empty()).then(|| map.iter().map(|(k, v)| record(v, Some(k))).collect())
}

/// One object's values as text; `phone` from the key it is listed under, if it has none.
fn record(value: &Value, key: Option<&str>) -> Record {
    let Value::Object(map) = value else {
        let shown: String = value.to_string().chars().take(60).collect();
        return Err(format!("an entry that is not an object: `{shown}`"));
    };
    let mut record: HashMap<String, String> = map
        .iter()
        .filter_map(|(k, v)| Some((k.to_lowercase(), text(v)?)))
        .collect();
    if let Some(key) = key {
        record
            .entry("phone".into())
            .or_insert_with(|| key.to_string());
    }
    Ok(record)
}

/// A value as text: strings as they are, numbers as written; `null` is absent.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}
