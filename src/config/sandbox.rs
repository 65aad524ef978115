//! The built-in emulator's settings: a job's `[provider.sandbox]` section, or the file given to
//! `phone-enrich sandbox --config`.
//!
//! Contract: read as written (every key optional, defaults are the real provider's limits, the
//! ones docs/GUIDE.md documents), then checked by the same rules wherever they come from.

use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::file::toml_error;
use super::rates::{deserialize_duration, Rate};
use super::validate;

/// How the built-in emulator behaves. Its limits default to the real provider's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// A login the sandbox accepts.
    pub login: String,
    /// The password of `login`.
    pub password: String,
    /// More logins it accepts, each `login:password` (the first `:` splits).
    pub accounts: Vec<String>,
    /// Requests per sliding window per login, past which it answers error 9.
    pub request_limit: Rate,
    /// Identical requests per sliding window per login, past which it answers error 9.
    pub identical_limit: Rate,
    /// If set, also a limit of numbers (not requests) per window per login.
    pub number_limit: Option<Rate>,
    /// Requests at once per login at which the sandbox answers error 9 (the provider: 15).
    pub max_concurrent: usize,
    /// Longest `phone` list accepted; longer batches get error 1.
    pub max_list: usize,
    /// Percentage (0..=100) of numbers for which the operator is "not found".
    pub not_found_percent: u8,
    /// Percentage (0..=100) of numbers the provider rejects with error 1 (a list holding one
    /// gets error 1 as a whole).
    pub reject_percent: u8,
    /// The variant of the provider's answers the sandbox speaks.
    pub dialect: Dialect,
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
            accounts: Vec::new(),
            request_limit: "100/60s".parse().unwrap(),
            identical_limit: "3/60s".parse().unwrap(),
            number_limit: None,
            max_concurrent: 15,
            max_list: 300,
            not_found_percent: 3,
            reject_percent: 0,
            dialect: Dialect::Documented,
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

    /// Whether `login` with `password` is one of the accounts the sandbox accepts.
    pub fn accepts(&self, login: &str, password: &str) -> bool {
        (login == self.login && password == self.password)
            || self
                .accounts
                .iter()
                .filter_map(|a| a.split_once(':'))
                .any(|account| account == (login, password))
    }
}

/// The variant of the provider's answers the sandbox speaks (`[provider.sandbox] dialect`):
/// the documented shape, or one plausible deviation from it each, so the tests through the
/// binary cover every shape the client must read. The sandbox's `dialect.rs` renders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// As the provider's page documents it: JSON strings, a list as an array of entries with
    /// `phone`, a number not found as an entry with `error_code` 3.
    Documented,
    /// `mcc`, `mnc`, `tz` and `phone` as JSON numbers (`"mnc": 1`).
    Numbers,
    /// `tz` spelled `+3`, `UTC+3`, `+03:00`, `GMT+3` or `MSK+4`.
    TzSpellings,
    /// Answers that also carry `"error": null`, `"error": ""` or `"error_code": 0`.
    SuccessErrorFields,
    /// A list as an object wrapping the array: `{"phones": [...]}`.
    WrappedList,
    /// A list as an object keyed by phone: `{"79161234567": {...}}`.
    KeyedList,
    /// A number not found has no entry in a list.
    NotFoundOmitted,
    /// A number not found is an entry with empty operator, MCC and MNC.
    NotFoundEmpty,
    /// A number not found is `{"error": "operator not found"}`, without a code.
    NotFoundText,
    /// Every error in Russian, without a code (`неверный логин или пароль`).
    RussianErrors,
    /// Errors as `ERROR = N (...)` text on HTTP 200, whatever `fmt` asked.
    ErrorText,
    /// Errors as `{"error": "..."}` without a code.
    ErrorCodeless,
    /// Errors with an HTTP status (401 for error 2, 429 for 9, ...) and a JSON body.
    ErrorHttp,
    /// Everything in `fmt=0` text, whatever `fmt` asked.
    TextFormat,
    /// Everything in `fmt=1` comma-separated values.
    CsvFormat,
    /// Everything in `fmt=2` XML.
    XmlFormat,
    /// Bodies in windows-1251, labelled so.
    Cp1251,
    /// Bodies in windows-1251 with no charset in the header.
    Cp1251Unlabelled,
    /// Bodies in windows-1251 labelled UTF-8.
    Cp1251LabelledUtf8,
    /// Bodies in UTF-8 labelled windows-1251.
    Utf8LabelledCp1251,
    /// An HTML comment after the JSON.
    TrailingComment,
    /// The `phone` echoed as written nationally: `8 (916) 123-45-67`.
    PhoneFormatted,
    /// List entries without `phone`.
    Phoneless,
    /// In a list, every third number's entry is a string the parser cannot read.
    UnreadableEntry,
    /// Only ever an HTML page (a proxy's or a portal's), whatever was asked.
    HtmlOnly,
    /// Only ever a redirect (`301`, `Location: https://...`).
    Redirect,
}

impl Dialect {
    /// Every dialect, for tests that go through them all.
    pub const ALL: [Dialect; 26] = [
        Dialect::Documented,
        Dialect::Numbers,
        Dialect::TzSpellings,
        Dialect::SuccessErrorFields,
        Dialect::WrappedList,
        Dialect::KeyedList,
        Dialect::NotFoundOmitted,
        Dialect::NotFoundEmpty,
        Dialect::NotFoundText,
        Dialect::RussianErrors,
        Dialect::ErrorText,
        Dialect::ErrorCodeless,
        Dialect::ErrorHttp,
        Dialect::TextFormat,
        Dialect::CsvFormat,
        Dialect::XmlFormat,
        Dialect::Cp1251,
        Dialect::Cp1251Unlabelled,
        Dialect::Cp1251LabelledUtf8,
        Dialect::Utf8LabelledCp1251,
        Dialect::TrailingComment,
        Dialect::PhoneFormatted,
        Dialect::Phoneless,
        Dialect::UnreadableEntry,
        Dialect::HtmlOnly,
        Dialect::Redirect,
    ];

    /// The name written in a job file.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
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
