//! The job: a TOML file plus command-line overrides, parsed into one validated [`Job`].
//!
//! Contract: [`Job::load`] either returns a `Job` whose every field has a real type (paths
//! resolved, durations, non-zero counts, URLs, a parsed region) or an error naming the file and
//! the key at fault. Unknown keys are refused. Nothing here reads input data or opens a socket;
//! credentials are read from the environment or a password file, never from the job or argv.

use std::collections::BTreeMap;
use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// Upper bound of the concurrency cap: the provider refuses 15 or more simultaneous requests.
pub const MAX_CONCURRENCY: usize = 14;

/// A limit of `count` events per sliding `window`, written `100/60s` in a job file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
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

/// Parses `60s`, `500ms`, `30d`, `1h 30m` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); e.g. `60s`, `30d`"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Windows1251,
}

impl TextEncoding {
    pub fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            TextEncoding::Utf8 => encoding_rs::UTF_8,
            TextEncoding::Windows1251 => encoding_rs::WINDOWS_1251,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

#[derive(Debug, Clone)]
pub struct InputConfig {
    pub path: PathBuf,
    pub format: InputFormat,
    pub phone_columns: Vec<String>,
    /// `None`: detected from the header line.
    pub delimiter: Option<u8>,
    pub encoding: TextEncoding,
    pub compression: Compression,
    pub default_region: phonenumber::country::Id,
}

#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub path: PathBuf,
    /// One prefix per phone column, in the order of `InputConfig::phone_columns`.
    pub prefixes: Vec<String>,
    pub row_group_size: NonZeroUsize,
    /// The share of distinct numbers that may end `failed` before the run exits 4.
    pub max_failed_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Smsc,
    Sandbox,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// For `smsc`: the provider's host. For `sandbox`: `None` means "start one in-process".
    pub base_url: Option<reqwest::Url>,
    pub batch_size: NonZeroUsize,
    pub request_limit: Rate,
    pub identical_limit: Rate,
    /// Numbers per window, for a provider that counts numbers rather than requests.
    pub number_limit: Option<Rate>,
    /// Fraction of each window kept free as a safety margin (0.0 ..= 0.5).
    pub safety_margin: f64,
    pub concurrency: NonZeroUsize,
    pub timeout: Duration,
    pub max_retries: usize,
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    /// First pause of all requests after error 4 (doubles on each repeat).
    pub blocked_pause: Duration,
    /// Past this much pausing for error 4, the run stops (resumable).
    pub max_blocked_wait: Duration,
    pub password_file: Option<PathBuf>,
    pub sandbox: SandboxConfig,
}

/// How the built-in emulator behaves. Its limits default to the real provider's.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    pub login: String,
    pub password: String,
    pub request_limit: Rate,
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
    pub latency: Duration,
    pub faults: Faults,
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListNotFound {
    /// An entry with `phone`, `error` and `error_code` 3.
    Entry,
    /// No entry at all for that number.
    Omit,
}

/// Fault injection ratios (0.0 ..= 1.0), each drawn independently per request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    pub http_5xx: f64,
    pub hang: f64,
    pub drop: f64,
    pub truncate: f64,
    /// Error 4 (IP temporarily blocked).
    pub blocked: f64,
    /// Error 9, as if over a limit.
    pub limited: f64,
}

impl Faults {
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

#[derive(Debug, Clone)]
pub struct StateConfig {
    pub dir: PathBuf,
    pub ttl_ok: Duration,
    pub ttl_not_found: Duration,
}

/// The validated job: everything a run needs, checked before any work starts.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub input: InputConfig,
    pub output: OutputConfig,
    pub provider: ProviderConfig,
    pub state: StateConfig,
}

/// Command-line overrides of the job file. Relative paths here are relative to the working
/// directory; relative paths inside the job file are relative to the job file's directory.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub state: Option<PathBuf>,
    /// `key.path=value` settings, applied over the job file (`--set provider.batch_size=50`).
    pub sets: Vec<String>,
}

/// Applies one `--set a.b.c=value` to the parsed job. The value is read as TOML (`50`,
/// `"100/60s"`, `["a", "b"]`, `true`) and, failing that, taken as a string.
fn apply_set(table: &mut toml::Table, setting: &str) -> Result<()> {
    let (key, raw) = setting.split_once('=').ok_or_else(|| {
        anyhow!("--set `{setting}`: write KEY=VALUE, e.g. provider.batch_size=50")
    })?;
    let key = key.trim();
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed one key"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("--set `{setting}`: `{key}` is not a key path such as provider.batch_size");
    }
    let mut node = table;
    for part in &parts[..parts.len() - 1] {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| anyhow!("--set `{setting}`: `{part}` is not a section"))?;
    }
    node.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Login and password for the provider. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("password", &"***")
            .finish()
    }
}

// ---- the file as written --------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: Option<String>,
    input: InputFile,
    output: OutputFile,
    provider: ProviderFile,
    #[serde(default)]
    state: StateFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFile {
    path: PathBuf,
    format: Option<String>,
    phone_columns: Vec<String>,
    delimiter: Option<String>,
    #[serde(default = "default_encoding")]
    encoding: String,
    compression: Option<String>,
    #[serde(default = "default_region")]
    default_region: String,
}

fn default_encoding() -> String {
    "utf-8".into()
}
fn default_region() -> String {
    "RU".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputFile {
    path: PathBuf,
    column_prefix: Option<String>,
    #[serde(default)]
    column_prefixes: BTreeMap<String, String>,
    #[serde(default = "default_row_group_size")]
    row_group_size: usize,
    #[serde(default = "default_max_failed_ratio")]
    max_failed_ratio: f64,
}

fn default_max_failed_ratio() -> f64 {
    0.01
}

fn default_row_group_size() -> usize {
    65_536
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    kind: String,
    base_url: Option<String>,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(default = "default_request_limit")]
    request_limit: String,
    #[serde(default = "default_identical_limit")]
    identical_limit: String,
    number_limit: Option<String>,
    #[serde(default = "default_safety_margin")]
    safety_margin: f64,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default = "default_timeout")]
    timeout: String,
    #[serde(default = "default_max_retries")]
    max_retries: usize,
    #[serde(default = "default_retry_base_delay")]
    retry_base_delay: String,
    #[serde(default = "default_retry_max_delay")]
    retry_max_delay: String,
    #[serde(default = "default_blocked_pause")]
    blocked_pause: String,
    #[serde(default = "default_max_blocked_wait")]
    max_blocked_wait: String,
    password_file: Option<PathBuf>,
    #[serde(default)]
    sandbox: Option<SandboxFile>,
}

fn default_batch_size() -> usize {
    100
}
fn default_request_limit() -> String {
    "100/60s".into()
}
fn default_identical_limit() -> String {
    "3/60s".into()
}
fn default_safety_margin() -> f64 {
    0.02
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout() -> String {
    "30s".into()
}
fn default_max_retries() -> usize {
    5
}
fn default_retry_base_delay() -> String {
    "1s".into()
}
fn default_retry_max_delay() -> String {
    "60s".into()
}
fn default_blocked_pause() -> String {
    "5m".into()
}
fn default_max_blocked_wait() -> String {
    "1h".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SandboxFile {
    login: Option<String>,
    password: Option<String>,
    request_limit: Option<String>,
    identical_limit: Option<String>,
    number_limit: Option<String>,
    max_concurrent: Option<usize>,
    max_list: Option<usize>,
    not_found_percent: Option<u8>,
    reject_percent: Option<u8>,
    list_not_found: Option<ListNotFound>,
    latency: Option<String>,
    seed: Option<u64>,
    #[serde(default)]
    faults: FaultsFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FaultsFile {
    #[serde(default)]
    http_5xx: f64,
    #[serde(default)]
    hang: f64,
    #[serde(default)]
    drop: f64,
    #[serde(default)]
    truncate: f64,
    #[serde(default)]
    blocked: f64,
    #[serde(default)]
    limited: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    #[serde(default = "default_state_dir")]
    dir: PathBuf,
    #[serde(default = "default_ttl_ok")]
    ttl_ok: String,
    #[serde(default = "default_ttl_not_found")]
    ttl_not_found: String,
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            dir: default_state_dir(),
            ttl_ok: default_ttl_ok(),
            ttl_not_found: default_ttl_not_found(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}
fn default_ttl_ok() -> String {
    "30d".into()
}
fn default_ttl_not_found() -> String {
    "7d".into()
}

// ---- validation ------------------------------------------------------------------------------

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
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        for setting in &overrides.sets {
            apply_set(&mut table, setting)?;
        }
        let file: JobFile = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("{}", e.to_string().trim_end()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });

        let input = validate_input(file.input, overrides.input.clone(), &resolve)?;
        let output = validate_output(file.output, &input, overrides.output.clone(), &resolve)?;
        let provider = validate_provider(file.provider, &resolve)?;
        let state = StateConfig {
            dir: overrides
                .state
                .clone()
                .unwrap_or_else(|| resolve(&file.state.dir)),
            ttl_ok: parse_duration(&file.state.ttl_ok).map_err(|e| anyhow!("state.ttl_ok: {e}"))?,
            ttl_not_found: parse_duration(&file.state.ttl_not_found)
                .map_err(|e| anyhow!("state.ttl_not_found: {e}"))?,
        };
        Ok(Job {
            name,
            input,
            output,
            provider,
            state,
        })
    }

    /// The job's settings as key/value pairs, for the output's metadata. Never a secret.
    pub fn settings(&self) -> Vec<(String, String)> {
        let p = &self.provider;
        vec![
            ("job.name".into(), self.name.clone()),
            ("input.path".into(), self.input.path.display().to_string()),
            (
                "input.phone_columns".into(),
                self.input.phone_columns.join(","),
            ),
            (
                "input.default_region".into(),
                format!("{:?}", self.input.default_region),
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
            ("provider.request_limit".into(), p.request_limit.to_string()),
            (
                "provider.identical_limit".into(),
                p.identical_limit.to_string(),
            ),
            ("provider.concurrency".into(), p.concurrency.to_string()),
        ]
    }
}

fn validate_input(
    f: InputFile,
    path_override: Option<PathBuf>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<InputConfig> {
    let path = path_override.unwrap_or_else(|| resolve(&f.path));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let stem = name.strip_suffix(".gz").unwrap_or(&name);
    let format = match f.format.as_deref() {
        Some("csv") => InputFormat::Csv,
        Some("parquet") => InputFormat::Parquet,
        Some(other) => bail!("input.format: `{other}` is not one of `csv`, `parquet`"),
        None if stem.ends_with(".parquet") || stem.ends_with(".pq") => InputFormat::Parquet,
        None if stem.ends_with(".csv") || stem.ends_with(".tsv") || stem.ends_with(".txt") => {
            InputFormat::Csv
        }
        None => bail!(
            "input.format: cannot tell the format of {} from its name; set `csv` or `parquet`",
            path.display()
        ),
    };
    if f.phone_columns.is_empty() {
        bail!("input.phone_columns: name at least one column");
    }
    let mut seen = std::collections::HashSet::new();
    for c in &f.phone_columns {
        if !seen.insert(c) {
            bail!("input.phone_columns: `{c}` is listed twice");
        }
    }
    let delimiter = match f.delimiter.as_deref() {
        None | Some("auto") => None,
        Some(",") => Some(b','),
        Some(";") => Some(b';'),
        Some("\t") | Some("tab") => Some(b'\t'),
        Some("|") => Some(b'|'),
        Some(other) => bail!("input.delimiter: `{other}` is not one of `,` `;` `tab` `|` `auto`"),
    };
    let encoding = match f.encoding.to_lowercase().as_str() {
        "utf-8" | "utf8" => TextEncoding::Utf8,
        "windows-1251" | "cp1251" => TextEncoding::Windows1251,
        other => bail!("input.encoding: `{other}` is not one of `utf-8`, `windows-1251`"),
    };
    let compression = match f.compression.as_deref() {
        Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some(other) => bail!("input.compression: `{other}` is not one of `none`, `gzip`"),
        None if name.ends_with(".gz") => Compression::Gzip,
        None => Compression::None,
    };
    if format == InputFormat::Parquet && (compression == Compression::Gzip || delimiter.is_some()) {
        bail!("input: `delimiter` and `compression` apply to CSV only");
    }
    let default_region = f
        .default_region
        .to_uppercase()
        .parse::<phonenumber::country::Id>()
        .map_err(|_| {
            anyhow!(
                "input.default_region: `{}` is not an ISO 3166 country code such as `RU`",
                f.default_region
            )
        })?;
    Ok(InputConfig {
        path,
        format,
        phone_columns: f.phone_columns,
        delimiter,
        encoding,
        compression,
        default_region,
    })
}

fn validate_output(
    f: OutputFile,
    input: &InputConfig,
    path_override: Option<PathBuf>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<OutputConfig> {
    let path = path_override.unwrap_or_else(|| resolve(&f.path));
    if path.extension().and_then(|e| e.to_str()) != Some("parquet") {
        bail!("output.path: {} must end in .parquet", path.display());
    }
    for key in f.column_prefixes.keys() {
        if !input.phone_columns.contains(key) {
            bail!("output.column_prefixes: `{key}` is not one of input.phone_columns");
        }
    }
    let several = input.phone_columns.len() > 1;
    let template = f.column_prefix.unwrap_or_else(|| {
        if several {
            "{column}_".into()
        } else {
            "phone_".into()
        }
    });
    let prefixes: Vec<String> = input
        .phone_columns
        .iter()
        .map(|c| {
            f.column_prefixes
                .get(c)
                .cloned()
                .unwrap_or_else(|| template.replace("{column}", c))
        })
        .collect();
    for (i, p) in prefixes.iter().enumerate() {
        if prefixes[..i].contains(p) {
            bail!(
                "output: phone columns `{}` and `{}` would both get the prefix `{p}`; \
                 use `{{column}}` in output.column_prefix or set output.column_prefixes",
                input.phone_columns[prefixes[..i].iter().position(|q| q == p).unwrap()],
                input.phone_columns[i]
            );
        }
    }
    let row_group_size = NonZeroUsize::new(f.row_group_size)
        .ok_or_else(|| anyhow!("output.row_group_size must be > 0"))?;
    if !(0.0..=1.0).contains(&f.max_failed_ratio) {
        bail!(
            "output.max_failed_ratio: {} is not between 0 and 1",
            f.max_failed_ratio
        );
    }
    Ok(OutputConfig {
        path,
        prefixes,
        row_group_size,
        max_failed_ratio: f.max_failed_ratio,
    })
}

fn validate_provider(
    f: ProviderFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ProviderConfig> {
    let kind = match f.kind.as_str() {
        "smsc" => ProviderKind::Smsc,
        "sandbox" => ProviderKind::Sandbox,
        other => bail!("provider.kind: `{other}` is not one of `smsc`, `sandbox`"),
    };
    let base_url = match f.base_url {
        Some(u) => {
            let url = reqwest::Url::parse(&u)
                .map_err(|e| anyhow!("provider.base_url: `{u}` is not a URL ({e})"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                bail!("provider.base_url: `{u}` must be an http(s) URL with a host");
            }
            Some(url)
        }
        None if kind == ProviderKind::Smsc => Some(reqwest::Url::parse("https://smsc.ru").unwrap()),
        None => None,
    };
    if kind == ProviderKind::Smsc && f.sandbox.is_some() {
        bail!("provider.sandbox: only for provider.kind = \"sandbox\"");
    }
    let batch_size = NonZeroUsize::new(f.batch_size)
        .ok_or_else(|| anyhow!("provider.batch_size must be > 0"))?;
    if f.batch_size > 1000 {
        bail!(
            "provider.batch_size: {} is more than 1000 numbers a request",
            f.batch_size
        );
    }
    let request_limit: Rate = f
        .request_limit
        .parse()
        .map_err(|e| anyhow!("provider.request_limit: {e}"))?;
    let identical_limit: Rate = f
        .identical_limit
        .parse()
        .map_err(|e| anyhow!("provider.identical_limit: {e}"))?;
    let number_limit = f
        .number_limit
        .map(|r| {
            r.parse::<Rate>()
                .map_err(|e| anyhow!("provider.number_limit: {e}"))
        })
        .transpose()?;
    if !(0.0..=0.5).contains(&f.safety_margin) {
        bail!(
            "provider.safety_margin: {} is not between 0 and 0.5",
            f.safety_margin
        );
    }
    let concurrency = match NonZeroUsize::new(f.concurrency) {
        Some(c) if c.get() <= MAX_CONCURRENCY => c,
        _ => bail!(
            "provider.concurrency: {} is not between 1 and {MAX_CONCURRENCY} (the provider refuses 15 at once)",
            f.concurrency
        ),
    };
    let timeout = parse_duration(&f.timeout).map_err(|e| anyhow!("provider.timeout: {e}"))?;
    if timeout.is_zero() {
        bail!("provider.timeout must be longer than zero");
    }
    let retry_base_delay = parse_duration(&f.retry_base_delay)
        .map_err(|e| anyhow!("provider.retry_base_delay: {e}"))?;
    let retry_max_delay =
        parse_duration(&f.retry_max_delay).map_err(|e| anyhow!("provider.retry_max_delay: {e}"))?;
    if retry_max_delay < retry_base_delay {
        bail!("provider.retry_max_delay must not be shorter than provider.retry_base_delay");
    }
    let blocked_pause =
        parse_duration(&f.blocked_pause).map_err(|e| anyhow!("provider.blocked_pause: {e}"))?;
    let max_blocked_wait = parse_duration(&f.max_blocked_wait)
        .map_err(|e| anyhow!("provider.max_blocked_wait: {e}"))?;
    let sandbox = validate_sandbox(f.sandbox.unwrap_or_default())?;
    Ok(ProviderConfig {
        kind,
        base_url,
        batch_size,
        request_limit,
        identical_limit,
        number_limit,
        safety_margin: f.safety_margin,
        concurrency,
        timeout,
        max_retries: f.max_retries,
        retry_base_delay,
        retry_max_delay,
        blocked_pause,
        max_blocked_wait,
        password_file: f.password_file.map(|p| resolve(&p)),
        sandbox,
    })
}

impl SandboxConfig {
    /// Parses a standalone sandbox config: the keys of a job's `[provider.sandbox]` section.
    pub fn from_toml(text: &str) -> Result<SandboxConfig> {
        let file: SandboxFile =
            toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        validate_sandbox(file)
    }
}

fn validate_sandbox(f: SandboxFile) -> Result<SandboxConfig> {
    let d = SandboxConfig::default();
    let rate = |v: Option<String>, key: &str, default: Rate| -> Result<Rate> {
        v.map(|s| {
            s.parse()
                .map_err(|e| anyhow!("provider.sandbox.{key}: {e}"))
        })
        .unwrap_or(Ok(default))
    };
    let fa = &f.faults;
    let faults = Faults {
        http_5xx: fa.http_5xx,
        hang: fa.hang,
        drop: fa.drop,
        truncate: fa.truncate,
        blocked: fa.blocked,
        limited: fa.limited,
    };
    for (key, v) in faults.ratios() {
        if !(0.0..=1.0).contains(&v) {
            bail!("provider.sandbox.faults.{key}: {v} is not between 0 and 1");
        }
    }
    if faults.ratios().iter().map(|(_, v)| v).sum::<f64>() > 1.0 {
        bail!("provider.sandbox.faults: the ratios add up to more than 1");
    }
    let not_found_percent = f.not_found_percent.unwrap_or(d.not_found_percent);
    let reject_percent = f.reject_percent.unwrap_or(d.reject_percent);
    for (key, v) in [
        ("not_found_percent", not_found_percent),
        ("reject_percent", reject_percent),
    ] {
        if v > 100 {
            bail!("provider.sandbox.{key}: {v} is more than 100");
        }
    }
    let number_limit = f
        .number_limit
        .map(|r| {
            r.parse::<Rate>()
                .map_err(|e| anyhow!("provider.sandbox.number_limit: {e}"))
        })
        .transpose()?;
    Ok(SandboxConfig {
        login: f.login.unwrap_or(d.login),
        password: f.password.unwrap_or(d.password),
        request_limit: rate(f.request_limit, "request_limit", d.request_limit)?,
        identical_limit: rate(f.identical_limit, "identical_limit", d.identical_limit)?,
        number_limit,
        max_concurrent: f.max_concurrent.unwrap_or(d.max_concurrent).max(1),
        max_list: f.max_list.unwrap_or(d.max_list).max(1),
        not_found_percent,
        reject_percent,
        list_not_found: f.list_not_found.unwrap_or(d.list_not_found),
        latency: f
            .latency
            .map(|s| parse_duration(&s).map_err(|e| anyhow!("provider.sandbox.latency: {e}")))
            .transpose()?
            .unwrap_or(d.latency),
        faults,
        seed: f.seed.unwrap_or(d.seed),
    })
}

impl ProviderConfig {
    /// Credentials from `SMSC_LOGIN` and `SMSC_PASSWORD` or `provider.password_file`. For the
    /// sandbox, missing credentials fall back to the sandbox's own.
    pub fn credentials(&self) -> Result<Credentials> {
        let login = std::env::var("SMSC_LOGIN").ok().filter(|s| !s.is_empty());
        let password = match std::env::var("SMSC_PASSWORD")
            .ok()
            .filter(|s| !s.is_empty())
        {
            Some(p) => Some(p),
            None => match &self.password_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| {
                            format!("reading provider.password_file {}", path.display())
                        })?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
                None => None,
            },
        };
        match (self.kind, login, password) {
            (_, Some(login), Some(password)) => Ok(Credentials { login, password }),
            (ProviderKind::Sandbox, login, password) => Ok(Credentials {
                login: login.unwrap_or_else(|| self.sandbox.login.clone()),
                password: password.unwrap_or_else(|| self.sandbox.password.clone()),
            }),
            (ProviderKind::Smsc, None, _) => {
                bail!("SMSC_LOGIN is not set: provider `smsc` needs a login in the environment")
            }
            (ProviderKind::Smsc, _, None) => {
                bail!(
                    "no password: set SMSC_PASSWORD or provider.password_file for provider `smsc`"
                )
            }
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
        assert_eq!(job.provider.batch_size.get(), 100);
        assert_eq!(job.provider.request_limit, "100/60s".parse().unwrap());
        assert_eq!(job.provider.concurrency.get(), 4);
        assert_eq!(job.state.dir, PathBuf::from("/jobs/state"));
        assert_eq!(job.state.ttl_ok, Duration::from_secs(30 * 86400));
    }

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

    #[test]
    fn bad_jobs_are_refused_naming_the_key() {
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
        ])
        .unwrap();
        assert_eq!(job.provider.batch_size.get(), 50);
        assert_eq!(job.provider.request_limit, "20/2s".parse().unwrap());
        assert_eq!(job.state.ttl_ok, Duration::from_secs(86400));
        assert_eq!(job.input.phone_columns, vec!["tel"]);
        let cases: &[(&str, &str)] = &[
            ("provider.batch_size=0", "provider.batch_size"),
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

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials {
            login: "l".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
