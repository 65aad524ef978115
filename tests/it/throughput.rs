//! Throughput past one login (issue 12): several accounts, batches as long as the provider takes,
//! shards exported and imported, through the binary against sandboxes at short windows.

use crate::common::*;

/// The sandbox's logins `a`, `b` and `c`, at the fast windows (20 requests per 2 s each).
const THREE_LOGINS: &str = "accounts = [\"a:pa\", \"b:pb\", \"c:pc\"]\n";

/// A workspace with `rows` generated rows, a sandbox accepting [`THREE_LOGINS`], an accounts
/// file holding `accounts`, and `job.toml` sending through it with `provider` lines.
fn with_accounts(rows: u64, accounts: &str, provider: &str) -> Setup {
    let ws = Workspace::new();
    generate(&ws, "in.csv", rows, 12);
    let sandbox = SandboxProcess::start(ws.dir.path(), &with_defaults(FAST_SANDBOX, THREE_LOGINS));
    ws.write_secret("accounts", accounts);
    let provider = format!("accounts_file = \"accounts\"\n{provider}");
    let job = ws.job("job.toml", "in.csv", "", &provider_for(&sandbox, &provider));
    Setup { ws, sandbox, job }
}

#[test]
fn three_accounts_each_keep_their_limit_and_run_at_once() {
    let Setup { ws, sandbox, job } = with_accounts(
        2000,
        "# three logins\na:pa\nb:pb\nc:pc\n",
        "batch_size = 10\nconcurrency = 4\n",
    );
    assert_exit(&ws.run(&job, &["--report", "report.json"]), 0);
    let stats = sandbox.stats();
    assert!(stats.errors.is_empty(), "errors: {:?}", stats.errors);
    assert!(stats.requests > 100, "{} requests", stats.requests);
    for login in ["a", "b", "c"] {
        let its = &stats.logins[login];
        assert!(its.max_in_window <= 20, "{login}: {its:?}");
        assert!(
            its.requests as f64 >= stats.requests as f64 / 4.0,
            "{login}: {its:?}"
        );
    }
    // The fullest window over all logins held more than two and a half logins' limits: the
    // three ran at once, so the run needs 0.4 of the windows one login would.
    assert!(
        stats.max_in_window >= 50,
        "the fullest 2 s window held {} requests",
        stats.max_in_window
    );
    let report = ws.report("report.json");
    let accounts = report["summary"]["accounts"].as_array().unwrap();
    let logins: Vec<&str> = accounts
        .iter()
        .map(|a| a["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["a", "b", "c"]);
    let requests: u64 = accounts
        .iter()
        .map(|a| a["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, report["summary"]["requests"].as_u64().unwrap());
    assert_eq!(report["summary"]["plan"]["accounts"], 3);
    let statuses = strings(&ws.read_output(), "phone_status");
    assert!(!statuses.iter().any(|s| s.as_deref() == Some("failed")));
    eprintln!(
        "three logins: {} requests, fullest window {} (per login {:?})",
        stats.requests,
        stats.max_in_window,
        ["a", "b", "c"].map(|l| stats.logins[l].max_in_window)
    );
}

#[test]
fn a_refused_account_of_three_is_dropped_by_name_and_the_run_completes() {
    let Setup { ws, sandbox, job } =
        with_accounts(600, "a:pa\nb:pb\nc:hunter2\n", "batch_size = 10\n");
    let out = ws.run(&job, &["--report", "report.json"]);
    assert_exit(&out, 0);
    let log = stderr(&out);
    assert!(log.contains("`c`"), "the login is named:\n{log}");
    assert!(!log.contains("hunter2"), "the password is shown:\n{log}");
    let stats = sandbox.stats();
    assert_eq!(stats.logins["c"].requests, 1, "{:?}", stats.logins["c"]);
    let report = ws.report("report.json");
    let c = &report["summary"]["accounts"][2];
    assert_eq!(c["login"], "c");
    assert!(c["dropped"].as_str().unwrap().contains("error 2"), "{c}");
    assert!(!report.to_string().contains("hunter2"));
    let statuses = strings(&ws.read_output(), "phone_status");
    assert!(!statuses.iter().any(|s| s.as_deref() == Some("failed")));

    // Every account refused: exit 5, one request each, every login named.
    ws.write_secret("accounts", "a:wrong\nb:wrong\n");
    let out = ws.run(&job, &["--state", "state-refused"]);
    assert_exit(&out, 5);
    assert!(stderr(&out).contains("login `a`") && stderr(&out).contains("login `b`"));
    let after = sandbox.stats();
    assert_eq!(after.logins["a"].requests, stats.logins["a"].requests + 1);
    assert_eq!(after.logins["b"].requests, stats.logins["b"].requests + 1);
}

#[test]
fn an_accounts_file_others_can_read_or_beside_smsc_login_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let Setup { ws, sandbox, job } = with_accounts(50, "a:pa\n", "");
    let path = ws.path("accounts");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ws.run(&job, &[]);
    assert_exit(&out, 2);
    assert_stderr_contains(&out, "chmod 600");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = ws.run_env(&job, &[], &[("SMSC_LOGIN", "a"), ("SMSC_PASSWORD", "pa")]);
    assert_exit(&out, 2);
    assert_stderr_contains(&out, "both set");
    // Nothing was sent.
    assert_eq!(sandbox.stats().requests, 0);
    // The same file given by SMSC_ACCOUNTS_FILE instead of the job.
    let bare = ws.job("bare.toml", "in.csv", "", &provider_for(&sandbox, ""));
    let accounts = path.to_str().unwrap();
    assert_exit(
        &ws.run_env(&bare, &[], &[("SMSC_ACCOUNTS_FILE", accounts)]),
        0,
    );
    assert!(sandbox.stats().logins["a"].requests > 0);
}

#[test]
fn auto_batches_settle_under_the_providers_longest_and_the_next_run_starts_there() {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 90_000, 13);
    let fast = "request_limit = \"1000/1s\"\nidentical_limit = \"3/1s\"\n";
    let sandbox = SandboxProcess::start(
        ws.dir.path(),
        &format!("{fast}max_list = 250\nlatency = \"2ms\"\n"),
    );
    let provider = format!("{fast}batch_size = \"auto\"\nconcurrency = 4\n");
    let job = ws.job("job.toml", "in.csv", "", &provider_for(&sandbox, &provider));
    let plan = |sets: &[&str]| -> serde_json::Value {
        let out = ws.command("plan", &job, &[&["--format", "json"], sets].concat(), &[]);
        assert_exit(&out, 0);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let fixed = plan(&["--set", "provider.batch_size=250"])["requests"]
        .as_u64()
        .unwrap();
    let before = plan(&[]);
    assert_eq!(before["batch_size"], 100);
    assert!(before["batch_size_reason"]
        .as_str()
        .unwrap()
        .starts_with("auto: starts at 100"));

    assert_exit(&ws.run(&job, &["--report", "report.json"]), 0);
    let summary = &ws.report("report.json")["summary"];
    let settled = summary["batch_size"].as_u64().unwrap();
    let requests = summary["requests"].as_u64().unwrap();
    assert!(
        (235..=250).contains(&settled),
        "settled at {settled}: {summary}"
    );
    assert!(
        requests as f64 <= 1.1 * fixed as f64,
        "{requests} requests; batches of 250 take {fixed}"
    );
    let refused = sandbox.stats().errors.get("1").copied().unwrap_or(0);
    assert!(refused <= 6, "{refused} batches refused for their length");
    // The state remembers it: the next plan starts there, and says why.
    let after = plan(&[]);
    assert_eq!(after["batch_size"].as_u64(), Some(settled));
    let why = after["batch_size_reason"].as_str().unwrap();
    assert!(why.contains("remembered from an earlier run"), "{why}");
    eprintln!("auto: settled at {settled} with {requests} requests ({fixed} in batches of 250), {refused} refused: {why}");
}

/// The numbers an export holds.
fn exported_numbers(ws: &Workspace, name: &str) -> std::collections::BTreeSet<String> {
    let df = read_parquet(&ws.path(name));
    strings(&df, "e164").into_iter().flatten().collect()
}

#[test]
fn three_shards_exported_and_imported_give_a_single_runs_output_without_a_request_more() {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 1500, 14);
    let sandbox = SandboxProcess::start(ws.dir.path(), &with_defaults(FAST_SANDBOX, THREE_LOGINS));
    let job = ws.job(
        "job.toml",
        "in.csv",
        "",
        &provider_for(&sandbox, "batch_size = 20\n"),
    );
    let single = ws.run(&job, &["--state", "single", "--output", "single.parquet"]);
    assert_exit(&single, 0);
    let asked_once = sandbox.stats().logins["sandbox"].numbers_answered;

    // Fan out: each shard with its own login and state, writing no output; then its export.
    for (shard, login) in [("1/3", "a"), ("2/3", "b"), ("3/3", "c")] {
        let state = format!("shard-{login}");
        let report = format!("{login}.json");
        let args = ["--shard", shard, "--state", &state, "--report", &report];
        let password = format!("p{login}");
        let env = [("SMSC_LOGIN", login), ("SMSC_PASSWORD", password.as_str())];
        assert_exit(&ws.run_env(&job, &args, &env), 0);
        let report = ws.report(&report);
        assert_eq!(report["output"], serde_json::Value::Null, "{report}");
        assert_eq!(report["summary"]["plan"]["shard"], shard);
        let export = format!("{login}.parquet");
        assert_exit(&cache(&ws, &["export", &export, "--state", &state]), 0);
    }
    assert!(!ws.path("out.parquet").exists(), "a shard wrote the output");

    // No number was asked by two shards, and together they asked every number once.
    let stats = sandbox.stats();
    let by_shard: u64 = ["a", "b", "c"]
        .map(|l| stats.logins[l].numbers_answered)
        .iter()
        .sum();
    assert_eq!(by_shard, asked_once);
    let shards = ["a", "b", "c"].map(|l| exported_numbers(&ws, &format!("{l}.parquet")));
    assert!(shards.iter().all(|s| !s.is_empty()), "an empty shard");
    let all: std::collections::BTreeSet<String> = shards.iter().flatten().cloned().collect();
    assert_eq!(
        all.len(),
        shards.iter().map(|s| s.len()).sum::<usize>(),
        "shards overlap"
    );
    // The plan of the fan-out says as much before it.
    let plan = ws.command("plan", &job, &["--shards", "3", "--format", "json"], &[]);
    assert_exit(&plan, 0);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let largest = shards.iter().map(|s| s.len()).max().unwrap() as u64;
    assert_eq!(
        plan["sharded"]["largest_shard"].as_u64(),
        Some(largest),
        "{plan}"
    );
    let least = |v: &serde_json::Value| v["least_time_s"].as_f64().unwrap();
    assert!(least(&plan["sharded"]) < least(&plan), "{plan}");

    // Fan in: every export imported into one state; the last run asks nothing.
    let out = cache(
        &ws,
        &[
            "import",
            "a.parquet",
            "b.parquet",
            "c.parquet",
            "--state",
            "final",
        ],
    );
    assert_exit(&out, 0);
    let requests_before = sandbox.stats().requests;
    assert_exit(
        &ws.run(&job, &["--state", "final", "--report", "final.json"]),
        0,
    );
    assert_eq!(
        sandbox.stats().requests,
        requests_before,
        "the last run sent requests"
    );
    assert_eq!(ws.report("final.json")["summary"]["requests"], 0);
    let merged = enrichment(&ws.read_output());
    let reference = enrichment(&read_parquet(&ws.path("single.parquet")));
    assert!(merged.equals_missing(&reference), "the outputs differ");
    eprintln!(
        "shards: {:?} numbers, {} in all, {asked_once} asked by one run",
        shards.map(|s| s.len()),
        all.len()
    );
}
