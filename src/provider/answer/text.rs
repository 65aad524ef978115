//! The line formats: `fmt=0` (`country = ..., operator = ...` or `ERROR = N (...)`) and `fmt=1`
//! (comma-separated values, `0,-N` for an error), one line per number.

use std::collections::HashMap;

use super::fields::info_from_fields;
use super::{malformed, Entry, Reply};
use crate::normalize::E164;
use crate::provider::ProviderError;

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

pub(super) fn parse_text(body: &str) -> Result<Reply, ProviderError> {
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

pub(super) fn parse_csv(body: &str) -> Result<Reply, ProviderError> {
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
