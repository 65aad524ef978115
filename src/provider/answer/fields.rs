//! Field values as the provider writes them, whatever the format: text or numbers, `mnc` with
//! its leading zeros, `tz` in its several spellings, error texts without a code.

use crate::provider::OperatorInfo;

pub(super) fn info_from_fields(
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
pub(super) fn normalize_mnc(m: &str) -> String {
    if m.len() == 1 && m.as_bytes()[0].is_ascii_digit() {
        format!("0{m}")
    } else {
        m.to_string()
    }
}

/// `3`, `+3`, `-2`, `UTC+3`, `GMT+03:00`, `3.0` -> hours from UTC.
pub(super) fn parse_tz(t: &str) -> Option<i8> {
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
pub(super) fn code_from_message(message: &str) -> Option<i64> {
    let m = message.to_lowercase();
    if m.contains("not found") {
        Some(3)
    } else if m.contains("parameter") {
        Some(1)
    } else {
        None
    }
}
