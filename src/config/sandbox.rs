//! The built-in emulator's settings: a job's `[provider.sandbox]` section, or the file given to
//! `phone-enrich sandbox --config`.
//!
//! Contract: read as written (every key optional, defaults are the real provider's limits, the
//! ones the README documents), then checked by the same rules wherever they come from.

use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use super::file::toml_error;
use super::rates::{deserialize_duration, Rate};
use super::validate;

/// How the built-in emulator behaves. Its limits default to the real provider's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// The only login the sandbox accepts.
    pub login: String,
    /// The only password the sandbox accepts.
    pub password: String,
    /// Requests per sliding window per login, past which it answers error 9.
    pub request_limit: Rate,
    /// Identical requests per sliding window per login, past which it answers error 9.
    pub identical_limit: Rate,
    /// If set, also a limit of numbers (not requests) per window per login.
    pub number_limit: Option<Rate>,
    /// Requests at once per login at which the sandbox answers error 9 (the provider: 15).
    pub max_concurrent: usize,
    /// Longest `phone` list accepted; longer lists get error 1.
    pub max_list: usize,
    /// Percentage (0..=100) of numbers for which the operator is "not found".
    pub not_found_percent: u8,
    /// Percentage (0..=100) of numbers the provider rejects with error 1 (a list holding one
    /// gets error 1 as a whole).
    pub reject_percent: u8,
    /// How a not-found number inside a list is answered.
    pub list_not_found: ListNotFound,
    /// Added to every answer.
    #[serde(deserialize_with = "deserialize_duration")]
    pub latency: Duration,
    /// Per-request chances of each injected fault.
    pub faults: Faults,
    /// Seeds the fault draws.
    pub seed: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            login: "sandbox".into(),
            password: "sandbox".into(),
            request_limit: "100/60s".parse().unwrap(),
            identical_limit: "3/60s".parse().unwrap(),
            number_limit: None,
            max_concurrent: 15,
            max_list: 300,
            not_found_percent: 3,
            reject_percent: 0,
            list_not_found: ListNotFound::Entry,
            latency: Duration::from_millis(20),
            faults: Faults::default(),
            seed: 1,
        }
    }
}

impl SandboxConfig {
    /// Parses a standalone sandbox config: the keys of a job's `[provider.sandbox]` section.
    pub fn from_toml(text: &str) -> Result<SandboxConfig> {
        validate::sandbox(toml::from_str(text).map_err(toml_error)?)
    }
}

/// How the sandbox answers a number it has no operator for, inside a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListNotFound {
    /// An entry with `phone`, `error` and `error_code` 3.
    Entry,
    /// No entry at all for that number.
    Omit,
}

/// Fault injection ratios (0.0 ..= 1.0), each drawn independently per request; all 0 by default.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// HTTP 503.
    pub http_5xx: f64,
    /// No answer at all.
    pub hang: f64,
    /// The connection dropped mid-answer.
    pub drop: f64,
    /// A truncated body.
    pub truncate: f64,
    /// Error 4 (IP temporarily blocked).
    pub blocked: f64,
    /// Error 9, as if over a limit.
    pub limited: f64,
}

impl Faults {
    /// Each ratio with its key in `provider.sandbox.faults`.
    pub fn ratios(&self) -> [(&'static str, f64); 6] {
        [
            ("http_5xx", self.http_5xx),
            ("hang", self.hang),
            ("drop", self.drop),
            ("truncate", self.truncate),
            ("blocked", self.blocked),
            ("limited", self.limited),
        ]
    }
}
