//! What people and orchestrators see: JSON progress events, the report, the plan, the Parquet
//! metadata, every exit code, and the terminal UI under a pseudo-terminal.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::common::*;

const PASSWORD: &str = "pw-7f3a9c-secret";

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn without_a_terminal_progress_is_json_events_and_the_plan_matches_the_report() {
    let Setup { ws, sandbox, job } = setup(
        700,
        41,
        &format!("password = \"{PASSWORD}\"\n"),
        "batch_size = 15\n",
    );

    let plan = Command::new(BIN)
        .args(["plan", "--format", "json"])
        .arg(&job)
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    assert_exit(&plan, 0);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(sandbox.stats().requests, 0, "plan sent a request");

    let out = ws.run_env(
        &job,
        &[
            "--log-format",
            "json",
            "--progress-every",
            "200ms",
            "--report",
            "report.json",
        ],
        &[("SMSC_PASSWORD", PASSWORD)],
    );
    assert_exit(&out, 0);
    let events = json_lines(&stderr(&out));
    let progress: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "progress" && e["phase"] == "lookups")
        .collect();
    assert!(
        progress.len() >= 3,
        "{} lookup progress events",
        progress.len()
    );
    for key in [
        "done",
        "total",
        "rate_per_s",
        "eta_s",
        "cached",
        "requests",
        "retries",
        "errors",
        "failed",
        "timestamp",
        "level",
    ] {
        assert!(
            progress[0].get(key).is_some(),
            "progress event lacks `{key}`: {}",
            progress[0]
        );
    }
    let done: Vec<u64> = progress
        .iter()
        .map(|e| e["done"].as_u64().unwrap())
        .collect();
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {done:?}"
    );
    assert_eq!(progress[0]["total"], plan["to_look_up"]);
    assert!(
        events.iter().any(|e| e["event"] == "summary"),
        "no summary event"
    );
    let logged_plan = events.iter().find(|e| e["event"] == "plan");
    let logged_plan = logged_plan.expect("no plan event");
    assert_eq!(logged_plan["to_look_up"], plan["to_look_up"]);

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "success");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(
        report["summary"]["plan"], plan,
        "the plan's figures differ from the run's"
    );
    assert_eq!(
        report["summary"]["requests"].as_u64(),
        Some(sandbox.stats().requests)
    );
    let cells: u64 = report["summary"]["cells_by_status"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(cells, 700, "cells by status do not add up to the rows");
    assert!(!report["summary"]["top_operators"]
        .as_array()
        .unwrap()
        .is_empty());

    // The output carries the settings and the summary, never the password.
    let kv = parquet_metadata(&ws.path("out.parquet"));
    assert_eq!(
        kv.get("provider.batch_size").map(String::as_str),
        Some("15")
    );
    assert_eq!(kv.get("job.name").map(String::as_str), Some("job"));
    let summary: serde_json::Value = serde_json::from_str(&kv["phone_enrich.summary"]).unwrap();
    assert_eq!(summary["plan"], plan);
    assert!(
        kv.values().all(|v| !v.contains(PASSWORD)),
        "the password is in the metadata"
    );
    assert!(
        !stderr(&out).contains(PASSWORD),
        "the password is in the logs"
    );
    assert!(
        !std::fs::read_to_string(ws.path("report.json"))
            .unwrap()
            .contains(PASSWORD),
        "the password is in the report"
    );
}

#[test]
fn more_failed_numbers_than_allowed_exit_4_with_the_output_written() {
    let Setup {
        ws,
        sandbox: _sandbox,
        job,
    } = setup(
        150,
        42,
        "faults = { http_5xx = 1.0 }\n",
        "max_retries = 0\n",
    );
    let out = ws.run(&job, &["--report", "report.json"]);
    assert_exit(&out, 4);
    assert_stderr_contains(&out, "max_failed_ratio");
    assert!(
        ws.path("out.parquet").exists(),
        "the output is written all the same"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "too_many_failed");
    assert_eq!(report["exit_code"], 4);
    // Allowed by the job, the same run succeeds.
    let out = ws.run(&job, &["--set", "output.max_failed_ratio=1.0"]);
    assert_exit(&out, 0);
}

#[test]
fn an_output_that_cannot_be_written_is_an_internal_error_with_answers_kept() {
    let ws = Workspace::new();
    // 100,000 rows over about 2,000 numbers: a small cache, a large output.
    let status = Command::new(BIN)
        .args(["generate", "--rows", "100000", "--distinct-ratio", "0.02"])
        .arg(ws.path("big.csv"))
        .status()
        .unwrap();
    assert!(status.success());
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let job = ws.job(
        "job.toml",
        "big.csv",
        "",
        &provider_for(&sandbox, "batch_size = 200\n"),
    );
    assert_exit(&ws.run(&job, &["--output", "first.parquet"]), 0);
    assert!(
        std::fs::metadata(ws.path("first.parquet")).unwrap().len() > 2 << 20,
        "the output is too small to hit the limit"
    );
    let requests = sandbox.stats().requests;

    // Files may not grow past 1 MB, as on a full disk: writing the output fails.
    let mut cmd = Command::new(BIN);
    cmd.arg("run").arg(&job).current_dir(ws.dir.path());
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_exit(&out, 1);
    assert_stderr_contains(&out, "out.parquet");
    assert!(!ws.path("out.parquet").exists());
    let leftovers = temp_files(ws.dir.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        sandbox.stats().requests,
        requests,
        "answers were asked again"
    );
}

#[test]
fn validate_checks_a_job_without_reading_data() {
    let ws = Workspace::new();
    ws.write("in.csv", "id,phone\n1,89161234567\n");
    let good = ws.write("good.toml", "[input]\npath = \"in.csv\"\nphone_columns = [\"phone\"]\n[output]\npath = \"out.parquet\"\n[provider]\nkind = \"sandbox\"\n");
    let smsc = ws.write("smsc.toml", "[input]\npath = \"in.csv\"\nphone_columns = [\"phone\"]\n[output]\npath = \"out.parquet\"\n[provider]\nkind = \"smsc\"\n");
    type Case<'a> = (
        &'a std::path::Path,
        Vec<&'a str>,
        Vec<(&'a str, &'a str)>,
        i32,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (&good, vec![], vec![], 0, "valid"),
        (
            &good,
            vec!["--set", "provider.batch_size=0"],
            vec![],
            2,
            "provider.batch_size",
        ),
        (
            &good,
            vec!["--input", "missing.csv"],
            vec![],
            2,
            "missing.csv",
        ),
        (&smsc, vec![], vec![], 2, "SMSC_LOGIN"),
        (
            &smsc,
            vec![],
            vec![("SMSC_LOGIN", "me"), ("SMSC_PASSWORD", "pw")],
            0,
            "valid",
        ),
    ];
    for (job, args, env, code, want) in cases {
        let mut cmd = Command::new(BIN);
        cmd.arg("validate")
            .arg(job)
            .args(&args)
            .current_dir(ws.dir.path())
            .env_remove("SMSC_LOGIN")
            .env_remove("SMSC_PASSWORD");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_exit(&out, code);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(all.contains(want), "{args:?}: lacks `{want}`: {all}");
    }
    assert!(!ws.path("state").exists(), "validate opened the state");
}

#[test]
fn on_a_terminal_the_bars_move() {
    let Setup {
        ws,
        sandbox: _sandbox,
        job,
    } = setup(500, 44, "", "batch_size = 15\n");
    // `script` runs the binary under a pseudo-terminal and copies what it draws to stdout.
    let command = format!("{BIN} run {}", job.display());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(ws.dir.path())
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "150")
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("lookups ["),
        "no lookup bar drawn:\n{screen}"
    );
    assert!(screen.contains("ETA"), "no ETA:\n{screen}");
    assert!(
        screen.contains("requests,") && screen.contains("retries"),
        "no figures beside the bar:\n{screen}"
    );
    // The bar was redrawn as it moved: several different counts were shown.
    let counts: std::collections::HashSet<&str> = screen
        .split("] ")
        .skip(1)
        .filter_map(|rest| rest.split('/').next())
        .filter(|c| c.chars().all(|ch| ch.is_ascii_digit() || ch == ','))
        .collect();
    assert!(counts.len() >= 3, "the bar did not move: {counts:?}");
    // Log lines were printed above the bars, whole.
    assert!(
        screen.contains("INFO") && screen.contains("plan"),
        "{screen}"
    );
    // Rates are whole numbers with their unit.
    let rates: Vec<&str> = screen
        .split(" numbers/s")
        .map(|before| before.rsplit(' ').next().unwrap_or(""))
        .take(screen.matches(" numbers/s").count())
        .collect();
    assert!(!rates.is_empty(), "no rate in numbers/s:\n{screen}");
    assert!(
        rates
            .iter()
            .all(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit() || c == ',')),
        "rates not whole numbers: {rates:?}"
    );
    // The run ends with a table a person reads at a glance, not the long summary log line.
    let table = screen
        .split("phone-enrich: done")
        .nth(1)
        .unwrap_or_else(|| panic!("no closing table:\n{screen}"));
    for row in [
        "rows",
        "phone cells",
        "numbers",
        "requests",
        "time",
        "output",
    ] {
        assert!(
            table.lines().any(|l| l.trim_start().starts_with(row)),
            "no `{row}` row in the closing table:\n{table}"
        );
    }
    assert!(table.contains("out.parquet"), "{table}");
    assert!(
        !screen.contains("summary"),
        "the summary log line on a terminal:\n{screen}"
    );
}
