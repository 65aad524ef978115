//! Rates (`100/60s`) and durations (`60s`, `30d`) as a job file writes them.
//!
//! Contract: both are parsed while the job file is deserialized, so a bad value is refused by
//! serde with the key path it sits under; a [`Rate`] never has a zero count or a zero window.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// A limit of `count` events per sliding `window`, written `100/60s` in a job file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed in one window.
    pub count: NonZeroU32,
    /// The sliding window's length, never zero.
    pub window: Duration,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (count, window) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a rate: write COUNT/WINDOW, e.g. `100/60s`"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: `{count}` is not a whole number"))?;
        let count =
            NonZeroU32::new(count).ok_or_else(|| format!("`{s}`: the count must be > 0"))?;
        let window = parse_duration(window.trim())?;
        if window.is_zero() {
            return Err(format!("`{s}`: the window must be longer than zero"));
        }
        Ok(Rate { count, window })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime::format_duration(self.window)
        )
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(D::Error::custom)
    }
}

/// Parses `60s`, `500ms`, `30d`, `1h 30m` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); e.g. `60s`, `30d`"))
}

/// Reads a duration written as [`parse_duration`] reads it, for `#[serde(deserialize_with)]`.
pub(super) fn deserialize_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(deserializer)?).map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_refuse() {
        let cases: &[(&str, Option<(u32, u64)>)] = &[
            ("100/60s", Some((100, 60_000))),
            ("20/2s", Some((20, 2_000))),
            ("3/1m", Some((3, 60_000))),
            ("0/60s", None),
            ("100", None),
            ("x/60s", None),
            ("10/0s", None),
            ("10/forever", None),
        ];
        for (text, want) in cases {
            let got = text
                .parse::<Rate>()
                .ok()
                .map(|r| (r.count.get(), r.window.as_millis() as u64));
            assert_eq!(got, *want, "{text}");
        }
    }
}
