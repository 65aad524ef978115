//! `run --metrics-file`: a run's figures in the Prometheus text exposition format, for
//! node_exporter's textfile collector (the convention for cron and orchestrated batch jobs).
//!
//! Contract: [`MetricsFile::write`] formats a [`RunSummary`] ([`render`]) and replaces the file
//! whole: a temporary file in the same directory (named so that the collector, which reads
//! only `*.prom`, never reads it), flushed to disk, then renamed over the old one, so a scrape
//! sees the previous run's figures or this run's, never a mix. It is written after every run,
//! failed or not. `phone_enrich_last_success_timestamp_seconds` is this run's end when it
//! succeeded, else the value the old file held (absent when no run has succeeded yet), so an
//! alert on its age fires only when runs keep failing. Every series carries `job_name` (the
//! job's name) and, for a shard, `shard`, so that several jobs' files on one host never clash.
//! Counts (`_total`) are the described run's own: each run starts them at zero.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::outcome::RunSummary;

/// The metric this module reads back from the old file.
const LAST_SUCCESS: &str = "phone_enrich_last_success_timestamp_seconds";

/// Where `--metrics-file` writes, checked before the run.
#[derive(Debug, Clone)]
pub struct MetricsFile {
    path: PathBuf,
}

impl MetricsFile {
    /// `path`, once its directory is known to exist (a run of hours must not find that out at
    /// its end) and it is not itself a directory.
    pub fn new(path: &Path) -> Result<MetricsFile> {
        let dir = directory(path);
        if !dir.is_dir() {
            bail!(
                "--metrics-file: the directory {} of {} does not exist",
                dir.display(),
                path.display()
            );
        }
        if path.is_dir() {
            bail!("--metrics-file: {} is a directory", path.display());
        }
        Ok(MetricsFile {
            path: path.to_path_buf(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with the figures of a run of job `job_name` that ended with
    /// `exit_code` (0: success), now.
    pub fn write(&self, job_name: &str, summary: &RunSummary, exit_code: u8) -> Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let last_success = match exit_code {
            0 => Some(now),
            _ => self.last_success(),
        };
        let end = RunEnd {
            job_name,
            exit_code,
            ended: now,
            last_success,
        };
        let text = render(summary, &end);
        replace(&self.path, text.as_bytes())
            .with_context(|| format!("writing the metrics file {}", self.path.display()))
    }

    /// The last success the current file records, if it can be read.
    fn last_success(&self) -> Option<f64> {
        let old = std::fs::read_to_string(&self.path).ok()?;
        old.lines()
            .filter(|line| {
                line.strip_prefix(LAST_SUCCESS)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .find_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .filter(|t| t.is_finite())
    }
}

/// The directory a file named `path` goes in.
fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it over
/// `path`; on failure the temporary file is removed and `path` is untouched.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .context("the path names no file")?
        .to_string_lossy();
    let temporary = directory(path).join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e.into());
    }
    Ok(())
}

/// How a run ended, beside its summary.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    /// The job's name (`job_name` label).
    pub job_name: &'a str,
    /// The process's exit code (0: success).
    pub exit_code: u8,
    /// When the run ended, in seconds since the Unix epoch.
    pub ended: f64,
    /// When the last successful run ended (this one, when it succeeded), if any did.
    pub last_success: Option<f64>,
}

/// The text exposition of a run: every metric with its HELP and TYPE lines.
pub fn render(summary: &RunSummary, end: &RunEnd) -> String {
    let mut labels = vec![("job_name", end.job_name.to_string())];
    if let Some(shard) = &summary.plan.shard {
        labels.push(("shard", shard.clone()));
    }
    let mut out = Exposition {
        text: String::new(),
        labels,
    };
    let plan = &summary.plan;
    let counters: [(&str, &str, u64); 8] = [
        ("rows_total", "Input rows read by the run.", plan.rows),
        (
            "distinct_numbers_total",
            "Distinct valid numbers in the input.",
            plan.distinct_numbers,
        ),
        (
            "cached_numbers_total",
            "Distinct numbers with a fresh answer in the state store before the run.",
            plan.cached,
        ),
        (
            "looked_up_numbers_total",
            "Distinct numbers asked and answered in the run.",
            summary.looked_up,
        ),
        (
            "failed_numbers_total",
            "Distinct numbers that ended with status failed.",
            summary.failed_numbers,
        ),
        (
            "requests_total",
            "Requests sent to the provider.",
            summary.requests,
        ),
        (
            "retries_total",
            "Requests sent again after a failure.",
            summary.retries,
        ),
        (
            "splits_total",
            "Lists split in two after the provider refused them whole.",
            summary.splits,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, "counter", help);
        out.sample(name, &[], value as f64);
    }
    out.family(
        "phone_cells_total",
        "counter",
        "Phone cells by status (empty: blank cells), over all phone columns.",
    );
    for (status, cells) in &summary.cells_by_status {
        out.sample("phone_cells_total", &[("status", status)], *cells as f64);
    }
    out.family(
        "errors_total",
        "counter",
        "Failed requests by kind (api_9, http_503, timeout, certificate, ...).",
    );
    for (kind, count) in &summary.errors {
        out.sample("errors_total", &[("kind", kind)], *count as f64);
    }
    timings(&mut out, summary, end);
    out.text
}

/// The run's durations, end, exit code and last success.
fn timings(out: &mut Exposition, summary: &RunSummary, end: &RunEnd) {
    out.family(
        "run_duration_seconds",
        "gauge",
        "How long the run took, in seconds.",
    );
    out.sample("run_duration_seconds", &[], summary.elapsed_s);
    out.family(
        "stage_duration_seconds",
        "gauge",
        "Seconds the run spent in each stage.",
    );
    let stages = &summary.stages;
    for (stage, seconds) in [
        ("cache", stages.cache_s),
        ("read", stages.read_s),
        ("lookups", stages.lookups_s),
        ("write", stages.write_s),
    ] {
        out.sample("stage_duration_seconds", &[("stage", stage)], seconds);
    }
    out.family(
        "last_run_exit_code",
        "gauge",
        "The run's exit code (0: success; the README lists the others).",
    );
    out.sample("last_run_exit_code", &[], end.exit_code.into());
    out.family(
        "last_run_timestamp_seconds",
        "gauge",
        "When the run ended, in seconds since the Unix epoch.",
    );
    out.sample("last_run_timestamp_seconds", &[], end.ended);
    out.family(
        "last_success_timestamp_seconds",
        "gauge",
        "When the last successful run ended, in seconds since the Unix epoch.",
    );
    if let Some(t) = end.last_success {
        out.sample("last_success_timestamp_seconds", &[], t);
    }
}

/// The text being written, and the labels every series carries.
struct Exposition {
    text: String,
    labels: Vec<(&'static str, String)>,
}

impl Exposition {
    /// The HELP and TYPE lines of `phone_enrich_{name}`.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP phone_enrich_{name} {help}");
        let _ = writeln!(self.text, "# TYPE phone_enrich_{name} {kind}");
    }

    /// One sample of `phone_enrich_{name}`, with the common labels and `extra`.
    fn sample(&mut self, name: &str, extra: &[(&str, &str)], value: f64) {
        let common = self.labels.iter().map(|(k, v)| (*k, v.as_str()));
        let labels = common
            .chain(extra.iter().copied())
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        let _ = writeln!(self.text, "phone_enrich_{name}{{{labels}}} {value}");
    }
}

/// A label value as the text format spells it: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(exit_code: u8, last_success: Option<f64>) -> RunEnd<'static> {
        RunEnd {
            job_name: "crm \"nightly\"\\x",
            exit_code,
            ended: 1_800_000_000.5,
            last_success,
        }
    }

    #[test]
    fn every_sample_follows_its_help_and_type_and_carries_the_job() {
        let mut summary = RunSummary::default();
        summary.plan.rows = 12;
        summary.plan.shard = Some("2/4".into());
        summary.cells_by_status.insert("ok".into(), 10);
        summary.errors.insert("http_503".into(), 3);
        let text = render(&summary, &end(0, Some(1_800_000_000.5)));
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split('{').next().unwrap();
            assert!(declared.contains(name), "{line} before its TYPE");
            assert!(
                line.contains(r#"job_name="crm \"nightly\"\\x",shard="2/4""#),
                "{line}"
            );
        }
        assert!(text.contains("phone_enrich_rows_total{job_name="));
        assert!(text.contains(r#"status="ok"} 10"#), "{text}");
        assert!(text.contains(r#"kind="http_503"} 3"#), "{text}");
        assert!(text.contains("phone_enrich_last_success_timestamp_seconds{"));
    }

    #[test]
    fn no_success_yet_leaves_the_last_success_out() {
        let text = render(&RunSummary::default(), &end(4, None));
        assert!(text.contains("# TYPE phone_enrich_last_success_timestamp_seconds gauge"));
        assert!(!text.contains("phone_enrich_last_success_timestamp_seconds{"));
        assert!(text.contains("phone_enrich_last_run_exit_code{job_name="));
    }

    #[test]
    fn a_failed_run_keeps_the_success_the_old_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.prom");
        let file = MetricsFile::new(&path).unwrap();
        file.write("j", &RunSummary::default(), 4).unwrap();
        assert_eq!(file.last_success(), None);
        file.write("j", &RunSummary::default(), 0).unwrap();
        let first = file.last_success().expect("a success is recorded");
        file.write("j", &RunSummary::default(), 3).unwrap();
        assert_eq!(file.last_success(), Some(first));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn refuses_a_missing_directory() {
        let e = MetricsFile::new(Path::new("/nonexistent/dir/job.prom")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/dir"), "{e}");
    }
}
