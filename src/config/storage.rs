//! `[storage]` and `--storage-option`, and `input.path`/`output.path` as locations.
//!
//! Contract: the section's keys (`spool_dir`, `part_size`, and `object_store`'s configuration
//! keys, secrets refused) and the command line's `--storage-option KEY=VALUE`s, which win,
//! become one [`StorageConfig`]; a path that is an object URL becomes the local file the run
//! reads or writes (a spool file) plus the URL, and a URL of a scheme the build does not
//! support is refused naming it, never taken for a local path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

use crate::storage::{spool_path, Location, ObjectUrl, Storage, SPOOL_DIR};

/// `[storage]` as written: our keys, and `object_store`'s as a table.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct StorageSection {
    /// Where objects are spooled; `None`: `<state.dir>/spool`.
    pub spool_dir: Option<PathBuf>,
    /// Every other key: `part_size` and `object_store`'s configuration keys.
    #[serde(flatten)]
    pub options: BTreeMap<String, toml::Value>,
}

/// Object storage for a job: the settings, and the objects it reads and writes through local
/// files.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `[storage]` with the `--storage-option`s over it (never a secret).
    pub settings: Storage,
    /// Resolved: where objects are spooled.
    pub spool_dir: PathBuf,
    /// The input object when `input.path` is a URL; `InputConfig::path` is then its spool file.
    pub input: Option<ObjectUrl>,
    /// The output object when `output.path` is a URL; `OutputConfig::path` is then the local
    /// file written and uploaded once complete.
    pub output: Option<ObjectUrl>,
}

/// `[storage]` with the command line's options over it; the spool directory resolved
/// (`state_dir`'s `spool` unless set).
pub(super) fn storage(
    section: StorageSection,
    command_line: &[String],
    state_dir: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<StorageConfig> {
    let mut settings = Storage::default();
    for (key, value) in &section.options {
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_) => {
                value.to_string()
            }
            _ => bail!("storage.{key}: give a string, a number or true/false"),
        };
        settings.set(&format!("storage.{key}"), key, &text)?;
    }
    let mut spool_dir = section.spool_dir.map(|p| resolve(&p));
    for option in command_line {
        let (key, value) = option.split_once('=').ok_or_else(|| {
            anyhow!("--storage-option `{option}`: write KEY=VALUE, e.g. aws_region=ru-central1")
        })?;
        match key.trim() {
            "spool_dir" => spool_dir = Some(PathBuf::from(value)),
            key => settings.set(&format!("--storage-option {key}"), key, value)?,
        }
    }
    Ok(StorageConfig {
        settings,
        spool_dir: spool_dir.unwrap_or_else(|| state_dir.join(SPOOL_DIR)),
        input: None,
        output: None,
    })
}

impl StorageConfig {
    /// The settings of a command without a job file: the command line's options alone, the
    /// spool under `state_dir`.
    pub fn from_command_line(options: &[String], state_dir: &Path) -> Result<StorageConfig> {
        storage(
            StorageSection::default(),
            options,
            state_dir,
            &|p: &Path| p.to_path_buf(),
        )
    }
}

/// Where `key` points (the command line's path, else the file's, resolved): a local path, or
/// for an object URL the local file of `role` in the spool directory, and the URL.
pub(super) fn located(
    written: PathBuf,
    key: &str,
    from_command_line: bool,
    resolve: &dyn Fn(&Path) -> PathBuf,
    spool_dir: &Path,
    role: &str,
) -> Result<(PathBuf, Option<ObjectUrl>)> {
    let Some(text) = written.to_str() else {
        // Not UTF-8: no URL.
        return Ok((resolved(written, from_command_line, resolve), None));
    };
    match Location::parse(text).map_err(|e| anyhow!("{key}: {e}"))? {
        Location::Local(path) => Ok((resolved(path, from_command_line, resolve), None)),
        Location::Remote(url) => Ok((spool_path(spool_dir, role, &url), Some(url))),
    }
}

fn resolved(path: PathBuf, from_command_line: bool, resolve: &dyn Fn(&Path) -> PathBuf) -> PathBuf {
    match from_command_line {
        true => path,
        false => resolve(&path),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Compression, InputFormat, Job, Overrides};
    use std::path::{Path, PathBuf};

    const JOB: &str = r#"
[input]
path = "s3://crm/exports/2026-12-05.csv.gz"
phone_columns = ["phone"]
[output]
path = "gs://warehouse/enriched/2026-12-05.parquet"
[provider]
kind = "sandbox"
[storage]
aws_region = "ru-central1"
aws_virtual_hosted_style_request = false
spool_dir = "scratch"
"#;

    fn parse(text: &str, options: &[&str]) -> anyhow::Result<Job> {
        let overrides = Overrides {
            storage_options: options.iter().map(|o| o.to_string()).collect(),
            ..Overrides::default()
        };
        Job::parse(text, Path::new("/jobs/x.toml"), &overrides)
    }

    #[test]
    fn object_urls_become_spool_files_with_their_urls_kept() {
        let job = parse(JOB, &["aws_region=eu-west-1"]).unwrap();
        let pid = std::process::id();
        let spool = PathBuf::from("/jobs/scratch");
        assert_eq!(job.storage.spool_dir, spool);
        assert_eq!(
            job.input.path,
            spool.join(format!("{pid}.input.2026-12-05.csv.gz"))
        );
        assert_eq!(
            job.output.path,
            spool.join(format!("{pid}.output.2026-12-05.parquet"))
        );
        assert_eq!(
            (job.input.format, job.input.compression),
            (InputFormat::Csv, Compression::Gzip)
        );
        let urls = (
            job.storage.input.as_ref().unwrap(),
            job.storage.output.as_ref().unwrap(),
        );
        assert_eq!(urls.0.as_str(), "s3://crm/exports/2026-12-05.csv.gz");
        assert_eq!(
            urls.1.as_str(),
            "gs://warehouse/enriched/2026-12-05.parquet"
        );
        assert_eq!(job.output_name(), PathBuf::from(urls.1.as_str()));
        let settings = job.settings();
        let setting = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(setting("input.path"), Some(urls.0.as_str()));
        assert_eq!(setting("storage.aws_region"), Some("eu-west-1"));
        let local = parse(&JOB.replace("spool_dir = \"scratch\"\n", ""), &[]).unwrap();
        assert_eq!(local.storage.spool_dir, PathBuf::from("/jobs/state/spool"));
    }

    #[test]
    fn bad_locations_and_settings_are_refused_naming_the_key() {
        let output = "gs://warehouse/enriched/2026-12-05.parquet";
        let cases: &[(&str, &str, &[&str], &str)] = &[
            (
                output,
                "s3://crm/exports/2026-12-05.csv.gz",
                &[],
                "output.path: s3://crm/exports/2026-12-05.csv.gz is the input",
            ),
            (
                output,
                "s3://b/o.csv",
                &[],
                "output.path: s3://b/o.csv must end in .parquet",
            ),
            (
                "s3://crm/exports/2026-12-05.csv.gz",
                "ftp://host/in.csv",
                &[],
                "input.path: ftp://host/in.csv: unsupported URL scheme `ftp`",
            ),
            (
                output,
                "s3://b/",
                &[],
                "output.path: s3://b/: names a bucket",
            ),
            (
                "aws_region = \"ru-central1\"",
                "aws_region = \"ru-central1\"\ncolour = \"red\"",
                &[],
                "storage.colour: `colour` is not a storage setting",
            ),
            (
                "aws_region = \"ru-central1\"",
                "aws_region = [1]",
                &[],
                "storage.aws_region: give a string",
            ),
            (
                output,
                output,
                &["aws_secret_access_key=x"],
                "--storage-option aws_secret_access_key: a secret is never a setting",
            ),
            (
                output,
                output,
                &["region"],
                "--storage-option `region`: write KEY=VALUE",
            ),
        ];
        for (from, to, options, want) in cases {
            let text = JOB.replacen(from, to, 1);
            let err = format!("{:#}", parse(&text, options).unwrap_err());
            assert!(
                err.contains(want),
                "{to} {options:?}: `{err}` does not say `{want}`"
            );
        }
    }
}
