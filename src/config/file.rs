//! The job file as written: one struct per TOML section, each with the defaults docs/GUIDE.md's
//! job-file section documents.
//!
//! Contract: deserializing refuses unknown keys and values of the wrong shape (a bad rate or
//! duration, a zero count), naming the key path; an absent key takes its section's `Default`;
//! required keys are `Option`s here that validation refuses when absent. Meaning (paths, kinds,
//! ranges across keys) is checked in `validate`, not here.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::rates::{deserialize_duration, Rate};
use super::{BatchSize, SandboxConfig, MAX_BATCH_SIZE};

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobFile {
    pub name: Option<String>,
    pub input: InputSection,
    pub output: OutputSection,
    pub provider: ProviderSection,
    #[serde(default)]
    pub state: StateSection,
    #[serde(default)]
    pub normalize: NormalizeSection,
    #[serde(default)]
    pub storage: super::storage::StorageSection,
}

/// `[normalize]`.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct NormalizeSection {
    /// A libphonenumber `PhoneNumberMetadata.xml`; `None`: the built-in plans (`rlibphonenumber`'s).
    pub metadata: Option<PathBuf>,
}

/// `[input]`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct InputSection {
    /// Required.
    pub path: Option<PathBuf>,
    pub format: Option<String>,
    /// Required: validation refuses an empty list.
    pub phone_columns: Vec<String>,
    pub delimiter: Option<String>,
    pub encoding: String,
    pub compression: Option<String>,
    pub default_region: String,
    pub infer_types: bool,
    pub infer_rows: NonZeroUsize,
    /// Column name to type name (`decimal(12,2)`), as written.
    pub types: BTreeMap<String, String>,
}

impl Default for InputSection {
    fn default() -> Self {
        InputSection {
            path: None,
            format: None,
            phone_columns: Vec::new(),
            delimiter: None,
            encoding: "utf-8".into(),
            compression: None,
            default_region: "RU".into(),
            infer_types: false,
            infer_rows: NonZeroUsize::new(10_000).unwrap(),
            types: BTreeMap::new(),
        }
    }
}

/// `[output]`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct OutputSection {
    /// Required.
    pub path: Option<PathBuf>,
    pub column_prefix: Option<String>,
    pub column_prefixes: BTreeMap<String, String>,
    pub row_group_size: NonZeroUsize,
    pub max_failed_ratio: f64,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            path: None,
            column_prefix: None,
            column_prefixes: BTreeMap::new(),
            row_group_size: NonZeroUsize::new(65_536).unwrap(),
            max_failed_ratio: 0.01,
        }
    }
}

/// `[provider]`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ProviderSection {
    /// Required.
    pub kind: Option<String>,
    pub base_url: Option<String>,
    pub batch_size: BatchSize,
    pub max_batch_size: NonZeroUsize,
    pub request_limit: Rate,
    pub identical_limit: Rate,
    pub number_limit: Option<Rate>,
    pub safety_margin: f64,
    pub concurrency: NonZeroUsize,
    #[serde(deserialize_with = "deserialize_duration")]
    pub timeout: Duration,
    pub max_retries: usize,
    #[serde(deserialize_with = "deserialize_duration")]
    pub retry_base_delay: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub retry_max_delay: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub blocked_pause: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub max_blocked_wait: Duration,
    pub password_file: Option<PathBuf>,
    pub accounts_file: Option<PathBuf>,
    pub allow_insecure_http: bool,
    /// A PEM file of CA certificates the client trusts besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Where runs on this machine share each login's limits.
    pub shared_limits_dir: Option<PathBuf>,
    /// `[provider.sandbox]`, only for `kind = "sandbox"`.
    pub sandbox: Option<SandboxConfig>,
}

impl Default for ProviderSection {
    fn default() -> Self {
        ProviderSection {
            kind: None,
            base_url: None,
            batch_size: BatchSize::Fixed(NonZeroUsize::new(100).unwrap()),
            max_batch_size: NonZeroUsize::new(MAX_BATCH_SIZE).unwrap(),
            request_limit: "100/60s".parse().unwrap(),
            identical_limit: "3/60s".parse().unwrap(),
            number_limit: None,
            safety_margin: 0.02,
            concurrency: NonZeroUsize::new(4).unwrap(),
            timeout: Duration::from_secs(30),
            max_retries: 5,
            retry_base_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(60),
            blocked_pause: Duration::from_secs(5 * 60),
            max_blocked_wait: Duration::from_secs(60 * 60),
            password_file: None,
            accounts_file: None,
            allow_insecure_http: false,
            ca_file: None,
            shared_limits_dir: None,
            sandbox: None,
        }
    }
}

/// `[state]`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct StateSection {
    pub dir: PathBuf,
    #[serde(deserialize_with = "deserialize_duration")]
    pub ttl_ok: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub ttl_not_found: Duration,
}

const DAY: Duration = Duration::from_secs(86_400);

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            dir: PathBuf::from("state"),
            ttl_ok: 30 * DAY,
            ttl_not_found: 7 * DAY,
        }
    }
}

/// A TOML or deserialization error as one message. Read from text, toml's own names the line;
/// read from a parsed table, it ends in "in `key.path`", which becomes a `key.path: ` prefix as
/// validation's messages have.
pub(super) fn toml_error(e: toml::de::Error) -> anyhow::Error {
    let text = e.to_string();
    let text = text.trim_end();
    match text.rsplit_once("\nin `") {
        Some((message, key)) if key.ends_with('`') && !message.contains('\n') => {
            anyhow::anyhow!("{}: {message}", &key[..key.len() - 1])
        }
        _ => anyhow::anyhow!("{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_from_a_table_start_with_the_key_path() {
        let table: toml::Table = toml::from_str("[state]\nttl_ok = \"soon\"").unwrap();
        let from_table = toml_error(
            toml::Value::Table(table)
                .try_into::<JobFile>()
                .map(drop)
                .unwrap_err(),
        );
        let from_text = toml_error(
            toml::from_str::<StateSection>("ttl_ok = \"soon\"")
                .map(drop)
                .unwrap_err(),
        );
        let cases = [
            (
                from_table.to_string(),
                "state.ttl_ok: `soon` is not a duration",
            ),
            (from_text.to_string(), "TOML parse error at line 1"),
        ];
        for (got, want) in cases {
            assert!(
                got.starts_with(want),
                "`{got}` does not start with `{want}`"
            );
        }
    }
}
