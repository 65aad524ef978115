//! The real provider in every shape (issue 9): the sandbox speaks each dialect, and the binary
//! must read every one exactly right, with batches and with single numbers; refuse wrong
//! credentials in every form after at most two requests; stop after two requests against a
//! server that only serves an HTML page; and never follow a redirect.

use std::path::Path;
use std::process::Output;

use crate::common::*;
use phone_enrich::config::Dialect;
use polars::prelude::*;

/// The sandbox of these tests: a window wide enough that pacing never slows them, and numbers
/// not found and rejected, so every form of those errors is spoken too.
const SANDBOX: &str = "request_limit = \"1000/2s\"\nidentical_limit = \"3/2s\"\nlatency = \"0ms\"\nnot_found_percent = 25\nreject_percent = 10\n";

const WRONG_PASSWORD: &[(&str, &str)] = &[("SMSC_LOGIN", "sandbox"), ("SMSC_PASSWORD", "wrong")];

/// A workspace with `in.csv` (the same export for every dialect) and a sandbox speaking
/// `dialect`; `job.toml` asks it in batches of `batch` numbers.
fn setup(dialect: Dialect, batch: usize) -> (Workspace, SandboxProcess, std::path::PathBuf) {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 60, 9);
    let config = format!("{SANDBOX}dialect = \"{}\"\n", dialect.name());
    let sandbox = SandboxProcess::start(ws.dir.path(), &config);
    let provider = format!(
        "request_limit = \"1000/2s\"\nretry_base_delay = \"10ms\"\nretry_max_delay = \"50ms\"\nbatch_size = {batch}\n"
    );
    let job = ws.job("job.toml", "in.csv", "", &provider_for(&sandbox, &provider));
    (ws, sandbox, job)
}

/// What a run did against one dialect.
struct Outcome {
    dialect: Dialect,
    batch: usize,
    output: Option<DataFrame>,
    run: Output,
    requests: u64,
    rerun: Option<(Output, DataFrame, u64)>,
}

/// Runs the job, then runs it again on the same state (every number cached: the output comes
/// from the state store alone).
fn run_twice(dialect: Dialect, batch: usize) -> Outcome {
    let (ws, sandbox, job) = setup(dialect, batch);
    let run = ws.run(&job, &[]);
    let requests = sandbox.stats().requests;
    let output = ws.path("out.parquet").exists().then(|| ws.read_output());
    let rerun = (run.status.code() == Some(0)).then(|| {
        std::fs::remove_file(ws.path("out.parquet")).unwrap();
        let again = ws.run(&job, &[]);
        (again, ws.read_output(), sandbox.stats().requests - requests)
    });
    Outcome {
        dialect,
        batch,
        output,
        run,
        requests,
        rerun,
    }
}

/// Runs `f` over `items` on a few threads, keeping the order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let chunks: Vec<&[T]> = items.chunks(items.len().div_ceil(4)).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| s.spawn(|| chunk.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn answering() -> Vec<Dialect> {
    Dialect::ALL
        .into_iter()
        .filter(|d| !matches!(d, Dialect::HtmlOnly | Dialect::Redirect))
        .collect()
}

#[test]
fn every_dialect_gives_every_row_exactly_right_in_batches_and_alone() {
    let cases: Vec<(Dialect, usize)> = answering()
        .into_iter()
        .flat_map(|d| [(d, 10), (d, 1)])
        .collect();
    let outcomes = in_parallel(&cases, |(d, batch)| run_twice(*d, *batch));
    let reference = enrichment(
        outcomes[0]
            .output
            .as_ref()
            .expect("the documented dialect ran"),
    );
    let statuses: std::collections::HashSet<_> = strings(&reference, "phone_status")
        .into_iter()
        .flatten()
        .collect();
    for status in ["ok", "not_found", "invalid_number"] {
        assert!(
            statuses.contains(status),
            "the export has no `{status}` row"
        );
    }
    for o in &outcomes {
        let what = format!("{:?} in batches of {}", o.dialect, o.batch);
        assert_exit(&o.run, 0);
        let output = enrichment(o.output.as_ref().unwrap());
        assert!(
            output.equals_missing(&reference),
            "{what}: the output differs"
        );
        let (again, from_store, asked) = o.rerun.as_ref().unwrap();
        assert_exit(again, 0);
        assert_eq!(*asked, 0, "{what}: the rerun asked the provider");
        assert!(
            enrichment(from_store).equals_missing(&reference),
            "{what}: the state store holds other answers than the run wrote"
        );
        eprintln!("{what}: exit 0, {} requests", o.requests);
    }
}

#[test]
fn wrong_credentials_in_every_form_stop_after_at_most_two_requests() {
    let outcomes = in_parallel(&answering(), |d| {
        let (ws, sandbox, job) = setup(*d, 10);
        let out = ws.run_env(&job, &[], WRONG_PASSWORD);
        (
            *d,
            out,
            sandbox.stats().requests,
            ws.path("out.parquet").exists(),
        )
    });
    for (dialect, out, requests, written) in outcomes {
        assert_exit(&out, 5);
        assert!(
            requests <= 2,
            "{dialect:?}: {requests} requests with a wrong password"
        );
        assert!(!written, "{dialect:?}: an output was written");
        assert!(
            !stderr(&out).contains("wrong"),
            "{dialect:?}: the password was printed"
        );
        eprintln!("{dialect:?}, wrong password: exit 5 after {requests} request(s)");
    }
}

#[test]
fn a_server_that_only_serves_html_stops_after_two_requests_and_keeps_them() {
    for batch in [10, 1] {
        let (ws, sandbox, job) = setup(Dialect::HtmlOnly, batch);
        let report = ws.path("report.json");
        let out = ws.run(&job, &["--report", report.to_str().unwrap()]);
        assert_exit(&out, 4);
        assert_eq!(sandbox.stats().requests, 2, "batches of {batch}");
        // The output is written, every number `failed`; nothing is stored.
        let df = ws.read_output();
        let status: Vec<_> = strings(&df, "phone_status").into_iter().flatten().collect();
        assert!(
            status
                .iter()
                .all(|s| s == "failed" || s == "invalid_number"),
            "{status:?}"
        );
        assert!(status.iter().any(|s| s == "failed"));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let kept = report["summary"]["rejected_answers"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(kept.len(), 2, "{report}");
        let first = Path::new(kept[0].as_str().unwrap());
        assert!(
            first.starts_with(ws.path("state").join("rejected")),
            "{first:?}"
        );
        let text = std::fs::read_to_string(first).unwrap();
        assert!(
            text.contains("<!DOCTYPE html>") && text.contains("an HTML page"),
            "{text}"
        );
        assert_stderr_contains(&out, "no request");
    }
}

#[test]
fn a_redirect_is_never_followed_and_names_where_it_points() {
    for batch in [10, 1] {
        let (ws, sandbox, job) = setup(Dialect::Redirect, batch);
        let out = ws.run(&job, &[]);
        assert_exit(&out, 2);
        assert_stderr_contains(&out, "https://smsc.example/sys/info.php");
        assert_stderr_contains(&out, "provider.base_url");
        assert_eq!(sandbox.stats().requests, 1);
        assert!(!ws.path("out.parquet").exists());
    }
}

/// A Russian mobile number the sandbox of these tests finds an operator for.
fn found_number() -> u64 {
    (79161234567..)
        .find(|n| {
            phone_enrich::provider::sandbox::operator_of(phone_enrich::normalize::E164(*n), 25)
                .is_some()
        })
        .unwrap()
}

/// `phone-enrich probe` against `dialect`, with `env` for credentials.
fn probe(dialect: Dialect, env: &[(&str, &str)]) -> (Output, String) {
    let (ws, sandbox, job) = setup(dialect, 10);
    let phone = format!("+{}", found_number());
    let out = ws.command("probe", &job, &["--phone", &phone], env);
    assert_eq!(
        sandbox.stats().requests,
        1,
        "{dialect:?}: probe sends one request"
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("probe, {dialect:?}:\n{stdout}");
    (out, stdout)
}

#[test]
fn probe_shows_the_raw_answer_what_it_means_and_whether_a_run_takes_it() {
    let (out, stdout) = probe(Dialect::Cp1251Unlabelled, &[]);
    assert_exit(&out, 0);
    let number = found_number();
    for line in [
        format!("sent      POST get_operator=1 login=sandbox psw=*** phone={number}"),
        "read as windows-1251, Json".to_string(),
        format!("parsed    {number} ok: Россия,"),
        "verdict   accepted".to_string(),
    ] {
        assert!(stdout.contains(&line), "`{line}` missing");
    }
    let (out, stdout) = probe(Dialect::ErrorText, WRONG_PASSWORD);
    assert_exit(&out, 5);
    assert!(
        stdout.contains("  | ERROR = 2 (authorise error)"),
        "{stdout}"
    );
    assert!(stdout.contains("verdict   refused: the provider refused the credentials"));
    assert!(
        !stdout.contains("wrong") && !stderr(&out).contains("wrong"),
        "the password shows"
    );
    let (out, stdout) = probe(Dialect::HtmlOnly, &[]);
    assert_exit(&out, 4);
    assert!(stdout.contains("  | <!DOCTYPE html>"), "{stdout}");
    assert!(stdout.contains("verdict   not accepted"), "{stdout}");
}
