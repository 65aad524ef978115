//! Pacing, faults, kills and resumes, the cache: through the binary against sandboxes at short
//! windows (20 requests per 2 s).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use polars::prelude::*;

/// The enrichment columns with the row id, to compare outputs row by row.
fn with_id(df: &DataFrame) -> DataFrame {
    df.select(["id"])
        .unwrap()
        .hstack(enrichment(df).columns())
        .unwrap()
}

fn statuses(df: &DataFrame) -> Vec<Option<String>> {
    strings(df, "phone_status")
}

/// Runs `job` to completion on a fresh state and returns the output's enrichment.
fn reference_output(ws: &Workspace, job: &Path, state: &str) -> DataFrame {
    let out = ws.run(job, &["--state", state, "--output", "reference.parquet"]);
    assert_exit(&out, 0);
    with_id(&read_parquet(&ws.path("reference.parquet")))
}

#[test]
fn a_clean_run_at_the_limit_fills_windows_and_never_gets_error_9() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    generate(&ws, "in.csv", 800, 21);
    let job = ws.job(
        "job.toml",
        "in.csv",
        "",
        &provider_for(&sandbox, "batch_size = 10\nconcurrency = 8\n"),
    );
    let started = Instant::now();
    assert_exit(&ws.run(&job, &[]), 0);
    let elapsed = started.elapsed().as_secs_f64();
    let stats = sandbox.stats();
    assert!(stats.errors.is_empty(), "errors: {:?}", stats.errors);
    assert!(
        stats.requests > 40,
        "{} requests is too few to fill windows",
        stats.requests
    );
    // Never over the limit in any window, and the limit is reached: within 3% of it.
    assert!(
        stats.max_in_window <= 20,
        "{} requests in one window",
        stats.max_in_window
    );
    assert!(
        stats.max_in_window as f64 >= 20.0 * 0.97,
        "only {} requests in the fullest window",
        stats.max_in_window
    );
    assert!(stats.max_concurrent <= 8);
    eprintln!(
        "clean run: {} requests in {elapsed:.2} s, {} in the fullest 2 s window",
        stats.requests, stats.max_in_window
    );
}

#[test]
fn faults_on_the_wire_end_with_every_number_answered_as_without_them() {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 600, 22);
    let clean = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let provider = "batch_size = 20\ntimeout = \"400ms\"\nmax_retries = 8\n";
    let reference = reference_output(
        &ws,
        &ws.job("clean.toml", "in.csv", "", &provider_for(&clean, provider)),
        "state-clean",
    );

    let faulty = SandboxProcess::start(
        ws.dir.path(),
        &format!("{FAST_SANDBOX}seed = 5\nfaults = {{ http_5xx = 0.10, hang = 0.05, drop = 0.05, truncate = 0.05 }}\n"),
    );
    let job = ws.job(
        "faulty.toml",
        "in.csv",
        "",
        &provider_for(&faulty, provider),
    );
    assert_exit(&ws.run(&job, &[]), 0);
    let df = ws.read_output();
    assert!(
        !statuses(&df).contains(&Some("failed".into())),
        "a number failed"
    );
    assert!(
        with_id(&df).equals_missing(&reference),
        "the output differs from the fault-free run"
    );
    let stats = faulty.stats();
    let injected: u64 = stats.faults.values().sum();
    assert!(
        injected >= 3,
        "only {injected} faults were injected: {:?}",
        stats.faults
    );
    assert!(
        !stats.errors.contains_key("9"),
        "error 9: {:?}",
        stats.errors
    );
    assert!(
        stats.max_identical_in_window <= 3,
        "{} identical requests in one window",
        stats.max_identical_in_window
    );
}

#[test]
fn failed_numbers_are_not_kept_and_the_next_run_asks_again() {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 100, 33);
    let broken = SandboxProcess::start(
        ws.dir.path(),
        &format!("{FAST_SANDBOX}faults = {{ http_5xx = 1.0 }}\n"),
    );
    let job = ws.job(
        "broken.toml",
        "in.csv",
        "",
        &provider_for(&broken, "max_retries = 1\n"),
    );
    // Every number failed: more than output.max_failed_ratio allows, but the output is written.
    assert_exit(&ws.run(&job, &[]), 4);
    let df = ws.read_output();
    let status = statuses(&df);
    let e164 = strings(&df, "phone_e164");
    for i in 0..df.height() {
        if e164[i].is_some() {
            assert_eq!(status[i].as_deref(), Some("failed"), "row {i}");
        }
    }
    let working = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let job = ws.job("working.toml", "in.csv", "", &provider_for(&working, ""));
    assert_exit(&ws.run(&job, &[]), 0);
    assert!(!statuses(&ws.read_output()).contains(&Some("failed".into())));
    assert!(
        working.stats().numbers_answered > 0,
        "the failed numbers were not asked again"
    );
}

#[test]
fn injected_error_9_pauses_and_the_run_still_completes() {
    let Setup { ws, sandbox, job } = setup(
        300,
        23,
        "faults = { limited = 0.25 }\n",
        "batch_size = 20\n",
    );
    let out = ws.run(&job, &[]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("error 9"),
        "the slowdown is not logged"
    );
    assert!(!statuses(&ws.read_output()).contains(&Some("failed".into())));
    assert!(sandbox.stats().faults.get("limited").copied().unwrap_or(0) > 0);
}

#[test]
fn error_4_past_the_allowed_wait_stops_resumably() {
    let Setup { ws, sandbox, job } = setup(
        200,
        24,
        "faults = { blocked = 1.0 }\n",
        "blocked_pause = \"100ms\"\nmax_blocked_wait = \"350ms\"\n",
    );
    let started = Instant::now();
    let out = ws.run(&job, &[]);
    assert_exit(&out, 6);
    assert_stderr_contains(&out, "run the same command again");
    // Paused 100 + 200 ms, then gave up rather than waiting 400 ms more.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        sandbox.stats().requests <= 4,
        "{} requests while blocked",
        sandbox.stats().requests
    );
    assert!(!ws.path("out.parquet").exists());
}

#[test]
fn batches_the_provider_rejects_are_split_down_to_the_number() {
    let Setup { ws, sandbox, job } = setup(
        400,
        25,
        "reject_percent = 3\nnot_found_percent = 0\n",
        "batch_size = 16\n",
    );
    assert_exit(&ws.run(&job, &[]), 0);
    let df = ws.read_output();
    // A number the provider rejects is `invalid_number` with its E.164 kept; the rest of its
    // list is answered.
    let e164 = strings(&df, "phone_e164");
    let status = statuses(&df);
    let rejected = (0..df.height())
        .filter(|&i| e164[i].is_some() && status[i].as_deref() == Some("invalid_number"))
        .count();
    assert!(rejected > 0, "no number was rejected");
    assert!(!status.contains(&Some("failed".into())));
    // Only the rejected numbers: about 3% of the distinct numbers. Condemning a whole list of 16
    // for one number in it would mark about 40%.
    let valid: std::collections::HashSet<_> = e164.iter().flatten().collect();
    let rejected_numbers: std::collections::HashSet<_> = (0..df.height())
        .filter(|&i| status[i].as_deref() == Some("invalid_number"))
        .filter_map(|i| e164[i].as_ref())
        .collect();
    let share = rejected_numbers.len() as f64 / valid.len() as f64;
    assert!(
        share < 0.08,
        "{} of {} numbers marked invalid: whole batches were condemned",
        rejected_numbers.len(),
        valid.len()
    );
    let stats = sandbox.stats();
    assert!(stats.errors.get("1").copied().unwrap_or(0) > 0);
}

#[test]
fn a_numbers_limit_is_kept_when_the_provider_counts_numbers() {
    let Setup { ws, sandbox, job } = setup(
        500,
        26,
        "request_limit = \"1000/2s\"\nnumber_limit = \"120/2s\"\n",
        "request_limit = \"1000/2s\"\nnumber_limit = \"120/2s\"\nbatch_size = 40\n",
    );
    assert_exit(&ws.run(&job, &[]), 0);
    let stats = sandbox.stats();
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    assert!(stats.requests >= 6);
}

#[test]
fn sigkill_at_any_point_then_resume_gives_the_uninterrupted_output() {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 900, 27);
    let provider = "batch_size = 10\nconcurrency = 4\n";
    let clean = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let reference = reference_output(
        &ws,
        &ws.job("clean.toml", "in.csv", "", &provider_for(&clean, provider)),
        "state-clean",
    );
    let clean_requests = clean.stats().requests;
    assert!(
        clean_requests >= 40,
        "{clean_requests} requests: too short a run to kill"
    );

    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let job = ws.job("job.toml", "in.csv", "", &provider_for(&sandbox, provider));
    // Killed when a share of each run's own lookups is done, as the run reports it: the same
    // moments of the work on any machine. The last run is killed as its lookups begin: what
    // two killed runs leave fits in one window, which can finish within one progress interval.
    let kills = [Some(0.25), Some(0.5), None];
    for share in kills {
        let mut run = RunningJob::start(&ws, &job, &[]);
        match share {
            Some(share) => run.wait_for_progress("lookups", share),
            None => run.wait_for(|e| e["message"] == "plan"),
        };
        run.child.kill().unwrap(); // SIGKILL
        let (code, log) = run.finish();
        assert_eq!(code, None, "the run ended before it was killed:\n{log}");
    }
    let out = ws.run(&job, &[]);
    assert_exit(&out, 0);
    let df = ws.read_output();
    assert!(
        with_id(&df).equals_missing(&reference),
        "the resumed output differs from the uninterrupted one"
    );
    let total = sandbox.stats().requests;
    let in_flight_bound = clean_requests + 4 * kills.len() as u64;
    assert!(
        total <= in_flight_bound,
        "{total} requests over kills and resumes; clean run {clean_requests}"
    );
    eprintln!(
        "kills: {} requests in all against {clean_requests} clean (extra {})",
        total,
        total.saturating_sub(clean_requests)
    );
    let leftovers = temp_files(ws.dir.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sigterm_stops_sending_keeps_answers_and_exits_resumably() {
    let Setup { ws, sandbox, job } = setup(900, 28, "", "batch_size = 10\n");
    let mut run = RunningJob::start(&ws, &job, &[]);
    run.wait_for_progress("lookups", 0.2);
    let at_signal = sandbox.stats().requests;
    run.signal(libc::SIGTERM);
    let (code, log) = run.finish();
    assert_eq!(code, Some(7), "{log}");
    assert!(log.contains("run the same command again"), "{log}");
    assert!(!ws.path("out.parquet").exists());
    // Nothing new is sent once stopped: at most the requests already past the pacer (one per
    // concurrency slot, and those the 50 ms watch let through) reach the provider afterwards.
    let before = sandbox.stats();
    assert!(
        before.requests <= at_signal + 8,
        "{} requests by the end, {at_signal} at the signal",
        before.requests
    );

    let out = ws.run(&job, &[]);
    assert_exit(&out, 0);
    let after = sandbox.stats();
    assert!(!statuses(&ws.read_output()).contains(&Some("failed".into())));
    let distinct: std::collections::HashSet<_> = strings(&ws.read_output(), "phone_e164")
        .into_iter()
        .flatten()
        .collect();
    // The rerun asked only for what the first did not get: in all, each number once, plus at
    // most the batches in flight when the signal came (4 of 10 numbers).
    assert!(
        after.numbers_answered as usize <= distinct.len() + 40,
        "{} numbers asked for {} distinct",
        after.numbers_answered,
        distinct.len()
    );
}

#[test]
fn a_rerun_with_new_numbers_asks_only_for_them() {
    let ws = Workspace::new();
    generate(&ws, "old.csv", 1000, 29);
    generate(&ws, "extra.csv", 60, 30);
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let job = ws.job(
        "job.toml",
        "old.csv",
        "",
        &provider_for(&sandbox, "batch_size = 50\n"),
    );
    assert_exit(&ws.run(&job, &[]), 0);
    let old = ws.read_output();
    let first = sandbox.stats();

    // The same export plus 5% more rows with other numbers.
    let old_text = std::fs::read_to_string(ws.path("old.csv")).unwrap();
    let extra_text = std::fs::read_to_string(ws.path("extra.csv")).unwrap();
    let extra_rows: String = extra_text
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    ws.write("new.csv", format!("{old_text}{extra_rows}"));
    assert_exit(&ws.run(&job, &["--input", "new.csv"]), 0);
    let new = ws.read_output();
    let old_numbers: std::collections::HashSet<_> =
        strings(&old, "phone_e164").into_iter().flatten().collect();
    let new_numbers: std::collections::HashSet<_> =
        strings(&new, "phone_e164").into_iter().flatten().collect();
    let added = new_numbers.difference(&old_numbers).count() as u64;
    assert!(added > 0);
    let second = sandbox.stats();
    assert_eq!(
        second.numbers_answered - first.numbers_answered,
        added,
        "asked for more than the new numbers"
    );
    eprintln!(
        "rerun with new rows: {added} new numbers, {} requests",
        second.requests - first.requests
    );
}

#[test]
fn a_state_directory_in_use_is_refused_naming_its_holder() {
    let Setup {
        ws,
        sandbox: _sandbox,
        job,
    } = setup(600, 31, "latency = \"300ms\"\n", "batch_size = 10\n");
    let mut first = Command::new(BIN)
        .arg("run")
        .arg(&job)
        .current_dir(ws.dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first run holds the directory once its LOCK file names it.
    let holder = format!("pid {} ", first.id());
    wait_until("the first run to hold the state directory", || {
        std::fs::read_to_string(ws.path("state/LOCK")).is_ok_and(|text| text.contains(&holder))
    });
    let out = ws.run(&job, &["--output", "second.parquet"]);
    let still_running = first.try_wait().unwrap().is_none();
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        still_running,
        "the first run ended before the second was refused"
    );
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("in use by another run")
            && stderr(&out).contains(&format!("pid {}", first.id())),
        "{}",
        stderr(&out)
    );
    assert!(!ws.path("second.parquet").exists());
}

#[test]
fn cache_stats_and_purge_through_the_binary() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    generate(&ws, "in.csv", 200, 32);
    let job = ws.job("job.toml", "in.csv", "", &provider_for(&sandbox, ""));
    assert_exit(&ws.run(&job, &[]), 0);
    let stats = Command::new(BIN)
        .args(["cache", "stats", "--json"])
        .arg(&job)
        .output()
        .unwrap();
    assert_exit(&stats, 0);
    let json: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let entries = json["entries"].as_u64().unwrap();
    assert_eq!(entries, sandbox.stats().numbers_answered);
    assert_eq!(
        json["hosts"]["sandbox"]["by_age"]["under_1d"].as_u64(),
        Some(entries)
    );
    let purge = Command::new(BIN)
        .args(["cache", "purge", "--older-than", "1d"])
        .arg(&job)
        .output()
        .unwrap();
    assert_exit(&purge, 0);
    assert!(String::from_utf8_lossy(&purge.stdout).contains("removed 0"));
    let purge = Command::new(BIN)
        .args(["cache", "purge", "--older-than", "0s"])
        .arg(&job)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&purge.stdout).contains(&format!("removed {entries}")));
}
