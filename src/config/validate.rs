//! From the file as written to the validated [`Job`]: meaning the types alone cannot carry.
//!
//! Contract: every check a single key's type cannot make (required keys, file names and
//! formats, column prefixes, ranges, keys that must agree with each other) is made here, and
//! each refusal names the key path; paths are resolved against the job file's directory unless
//! given on the command line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use polars::prelude::DataType;

use super::file::{
    InputSection, JobFile, NormalizeSection, OutputSection, ProviderSection, StateSection,
};
use super::storage::{located, storage};
use super::{column_type, toml_key, COLUMN_TYPE_NAMES};
use super::{
    BatchSize, CaFile, Compression, Faults, InputConfig, InputFormat, Job, NormalizeConfig,
    OutputConfig, Overrides, ProviderConfig, ProviderKind, SandboxConfig, StateConfig,
    TextEncoding, MAX_BATCH_SIZE, MAX_CONCURRENCY,
};
use crate::normalize::PhoneMetadata;
use crate::storage::ObjectUrl;

/// Turns a job file located at `path` into a [`Job`], with the command line's path overrides.
pub(super) fn job(file: JobFile, path: &Path, overrides: &Overrides) -> Result<Job> {
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
    let state = state(file.state, overrides.state.clone(), &resolve);
    let mut storage = storage(
        file.storage,
        &overrides.storage_options,
        &state.dir,
        &resolve,
    )?;
    let locate = |written: Option<PathBuf>, key: &str, given: Option<PathBuf>, role: &str| {
        let from_command_line = given.is_some();
        let written = given.map_or_else(|| required(written, key), Ok)?;
        located(
            written,
            key,
            from_command_line,
            &resolve,
            &storage.spool_dir,
            role,
        )
    };
    let (input_path, input_url) = locate(
        file.input.path.clone(),
        "input.path",
        overrides.input.clone(),
        "input",
    )?;
    let (output_path, output_url) = locate(
        file.output.path.clone(),
        "output.path",
        overrides.output.clone(),
        "output",
    )?;
    if let Some(url) = input_url
        .as_ref()
        .filter(|url| output_url.as_ref() == Some(url))
    {
        bail!("output.path: {url} is the input; write the output elsewhere");
    }
    let input = input(file.input, input_path, input_url.as_ref())?;
    let output = output(file.output, &input, output_path, output_url.as_ref())?;
    (storage.input, storage.output) = (input_url, output_url);
    let provider = provider(file.provider, &resolve)?;
    let normalize = normalize(file.normalize, &input, &resolve)?;
    Ok(Job {
        name,
        input,
        output,
        provider,
        state,
        normalize,
        storage,
    })
}

/// `[normalize]`: a metadata file is loaded and checked here, so that a bad one stops the job
/// before any work, and must hold the default region.
fn normalize(
    f: NormalizeSection,
    input: &InputConfig,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<NormalizeConfig> {
    let Some(path) = f.metadata else {
        return Ok(NormalizeConfig::default());
    };
    let path = resolve(&path);
    let metadata = PhoneMetadata::load(&path)
        .map_err(|e| anyhow::Error::new(e).context("normalize.metadata"))?;
    if !metadata.has_region(input.default_region) {
        bail!(
            "normalize.metadata: {} has no territory {:?} (input.default_region)",
            path.display(),
            input.default_region
        );
    }
    Ok(NormalizeConfig { metadata })
}

/// A key the job file must set.
fn required<T>(value: Option<T>, key: &str) -> Result<T> {
    value.ok_or_else(|| anyhow!("{key}: missing; the job file must set it"))
}

/// The name `path` (or, for an object, `url`) is shown by in messages.
fn shown(path: &Path, url: Option<&ObjectUrl>) -> String {
    url.map_or_else(|| path.display().to_string(), |url| url.to_string())
}

/// `[input]`, read from `path` (an object's spool file when `url` is set).
fn input(f: InputSection, path: PathBuf, url: Option<&ObjectUrl>) -> Result<InputConfig> {
    let name = url
        .map(|url| url.file_name().to_lowercase())
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().to_lowercase()))
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
            shown(&path, url)
        ),
    };
    if f.phone_columns.is_empty() {
        bail!("input.phone_columns: name at least one column");
    }
    let mut seen = HashSet::new();
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
    let types = declared_types(&f, format)?;
    let default_region = f
        .default_region
        .to_uppercase()
        .parse::<crate::normalize::Region>()
        .ok()
        .filter(|region| crate::normalize::PhoneMetadata::built_in().has_region(*region))
        .ok_or_else(|| {
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
        types,
        infer_rows: f.infer_types.then_some(f.infer_rows),
    })
}

/// `input.types` as real types: every type name known, no phone column among the columns, and
/// typing asked of a CSV input only.
fn declared_types(f: &InputSection, format: InputFormat) -> Result<Vec<(String, DataType)>> {
    if format == InputFormat::Parquet && (f.infer_types || !f.types.is_empty()) {
        bail!("input: `types` and `infer_types` apply to CSV only (a Parquet file's columns keep their own types)");
    }
    let phone_columns = &f.phone_columns;
    f.types
        .iter()
        .map(|(column, name)| {
            let key = format!("input.types.{}", toml_key(column));
            if phone_columns.contains(column) {
                bail!("{key}: `{column}` is a phone column, and phone columns are always read as they were written");
            }
            let dtype = column_type(name).ok_or_else(|| {
                anyhow!("{key}: `{name}` is not a column type; use one of {COLUMN_TYPE_NAMES}")
            })?;
            Ok((column.clone(), dtype))
        })
        .collect()
}

/// `[output]`, written to `path` (uploaded to `url` once complete, when set).
fn output(
    f: OutputSection,
    input: &InputConfig,
    path: PathBuf,
    url: Option<&ObjectUrl>,
) -> Result<OutputConfig> {
    if path.extension().and_then(|e| e.to_str()) != Some("parquet") {
        bail!("output.path: {} must end in .parquet", shown(&path, url));
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
    if !(0.0..=1.0).contains(&f.max_failed_ratio) {
        bail!(
            "output.max_failed_ratio: {} is not between 0 and 1",
            f.max_failed_ratio
        );
    }
    Ok(OutputConfig {
        path,
        prefixes,
        row_group_size: f.row_group_size,
        max_failed_ratio: f.max_failed_ratio,
    })
}

/// The provider's address: an http(s) URL with a host (`smsc` defaults to `https://smsc.ru`),
/// https unless on loopback or `allow_insecure_http` says otherwise.
fn base_url(
    kind: ProviderKind,
    base_url: Option<&str>,
    allow_insecure_http: bool,
) -> Result<Option<reqwest::Url>> {
    let url = match base_url {
        Some(u) => {
            let url = reqwest::Url::parse(u)
                .map_err(|e| anyhow!("provider.base_url: `{u}` is not a URL ({e})"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                bail!("provider.base_url: `{u}` must be an http(s) URL with a host");
            }
            url
        }
        None if kind == ProviderKind::Smsc => reqwest::Url::parse("https://smsc.ru").unwrap(),
        None => return Ok(None),
    };
    if super::in_clear(&url) && !allow_insecure_http {
        bail!("provider.base_url: `{url}` is not https, so the password would travel in clear text; use https, or set provider.allow_insecure_http = true");
    }
    Ok(Some(url))
}

fn provider(f: ProviderSection, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<ProviderConfig> {
    let kind = match required(f.kind, "provider.kind")?.as_str() {
        "smsc" => ProviderKind::Smsc,
        "sandbox" => ProviderKind::Sandbox,
        other => bail!("provider.kind: `{other}` is not one of `smsc`, `sandbox`"),
    };
    let base_url = base_url(kind, f.base_url.as_deref(), f.allow_insecure_http)?;
    if kind == ProviderKind::Smsc && f.sandbox.is_some() {
        bail!("provider.sandbox: only for provider.kind = \"sandbox\"");
    }
    for (key, size) in [
        ("batch_size", f.batch_size),
        ("max_batch_size", BatchSize::Fixed(f.max_batch_size)),
    ] {
        if matches!(size, BatchSize::Fixed(n) if n.get() > MAX_BATCH_SIZE) {
            bail!("provider.{key}: {size} is more than {MAX_BATCH_SIZE} numbers a request");
        }
    }
    if !(0.0..=0.5).contains(&f.safety_margin) {
        bail!(
            "provider.safety_margin: {} is not between 0 and 0.5",
            f.safety_margin
        );
    }
    if f.concurrency.get() > MAX_CONCURRENCY {
        bail!(
            "provider.concurrency: {} is not between 1 and {MAX_CONCURRENCY} (the provider refuses 15 at once)",
            f.concurrency
        );
    }
    if f.timeout.is_zero() {
        bail!("provider.timeout must be longer than zero");
    }
    if f.retry_max_delay < f.retry_base_delay {
        bail!("provider.retry_max_delay must not be shorter than provider.retry_base_delay");
    }
    Ok(ProviderConfig {
        kind,
        base_url,
        batch_size: f.batch_size,
        max_batch_size: f.max_batch_size,
        request_limit: f.request_limit,
        identical_limit: f.identical_limit,
        number_limit: f.number_limit,
        safety_margin: f.safety_margin,
        concurrency: f.concurrency,
        timeout: f.timeout,
        max_retries: f.max_retries,
        retry_base_delay: f.retry_base_delay,
        retry_max_delay: f.retry_max_delay,
        blocked_pause: f.blocked_pause,
        max_blocked_wait: f.max_blocked_wait,
        password_file: f.password_file.map(|p| resolve(&p)),
        accounts_file: f.accounts_file.map(|p| resolve(&p)),
        allow_insecure_http: f.allow_insecure_http,
        ca_file: f.ca_file.map(|p| CaFile::load(&resolve(&p))).transpose()?,
        shared_limits_dir: f.shared_limits_dir.map(|p| resolve(&p)),
        sandbox: sandbox(f.sandbox.unwrap_or_default())?,
    })
}

/// Checks the sandbox's settings, from a job or a standalone file, and raises a zero
/// `max_concurrent` or `max_list` to 1.
pub(super) fn sandbox(c: SandboxConfig) -> Result<SandboxConfig> {
    check_faults(&c.faults)?;
    if let Some(i) = c.accounts.iter().position(|a| !a.contains(':')) {
        bail!(
            "provider.sandbox.accounts: entry {} is not `login:password`",
            i + 1
        );
    }
    for (key, v) in [
        ("not_found_percent", c.not_found_percent),
        ("reject_percent", c.reject_percent),
    ] {
        if v > 100 {
            bail!("provider.sandbox.{key}: {v} is more than 100");
        }
    }
    Ok(SandboxConfig {
        max_concurrent: c.max_concurrent.max(1),
        max_list: c.max_list.max(1),
        ..c
    })
}

fn check_faults(faults: &Faults) -> Result<()> {
    for (key, v) in faults.ratios() {
        if !(0.0..=1.0).contains(&v) {
            bail!("provider.sandbox.faults.{key}: {v} is not between 0 and 1");
        }
    }
    if faults.ratios().iter().map(|(_, v)| v).sum::<f64>() > 1.0 {
        bail!("provider.sandbox.faults: the ratios add up to more than 1");
    }
    Ok(())
}

fn state(
    f: StateSection,
    dir_override: Option<PathBuf>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> StateConfig {
    StateConfig {
        dir: dir_override.unwrap_or_else(|| resolve(&f.dir)),
        ttl_ok: f.ttl_ok,
        ttl_not_found: f.ttl_not_found,
    }
}
