//! `run --metrics-file`: the file node_exporter's textfile collector reads, as the Prometheus
//! project's own Python client parses it (`prometheus_client.parser`, from the venv that
//! `.ci/test` sets up), after a run, after a failed run, and replaced whole.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::*;

/// Each sample of the file as `prometheus_client` parses it: its name and labels (`k=v`,
/// sorted, comma-joined, without `job_name`), and its value; and each family's type.
struct Parsed {
    samples: BTreeMap<(String, String), f64>,
    types: BTreeMap<String, String>,
}

impl Parsed {
    fn get(&self, name: &str, labels: &str) -> Option<f64> {
        self.samples
            .get(&(name.to_string(), labels.to_string()))
            .copied()
    }

    fn value(&self, name: &str) -> f64 {
        self.get(name, "")
            .unwrap_or_else(|| panic!("no sample {name}: {:?}", self.samples.keys()))
    }

    /// Samples of `name` by their labels.
    fn by_label(&self, name: &str) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), v)| (labels.clone(), *v))
            .collect()
    }
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples, types = [], {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    types[family.name] = family.type
    assert family.documentation, family.name
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"samples": samples, "types": types}))
"#;

fn parse(path: &Path, job_name: &str) -> Parsed {
    let python = std::env::var("PHONE_ENRICH_PYTHON").expect(
        "PHONE_ENRICH_PYTHON names the venv's python with prometheus-client: run through .ci/test",
    );
    let out = Command::new(python)
        .args(["-c", PARSE])
        .arg(path)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "prometheus_client cannot parse {}: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut samples = BTreeMap::new();
    for s in json["samples"].as_array().unwrap() {
        let mut labels = s[1].as_object().unwrap().clone();
        assert_eq!(labels.remove("job_name").unwrap(), job_name, "{s}");
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
            .collect::<Vec<_>>()
            .join(",");
        let key = (s[0].as_str().unwrap().to_string(), labels);
        assert!(
            samples.insert(key, s[2].as_f64().unwrap()).is_none(),
            "a duplicate sample: {s}"
        );
    }
    let types = json["types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    Parsed { samples, types }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn the_metrics_file_holds_the_figures_of_the_run() {
    let Setup { ws, sandbox, job } = setup(400, 19, "", "batch_size = 20\n");
    let before = now();
    let out = ws.run(
        &job,
        &["--metrics-file", "job.prom", "--report", "report.json"],
    );
    assert_exit(&out, 0);
    let after = now();
    let m = parse(&ws.path("job.prom"), "job");
    let report = ws.report("report.json");
    let summary = &report["summary"];
    let count = |v: &serde_json::Value| v.as_u64().unwrap() as f64;
    assert_eq!(m.value("phone_enrich_rows_total"), 400.0);
    assert_eq!(
        m.value("phone_enrich_rows_total"),
        count(&summary["plan"]["rows"])
    );
    assert_eq!(
        m.value("phone_enrich_requests_total"),
        sandbox.stats().requests as f64
    );
    assert!(m.value("phone_enrich_requests_total") > 0.0);
    assert_eq!(
        m.value("phone_enrich_retries_total"),
        count(&summary["retries"])
    );
    assert_eq!(
        m.value("phone_enrich_looked_up_numbers_total"),
        count(&summary["looked_up"])
    );
    assert_eq!(
        m.value("phone_enrich_distinct_numbers_total"),
        count(&summary["plan"]["distinct_numbers"])
    );
    let cells = m.by_label("phone_enrich_phone_cells_total");
    let expected: BTreeMap<String, f64> = summary["cells_by_status"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(status, n)| (format!("status={status}"), count(n)))
        .collect();
    assert_eq!(cells, expected);
    assert!(cells.contains_key("status=ok"), "{cells:?}");
    let stages = m.by_label("phone_enrich_stage_duration_seconds");
    let names: Vec<&str> = stages.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["stage=cache", "stage=lookups", "stage=read", "stage=write"]
    );
    assert_eq!(
        m.value("phone_enrich_run_duration_seconds"),
        summary["elapsed_s"].as_f64().unwrap()
    );
    assert_eq!(m.value("phone_enrich_last_run_exit_code"), 0.0);
    let ended = m.value("phone_enrich_last_run_timestamp_seconds");
    assert!(
        before <= ended && ended <= after,
        "{before} {ended} {after}"
    );
    assert_eq!(
        m.value("phone_enrich_last_success_timestamp_seconds"),
        ended
    );
    assert_eq!(m.types["phone_enrich_rows"], "counter");
    assert_eq!(m.types["phone_enrich_errors"], "counter");
    assert_eq!(
        m.types["phone_enrich_last_success_timestamp_seconds"],
        "gauge"
    );
    assert!(temp_files(ws.dir.path()).is_empty());
}

#[test]
fn errors_by_kind_are_the_run_s() {
    let Setup {
        ws,
        job,
        sandbox: _sandbox,
    } = setup(300, 23, "faults.http_5xx = 0.2\n", "batch_size = 10\n");
    let out = ws.run(&job, &["--metrics-file", "job.prom", "--report", "r.json"]);
    assert_exit(&out, 0);
    let m = parse(&ws.path("job.prom"), "job");
    let errors = m.by_label("phone_enrich_errors_total");
    let expected: BTreeMap<String, f64> = ws.report("r.json")["summary"]["errors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(kind, n)| (format!("kind={kind}"), n.as_u64().unwrap() as f64))
        .collect();
    assert!(
        expected.keys().any(|k| k.starts_with("kind=http_5")),
        "{expected:?}"
    );
    assert_eq!(errors, expected);
    assert!(m.value("phone_enrich_retries_total") > 0.0);
}

#[test]
fn a_failed_run_keeps_the_last_success_and_replaces_the_file_whole() {
    let Setup {
        ws,
        job,
        sandbox: _sandbox,
    } = setup(200, 29, "", "");
    assert_exit(&ws.run(&job, &["--metrics-file", "job.prom"]), 0);
    let path = ws.path("job.prom");
    let first = parse(&path, "job");
    let success = first.value("phone_enrich_last_success_timestamp_seconds");
    let old_text = std::fs::read_to_string(&path).unwrap();
    // A reader that opened the file before the next run (the collector, mid-scrape).
    let mut reader = std::fs::File::open(&path).unwrap();
    let old_inode = std::fs::metadata(&path).unwrap().ino();

    let failed = ws.run(
        &job,
        &["--metrics-file", "job.prom", "--input", "missing.csv"],
    );
    assert_exit(&failed, 3);
    let second = parse(&path, "job");
    assert_eq!(second.value("phone_enrich_last_run_exit_code"), 3.0);
    assert_eq!(
        second.value("phone_enrich_last_success_timestamp_seconds"),
        success
    );
    assert!(second.value("phone_enrich_last_run_timestamp_seconds") >= success);
    assert_eq!(second.value("phone_enrich_rows_total"), 0.0);

    // Replaced by a rename: a new file at the path; the reader still reads the old one whole.
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), old_inode);
    let mut seen = String::new();
    reader.read_to_string(&mut seen).unwrap();
    assert_eq!(seen, old_text);
    assert!(temp_files(ws.dir.path()).is_empty());
    let hidden: Vec<_> = std::fs::read_dir(ws.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".job.prom"))
        .collect();
    assert!(hidden.is_empty(), "a temporary file is left: {hidden:?}");
}

#[test]
fn a_metrics_file_whose_directory_is_missing_is_refused_before_the_run() {
    let Setup { ws, sandbox, job } = setup(50, 31, "", "");
    let out = ws.run(&job, &["--metrics-file", "no/such/dir/job.prom"]);
    assert_exit(&out, 2);
    assert_stderr_contains(&out, "no/such/dir");
    assert_eq!(sandbox.stats().requests, 0);
    assert!(!ws.path("out.parquet").exists());
}
