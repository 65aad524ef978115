//! The job files shipped in `jobs/` stay valid, and the demos run.

use std::process::Command;

use crate::common::*;

fn jobs() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    let mut jobs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    jobs.sort();
    jobs
}

#[test]
fn every_shipped_job_is_valid() {
    let jobs = jobs();
    assert!(jobs.len() >= 5, "{jobs:?}");
    let ws = Workspace::new();
    ws.write("input.csv", "phone\n89161234567\n");
    for job in jobs {
        // The examples point at production paths: check them against a local input.
        let out = Command::new(BIN)
            .arg("validate")
            .arg(&job)
            .arg("--input")
            .arg(ws.path("input.csv"))
            .env("SMSC_LOGIN", "example")
            .env("SMSC_PASSWORD", "example")
            .output()
            .unwrap();
        assert_exit(&out, 0);
    }
}

#[test]
fn the_demo_jobs_run_on_their_samples_and_agree() {
    let ws = Workspace::new();
    let mut outputs = Vec::new();
    for name in ["demo", "demo-cp1251", "demo-parquet"] {
        let job =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("jobs/{name}.toml"));
        let output = ws.path(&format!("{name}.parquet"));
        let out = Command::new(BIN)
            .arg("run")
            .arg(&job)
            .arg("--output")
            .arg(&output)
            .arg("--state")
            .arg(ws.path("state"))
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let df = read_parquet(&output);
        assert_eq!(df.height(), 3000, "{name}");
        outputs.push(
            df.select([
                "phone",
                "phone_e164",
                "phone_status",
                "phone_operator",
                "phone_mnc",
            ])
            .unwrap(),
        );
    }
    assert!(
        outputs[0].equals_missing(&outputs[1]),
        "the windows-1251 sample differs"
    );
    assert!(
        outputs[0].equals_missing(&outputs[2]),
        "the Parquet sample differs"
    );
}
