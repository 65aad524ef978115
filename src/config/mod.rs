//! The job: a TOML file plus command-line overrides, parsed into one validated [`Job`].
//!
//! Contract: [`Job::load`] either returns a `Job` whose every field has a real type (paths
//! resolved, durations, non-zero counts, URLs, a parsed region) or an error naming the file and
//! the key at fault. Unknown keys are refused. Nothing here reads input data or opens a socket;
//! credentials are read from the environment or a password file, never from the job or argv.

mod batch;
mod ca_file;
mod column_types;
mod credentials;
mod file;
mod overrides;
mod rates;
mod sandbox;
mod storage;
mod validate;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

pub use batch::{BatchSize, MAX_BATCH_SIZE};
pub use ca_file::CaFile;
pub use column_types::{column_type, toml_key, type_name, COLUMN_TYPE_NAMES};
pub use credentials::Credentials;
pub use overrides::Overrides;
pub use rates::{parse_duration, Rate};
pub use sandbox::{Dialect, Faults, SandboxConfig};
pub use storage::StorageConfig;

/// Upper bound of the concurrency cap: the provider refuses 15 or more simultaneous requests.
pub const MAX_CONCURRENCY: usize = 14;

/// The validated job: everything a run needs, checked before any work starts.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's `name`, else the job file's stem.
    pub name: String,
    /// What to read.
    pub input: InputConfig,
    /// What to write.
    pub output: OutputConfig,
    /// Whom to ask, and how fast.
    pub provider: ProviderConfig,
    /// Where answers are kept between runs.
    pub state: StateConfig,
    /// How phone cells are read.
    pub normalize: NormalizeConfig,
    /// Object storage: settings, and the input's and output's objects.
    pub storage: StorageConfig,
}

/// How phone cells are read, beyond the default region.
#[derive(Debug, Clone, Copy, Default)]
pub struct NormalizeConfig {
    /// The numbering plans: `normalize.metadata`, loaded and checked, else the built-in ones.
    pub metadata: crate::normalize::PhoneMetadata,
}

/// How the input file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Delimited text.
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// The character encoding of a CSV input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// Cyrillic Windows code page 1251.
    Windows1251,
}

impl TextEncoding {
    /// The `encoding_rs` decoder for this encoding.
    pub fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            TextEncoding::Utf8 => encoding_rs::UTF_8,
            TextEncoding::Windows1251 => encoding_rs::WINDOWS_1251,
        }
    }
}

/// How a CSV input is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// A gzip stream.
    Gzip,
}

/// The input file and how to read it.
#[derive(Debug, Clone)]
pub struct InputConfig {
    /// Resolved: absolute, or relative to the working directory.
    pub path: PathBuf,
    /// Given, or told from the file name.
    pub format: InputFormat,
    /// The columns holding phone numbers, at least one, none twice.
    pub phone_columns: Vec<String>,
    /// `None`: detected from the header line.
    pub delimiter: Option<u8>,
    /// For CSV only.
    pub encoding: TextEncoding,
    /// Given, or told from a `.gz` name; CSV only.
    pub compression: Compression,
    /// How numbers without a country code are read.
    pub default_region: crate::normalize::Region,
    /// CSV only: the columns `input.types` declares, none of them a phone column, with the type
    /// each is read as (a name the header must have, checked when the input is opened).
    pub types: Vec<(String, polars::prelude::DataType)>,
    /// CSV only, `input.infer_types`: the other columns' types are inferred from this many
    /// first rows (`input.infer_rows`); `None` reads them as text.
    pub infer_rows: Option<NonZeroUsize>,
}

/// The enriched Parquet file.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Resolved; ends in `.parquet` and differs from the input's.
    pub path: PathBuf,
    /// One prefix per phone column, in the order of `InputConfig::phone_columns`.
    pub prefixes: Vec<String>,
    /// Rows per piece of work and per Parquet row group.
    pub row_group_size: NonZeroUsize,
    /// The share of distinct numbers that may end `failed` before the run exits 4.
    pub max_failed_ratio: f64,
}

/// Which provider answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// SMSC's `get_operator`.
    Smsc,
    /// The built-in emulator.
    Sandbox,
}

/// The provider, its limits and the retry policy.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Which provider answers.
    pub kind: ProviderKind,
    /// For `smsc`: the provider's host. For `sandbox`: `None` means "start one in-process".
    pub base_url: Option<reqwest::Url>,
    /// Numbers per request (at most [`MAX_BATCH_SIZE`]), or found by the run.
    pub batch_size: BatchSize,
    /// With `batch_size = "auto"`: the longest list the run tries.
    pub max_batch_size: NonZeroUsize,
    /// Requests per sliding window.
    pub request_limit: Rate,
    /// Identical requests per sliding window.
    pub identical_limit: Rate,
    /// Numbers per window, for a provider that counts numbers rather than requests.
    pub number_limit: Option<Rate>,
    /// Fraction of each window kept free as a safety margin (0.0 ..= 0.5).
    pub safety_margin: f64,
    /// Requests at once, at most [`MAX_CONCURRENCY`].
    pub concurrency: NonZeroUsize,
    /// Per request; never zero.
    pub timeout: Duration,
    /// Retries of a transient failure.
    pub max_retries: usize,
    /// First back-off.
    pub retry_base_delay: Duration,
    /// Longest back-off, not shorter than the first.
    pub retry_max_delay: Duration,
    /// First pause of all requests after error 4 (doubles on each repeat).
    pub blocked_pause: Duration,
    /// Past this much pausing for error 4, the run stops (resumable).
    pub max_blocked_wait: Duration,
    /// Resolved; read by [`ProviderConfig::accounts`].
    pub password_file: Option<PathBuf>,
    /// Resolved; `login:password` lines, one account each (`SMSC_ACCOUNTS_FILE` wins).
    pub accounts_file: Option<PathBuf>,
    /// Allows a `base_url` that is plain http on a host other than loopback (every run warns).
    pub allow_insecure_http: bool,
    /// CAs trusted besides the system's (`SSL_CERT_FILE`/`SSL_CERT_DIR`) and the web's, read
    /// and checked when the job is validated.
    pub ca_file: Option<CaFile>,
    /// Resolved; where every run on this machine shares each login's limits (`None`:
    /// `$XDG_RUNTIME_DIR/phone-enrich`, else a private directory in the system's temp directory).
    pub shared_limits_dir: Option<PathBuf>,
    /// The emulator's settings; defaults unless `kind` is `sandbox`.
    pub sandbox: SandboxConfig,
}

impl ProviderConfig {
    /// Whether requests carry the password unencrypted (allowed only by
    /// `provider.allow_insecure_http`; every run warns).
    pub fn sends_in_clear(&self) -> bool {
        self.base_url.as_ref().is_some_and(in_clear)
    }
}

/// Whether requests to `url` carry the password unencrypted: plain http to a host other than
/// loopback (the sandbox and the tests run on loopback).
fn in_clear(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    url.scheme() == "http" && !loopback
}

/// The state directory: cache and checkpoint.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Resolved.
    pub dir: PathBuf,
    /// How long an answer stays fresh.
    pub ttl_ok: Duration,
    /// How long a `not_found` or provider-rejected number stays fresh.
    pub ttl_not_found: Duration,
}

impl Job {
    /// Reads and validates a job file, applying command-line overrides.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Job> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading job file {}", path.display()))?;
        Job::parse(&text, path, overrides)
            .with_context(|| format!("invalid job file {}", path.display()))
    }

    /// Parses job text; `path` locates relative paths and names the job.
    pub fn parse(text: &str, path: &Path, overrides: &Overrides) -> Result<Job> {
        let mut table: toml::Table = toml::from_str(text).map_err(file::toml_error)?;
        overrides.apply_sets(&mut table)?;
        let written: file::JobFile = table.try_into().map_err(file::toml_error)?;
        validate::job(written, path, overrides)
    }

    /// The job's settings as key/value pairs, for the output's metadata. Never a secret.
    pub fn settings(&self) -> Vec<(String, String)> {
        let p = &self.provider;
        vec![
            ("job.name".into(), self.name.clone()),
            (
                "input.path".into(),
                match &self.storage.input {
                    Some(url) => url.to_string(),
                    None => self.input.path.display().to_string(),
                },
            ),
            (
                "input.phone_columns".into(),
                self.input.phone_columns.join(","),
            ),
            (
                "input.default_region".into(),
                format!("{:?}", self.input.default_region),
            ),
            (
                "input.infer_types".into(),
                match self.input.infer_rows {
                    Some(rows) => format!("first {rows} rows"),
                    None => "false".into(),
                },
            ),
            (
                "input.types".into(),
                self.input
                    .types
                    .iter()
                    .map(|(column, dtype)| format!("{column}={}", type_name(dtype)))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "provider.kind".into(),
                format!("{:?}", p.kind).to_lowercase(),
            ),
            (
                "provider.base_url".into(),
                p.base_url
                    .as_ref()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "in-process sandbox".into()),
            ),
            ("provider.batch_size".into(), p.batch_size.to_string()),
            (
                "provider.max_batch_size".into(),
                p.max_batch_size.to_string(),
            ),
            ("provider.request_limit".into(), p.request_limit.to_string()),
            (
                "provider.identical_limit".into(),
                p.identical_limit.to_string(),
            ),
            ("provider.concurrency".into(), p.concurrency.to_string()),
            (
                "provider.ca_file".into(),
                p.ca_file.as_ref().map_or("none".into(), |f| {
                    format!("{} ({} certificates)", f.path.display(), f.len())
                }),
            ),
            (
                "normalize.metadata".into(),
                self.normalize.metadata.describe(),
            ),
        ]
        .into_iter()
        .chain(
            self.storage
                .settings
                .options()
                .map(|(key, value)| (format!("storage.{key}"), value.to_string())),
        )
        .collect()
    }

    /// Where the output goes, as the user named it: the object's URL, or the file's path.
    pub fn output_name(&self) -> PathBuf {
        match &self.storage.output {
            Some(url) => PathBuf::from(url.as_str()),
            None => self.output.path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[input]
path = "in.csv"
phone_columns = ["phone"]
[output]
path = "out.parquet"
[provider]
kind = "sandbox"
"#;

    fn parse(text: &str) -> Result<Job> {
        Job::parse(text, Path::new("/jobs/x.toml"), &Overrides::default())
    }

    #[test]
    fn minimal_job_gets_documented_defaults() {
        let job = parse(MINIMAL).unwrap();
        assert_eq!(job.name, "x");
        assert_eq!(job.input.path, PathBuf::from("/jobs/in.csv"));
        assert_eq!(job.input.format, InputFormat::Csv);
        assert_eq!(job.input.delimiter, None);
        assert_eq!(job.output.prefixes, vec!["phone_".to_string()]);
        assert_eq!(
            job.provider.batch_size,
            BatchSize::Fixed(NonZeroUsize::new(100).unwrap())
        );
        assert_eq!(job.provider.max_batch_size.get(), 1000);
        assert_eq!(job.provider.request_limit, "100/60s".parse().unwrap());
        assert_eq!(job.provider.concurrency.get(), 4);
        assert_eq!(job.state.dir, PathBuf::from("/jobs/state"));
        assert_eq!(job.state.ttl_ok, Duration::from_secs(30 * 86400));
    }

    #[test]
    fn every_default_is_the_one_the_readme_documents() {
        let job = parse(MINIMAL).unwrap();
        let (input, output, p, sb) = (
            &job.input,
            &job.output,
            &job.provider,
            &job.provider.sandbox,
        );
        let d = |text: &str| parse_duration(text).unwrap();
        let r = |text: &str| text.parse::<Rate>().unwrap();
        assert_eq!(input.encoding, TextEncoding::Utf8);
        assert_eq!(input.compression, Compression::None);
        assert_eq!(input.default_region, crate::normalize::Region::RU);
        assert_eq!((input.types.len(), input.infer_rows), (0, None));
        let inferred = parse(&MINIMAL.replace("[output]", "infer_types = true\n[output]")).unwrap();
        assert_eq!(inferred.input.infer_rows.map(|r| r.get()), Some(10_000));
        assert_eq!(output.row_group_size.get(), 65_536);
        assert_eq!(output.max_failed_ratio, 0.01);
        assert_eq!(p.base_url, None);
        assert_eq!((p.identical_limit, p.number_limit), (r("3/60s"), None));
        assert_eq!(p.safety_margin, 0.02);
        assert_eq!((p.timeout, p.max_retries), (d("30s"), 5));
        assert_eq!((p.retry_base_delay, p.retry_max_delay), (d("1s"), d("60s")));
        assert_eq!((p.blocked_pause, p.max_blocked_wait), (d("5m"), d("1h")));
        assert_eq!(p.password_file, None);
        assert_eq!(p.shared_limits_dir, None);
        let shared = parse(&MINIMAL.replace(
            "kind = \"sandbox\"",
            "kind = \"sandbox\"\nshared_limits_dir = \"limits\"",
        ))
        .unwrap();
        assert_eq!(
            shared.provider.shared_limits_dir,
            Some(PathBuf::from("/jobs/limits")),
            "relative to the job file"
        );
        assert_eq!(
            (sb.login.as_str(), sb.password.as_str()),
            ("sandbox", "sandbox")
        );
        assert_eq!(
            (sb.request_limit, sb.identical_limit, sb.number_limit),
            (r("100/60s"), r("3/60s"), None)
        );
        assert_eq!(
            (
                sb.max_concurrent,
                sb.max_list,
                sb.not_found_percent,
                sb.reject_percent
            ),
            (15, 300, 3, 0)
        );
        assert_eq!(
            (sb.dialect, sb.latency, sb.seed),
            (Dialect::Documented, d("20ms"), 1)
        );
        assert!(!p.allow_insecure_http);
        assert!(sb.faults.ratios().iter().all(|(_, v)| *v == 0.0));
        assert_eq!(job.state.ttl_not_found, d("7d"));
        let smsc = parse(&MINIMAL.replace("\"sandbox\"", "\"smsc\"")).unwrap();
        assert_eq!(smsc.provider.base_url.unwrap().as_str(), "https://smsc.ru/");
        let empty_sandbox = MINIMAL.replace(
            "kind = \"sandbox\"",
            "kind = \"sandbox\"\n[provider.sandbox]",
        );
        assert_eq!(parse(&empty_sandbox).unwrap().provider.sandbox, *sb);
    }

    #[test]
    fn bad_jobs_are_refused_naming_the_key() {
        const K: &str = "kind = \"sandbox\"";
        let cases: &[(&str, &str, &str)] = &[
            (
                "[provider]\nkind = \"sandbox\"",
                "[provider]\nkind = \"sandbox\"\nbogus = 1",
                "bogus",
            ),
            ("kind = \"sandbox\"", "kind = \"sms\"", "provider.kind"),
            (
                "kind = \"sandbox\"",
                "kind = \"sandbox\"\nconcurrency = 15",
                "provider.concurrency",
            ),
            (
                "kind = \"sandbox\"",
                "kind = \"sandbox\"\nconcurrency = 0",
                "provider.concurrency",
            ),
            (
                "kind = \"sandbox\"",
                "kind = \"sandbox\"\nbatch_size = 0",
                "provider.batch_size",
            ),
            (
                "kind = \"sandbox\"",
                "kind = \"sandbox\"\nrequest_limit = \"100 per minute\"",
                "provider.request_limit",
            ),
            (
                "kind = \"sandbox\"",
                "kind = \"sandbox\"\ntimeout = \"soon\"",
                "provider.timeout",
            ),
            (
                "kind = \"sandbox\"",
                "kind = \"sandbox\"\nbase_url = \"not a url\"",
                "provider.base_url",
            ),
            (
                K,
                "kind = \"smsc\"\nbase_url = \"http://smsc.ru\"",
                "provider.allow_insecure_http",
            ),
            (
                K,
                "kind = \"sandbox\"\n[provider.sandbox]\ndialect = \"klingon\"",
                "provider.sandbox.dialect",
            ),
            (
                "phone_columns = [\"phone\"]",
                "phone_columns = []",
                "input.phone_columns",
            ),
            (
                "phone_columns = [\"phone\"]",
                "phone_columns = [\"phone\"]\ndefault_region = \"XX\"",
                "input.default_region",
            ),
            (
                "phone_columns = [\"phone\"]",
                "phone_columns = [\"phone\"]\nencoding = \"koi8-r\"",
                "input.encoding",
            ),
            (
                "phone_columns = [\"phone\"]",
                "phone_columns = [\"phone\"]\ndelimiter = \":\"",
                "input.delimiter",
            ),
            (
                "path = \"out.parquet\"",
                "path = \"out.csv\"",
                "output.path",
            ),
            ("path = \"out.parquet\"", "path = \"in.csv\"", "output.path"),
            (
                "phone_columns = [\"phone\"]",
                "phone_columns = [\"phone\"]\ntypes = { amount = \"money\" }",
                "input.types.amount",
            ),
            (
                "phone_columns = [\"phone\"]",
                "phone_columns = [\"phone\"]\ntypes = { \"first name\" = \"decimal(40,2)\" }",
                "input.types.\"first name\"",
            ),
            (
                "phone_columns = [\"phone\"]",
                "phone_columns = [\"phone\"]\ntypes = { phone = \"int64\" }",
                "input.types.phone",
            ),
            (
                "path = \"in.csv\"",
                "path = \"in.parquet\"\ninfer_types = true",
                "apply to CSV only",
            ),
            (
                "phone_columns = [\"phone\"]",
                "phone_columns = [\"phone\"]\ninfer_rows = 0",
                "input.infer_rows",
            ),
            // Refused by serde while reading the file: the key path is toml's.
            (
                K,
                "kind = \"sandbox\"\nretry_base_delay = \"a while\"",
                "provider.retry_base_delay",
            ),
            (
                K,
                "kind = \"sandbox\"\nidentical_limit = \"0/60s\"",
                "provider.identical_limit",
            ),
            (
                K,
                "kind = \"sandbox\"\nnumber_limit = \"10/forever\"",
                "provider.number_limit",
            ),
            (
                K,
                "kind = \"sandbox\"\n[state]\nttl_ok = \"a month\"",
                "state.ttl_ok",
            ),
            (
                K,
                "kind = \"sandbox\"\n[provider.sandbox]\nlatency = \"quick\"",
                "provider.sandbox.latency",
            ),
            (
                K,
                "kind = \"sandbox\"\n[provider.sandbox]\nrequest_limit = \"5\"",
                "provider.sandbox.request_limit",
            ),
            (
                K,
                "kind = \"sandbox\"\n[provider.sandbox.faults]\nhang = 2.0",
                "provider.sandbox.faults.hang",
            ),
            (
                "path = \"out.parquet\"",
                "path = \"out.parquet\"\nrow_group_size = 0",
                "output.row_group_size",
            ),
            // Required keys, refused by validation.
            ("path = \"in.csv\"", "", "input.path"),
            ("path = \"out.parquet\"", "", "output.path"),
            (K, "", "provider.kind"),
        ];
        for (from, to, key) in cases {
            let text = MINIMAL.replacen(from, to, 1);
            assert_ne!(text, MINIMAL, "case {to} did not change the job");
            let err = format!("{:#}", parse(&text).unwrap_err());
            assert!(err.contains(key), "{to}: error `{err}` does not name {key}");
        }
    }

    #[test]
    fn settings_from_the_command_line_override_the_file() {
        let with = |sets: &[&str]| {
            let overrides = Overrides {
                sets: sets.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
            Job::parse(MINIMAL, Path::new("/jobs/x.toml"), &overrides)
        };
        let job = with(&[
            "provider.batch_size=50",
            "provider.request_limit=20/2s",
            "state.ttl_ok=\"1d\"",
            "input.phone_columns=[\"tel\"]",
            "input.types.amount=decimal(12,2)",
        ])
        .unwrap();
        let amount = (
            "amount".to_string(),
            polars::prelude::DataType::Decimal(12, 2),
        );
        assert_eq!(job.input.types, vec![amount]);
        assert_eq!(job.provider.batch_size.to_string(), "50");
        assert_eq!(job.provider.request_limit, "20/2s".parse().unwrap());
        assert_eq!(job.state.ttl_ok, Duration::from_secs(86400));
        assert_eq!(job.input.phone_columns, vec!["tel"]);
        let auto = with(&["provider.batch_size=auto"]).unwrap();
        assert_eq!(auto.provider.batch_size, BatchSize::Auto);
        let cases: &[(&str, &str)] = &[
            ("provider.batch_size=0", "provider.batch_size"),
            ("provider.batch_size=1001", "provider.batch_size"),
            ("provider.batch_size=sometimes", "provider.batch_size"),
            ("provider.max_batch_size=5000", "provider.max_batch_size"),
            ("provider.colour=red", "unknown field `colour`"),
            ("batch_size", "KEY=VALUE"),
            ("input.path.deeper=1", "not a section"),
        ];
        for (set, want) in cases {
            let err = format!("{:#}", with(&[set]).unwrap_err());
            assert!(err.contains(want), "{set}: {err}");
        }
    }

    #[test]
    fn only_https_carries_the_password_unless_loopback_or_allowed() {
        let job = |provider: &str| parse(&MINIMAL.replace("kind = \"sandbox\"", provider));
        for ok in [
            "kind = \"smsc\"",
            "kind = \"smsc\"\nbase_url = \"https://smsc.kz\"",
            "kind = \"sandbox\"\nbase_url = \"http://127.0.0.1:8417\"",
            "kind = \"sandbox\"\nbase_url = \"http://localhost:8417\"",
            "kind = \"sandbox\"\nbase_url = \"http://[::1]:8417\"",
        ] {
            assert!(!job(ok).unwrap().provider.sends_in_clear(), "{ok}");
        }
        let allowed = "kind = \"smsc\"\nbase_url = \"http://10.0.0.5\"\nallow_insecure_http = true";
        assert!(job(allowed).unwrap().provider.sends_in_clear());
        assert!(job("kind = \"smsc\"\nbase_url = \"http://10.0.0.5\"").is_err());
    }

    #[test]
    fn several_phone_columns_get_their_own_prefix() {
        let text = MINIMAL.replace("[\"phone\"]", "[\"mobile\", \"work\"]");
        assert_eq!(
            parse(&text).unwrap().output.prefixes,
            vec!["mobile_", "work_"]
        );
        let clash = text.replace(
            "path = \"out.parquet\"",
            "path = \"out.parquet\"\ncolumn_prefix = \"p_\"",
        );
        assert!(format!("{:#}", parse(&clash).unwrap_err()).contains("both get the prefix"));
    }
}
