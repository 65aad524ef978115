//! The line formats, one line per number: `fmt=0` (`country = ..., operator = ...`,
//! `ERROR = N (...)`, also a bare error text) and `fmt=1` (comma-separated values in the page's
//! order, `0,-N` for an error), each optionally led by the number.

use std::collections::HashMap;

use super::{malformed, Record};
use crate::normalize::E164;
use crate::provider::ProviderError;

fn lines(body: &str) -> impl Iterator<Item = &str> {
    body.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// The records of a `fmt=0` body.
pub(super) fn text_records(body: &str) -> Vec<Record> {
    lines(body).map(text_record).collect()
}

/// The records of a `fmt=1` body: not one when no line has the shape of an entry (a page
/// of prose with a comma in it is no answer).
pub(super) fn csv_records(body: &str) -> Result<Vec<Record>, ProviderError> {
    let records: Vec<Record> = lines(body).map(csv_record).collect();
    match records.iter().any(Result::is_ok) {
        true => Ok(records),
        false => Err(malformed("no line has the shape of an answer", body)),
    }
}

const TEXT_KEYS: &[&str] = &[
    "phone", "country", "operator", "region", "mcc", "mnc", "tz", "error",
];

/// `phone = 1, country = A, B, region = C`: split on the known keys only, so values may hold
/// commas. `ERROR = 3 (text)` gives `error_code` 3 and `error` "text"; a line without any key
/// is an error text.
fn text_record(line: &str) -> Record {
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
    if starts.is_empty() {
        return Ok(HashMap::from([("error".to_string(), line.to_string())]));
    }
    starts.sort();
    let mut record = HashMap::new();
    for (i, (_, value_start, key)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map(|(p, _, _)| *p).unwrap_or(line.len());
        let value = line[*value_start..end].trim().trim_end_matches(',').trim();
        record.insert(key.to_string(), value.to_string());
    }
    if let Some(error) = record.remove("error") {
        let (code, message) = split_error(&error);
        record.insert("error".into(), message);
        record.extend(code.map(|c| ("error_code".to_string(), c)));
    }
    Ok(record)
}

/// `3 (operator not found)` → ("3", "operator not found"); a text without a code stays whole.
fn split_error(value: &str) -> (Option<String>, String) {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit() && c != '-')
        .unwrap_or(value.len());
    let message = value[digits_end..]
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .to_string();
    match digits_end {
        0 => (None, value.to_string()),
        _ => (Some(value[..digits_end].to_string()), message),
    }
}

/// `0,-N` (an error), `PHONE,0,-N`, `country,operator,region,mcc,mnc,tz` or the same led by the
/// number. A comma inside a name lands in the region: mcc, mnc, tz are the last three.
fn csv_record(line: &str) -> Record {
    let fields: Vec<&str> = line.split(',').collect();
    let first_is_phone = fields
        .first()
        .is_some_and(|f| E164::from_digits(f).is_some());
    let (phone, rest) = match first_is_phone {
        true => (Some(fields[0].trim()), &fields[1..]),
        false => (None, &fields[..]),
    };
    let mut record: HashMap<String, String> = HashMap::new();
    record.extend(phone.map(|p| ("phone".to_string(), p.to_string())));
    match rest {
        [zero, code] if zero.trim() == "0" && code.trim().starts_with('-') => {
            record.insert("error_code".into(), code.trim()[1..].to_string());
        }
        [country, operator, region @ .., mcc, mnc, tz] if !region.is_empty() => {
            for (key, value) in [
                ("country", country.to_string()),
                ("operator", operator.to_string()),
                ("region", region.join(",").trim().to_string()),
                ("mcc", mcc.to_string()),
                ("mnc", mnc.to_string()),
                ("tz", tz.to_string()),
            ] {
                record.insert(key.into(), value.trim().to_string());
            }
        }
        _ => return Err(format!("a line of {} values: `{line}`", fields.len())),
    }
    Ok(record)
}
