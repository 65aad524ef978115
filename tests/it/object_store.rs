//! Inputs, outputs and cache exchange files in object storage, against a real S3 server on
//! 127.0.0.1: moto, which `.ci/test` starts with a user whose signatures it checks, and whose
//! endpoint and credentials it exports as `PHONE_ENRICH_S3_*`. A test needing the server fails,
//! saying so, when they are missing. Buckets are made and read with boto3 (`s3.py`, AWS's own
//! client) so that the binary is never checked against itself; each test makes its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::*;

use crate::common::*;

/// The local S3 server, as `.ci/test` describes it.
struct S3 {
    endpoint: String,
    key_id: String,
    secret: String,
    python: String,
}

fn s3() -> S3 {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: this test needs the local S3 server (moto) that .ci/test \
                 starts on 127.0.0.1; run the tests through .ci/test"
            )
        })
    };
    S3 {
        endpoint: var("PHONE_ENRICH_S3_ENDPOINT"),
        key_id: var("PHONE_ENRICH_S3_KEY_ID"),
        secret: var("PHONE_ENRICH_S3_SECRET"),
        python: var("PHONE_ENRICH_PYTHON"),
    }
}

impl S3 {
    /// `s3.py ARGS`, which must succeed; its stdout.
    fn helper(&self, args: &[&str]) -> String {
        let out = self.helper_output(args);
        assert!(
            out.status.success(),
            "s3.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn helper_output(&self, args: &[&str]) -> Output {
        Command::new(&self.python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/s3.py"))
            .args(args)
            .output()
            .expect("the Python of .ci/test runs")
    }

    /// A new bucket of this test's own.
    fn bucket(&self, hint: &str) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pe-{hint}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.helper(&["mkbucket", &name]);
        name
    }

    fn put(&self, bucket: &str, key: &str, file: &Path) {
        self.helper(&["put", bucket, key, file.to_str().unwrap()]);
    }

    /// Downloads an object; `false` when there is none.
    fn get(&self, bucket: &str, key: &str, to: &Path) -> bool {
        let out = self.helper_output(&["get", bucket, key, to.to_str().unwrap()]);
        match out.status.code() {
            Some(0) => true,
            Some(3) => false,
            _ => panic!("s3.py get: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    fn keys(&self, bucket: &str) -> Vec<String> {
        self.helper(&["keys", bucket])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Multipart uploads begun in `bucket` and neither completed nor aborted.
    fn uploads(&self, bucket: &str) -> usize {
        self.helper(&["uploads", bucket]).trim().parse().unwrap()
    }

    /// The environment a user would set for this server.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

/// `phone-enrich ARGS` in the workspace with exactly `env` for storage and provider
/// credentials (none inherited).
fn run_bin(ws: &Workspace, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(ws.dir.path());
    for (name, _) in std::env::vars() {
        let credentials = ["AWS_", "GOOGLE_", "AZURE_", "GCE_", "SMSC_"];
        if credentials.iter().any(|prefix| name.starts_with(prefix)) {
            cmd.env_remove(name);
        }
    }
    // No gcloud application-default credentials file either.
    cmd.env("HOME", ws.dir.path());
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().expect("the binary runs")
}

/// A job reading `input` into `output` through `sandbox`.
fn write_job(ws: &Workspace, input: &str, output: &str, sandbox: &SandboxProcess) -> PathBuf {
    ws.write(
        "job.toml",
        format!(
            "[input]\npath = \"{input}\"\nphone_columns = [\"phone\"]\n\n[output]\npath = \"{output}\"\n\n[state]\ndir = \"state\"\n\n[provider]\n{}\n",
            provider_for(sandbox, "")
        ),
    )
}

fn job_path(job: &Path) -> &str {
    job.to_str().unwrap()
}

/// An output without `checked_at` (a time that differs between runs).
fn without_times(df: &DataFrame) -> DataFrame {
    df.drop("phone_checked_at").unwrap()
}

/// Files left in a directory, if it exists.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn an_object_url_is_never_written_as_a_local_path() {
    // Before object storage, `--output s3://b/o.parquet` wrote `./s3:/b/o.parquet` and exited 0.
    let ws = Workspace::new();
    generate(&ws, "in.csv", 50, 1);
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let job = write_job(&ws, "in.csv", "out.parquet", &sandbox);
    let cases = [
        ("hdfs://b/o.parquet", "unsupported URL scheme `hdfs`"),
        (
            "https://example.com/o.parquet",
            "unsupported URL scheme `https`",
        ),
        (
            "s3://b/o.parquet",
            "s3://b/o.parquet: no credentials for S3",
        ),
        ("s3://b/", "names a bucket or a folder"),
    ];
    for (output, want) in cases {
        let out = run_bin(&ws, &["run", job_path(&job), "--output", output], &[]);
        assert_exit(&out, 2);
        assert_stderr_contains(&out, want);
    }
    for (input, store) in [
        ("gs://b/in.csv", "no credentials for Google Cloud Storage"),
        (
            "az://container/in.csv",
            "no credentials for Azure Blob Storage",
        ),
    ] {
        let out = run_bin(&ws, &["run", job_path(&job), "--input", input], &[]);
        assert_exit(&out, 2);
        assert_stderr_contains(&out, &format!("{input}: {store}"));
    }
    // Credentials never travel in clear text off loopback.
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "secret".to_string()),
        ("AWS_ENDPOINT_URL", "http://10.0.0.1:9000".to_string()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
    ];
    let out = run_bin(
        &ws,
        &["run", job_path(&job), "--input", "s3://b/in.csv"],
        &env,
    );
    assert_exit(&out, 2);
    assert_stderr_contains(&out, "plain http off loopback");
    // A half-set pair of keys is no credentials either, and says which.
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", String::new()),
    ];
    let out = run_bin(
        &ws,
        &["run", job_path(&job), "--input", "s3://b/in.csv"],
        &env,
    );
    assert_exit(&out, 2);
    assert_stderr_contains(&out, "must be set together");
    // A secret in the job file is refused, and not repeated.
    let secret = "[storage]\naws_secret_access_key = \"hunter2\"\n";
    let text = std::fs::read_to_string(&job).unwrap() + secret;
    let with_secret = ws.write("secret.toml", text);
    let out = run_bin(&ws, &["validate", job_path(&with_secret)], &[]);
    assert_exit(&out, 2);
    assert_stderr_contains(
        &out,
        "storage.aws_secret_access_key: a secret is never a setting",
    );
    assert!(!stderr(&out).contains("hunter2"));
    for dir in ["s3:", "hdfs:", "https:"] {
        assert!(!ws.path(dir).exists(), "{dir} was written locally");
    }
    assert_eq!(sandbox.stats().requests, 0);
}

#[test]
fn csv_gz_in_from_a_bucket_and_parquet_out_to_it_match_local_files() {
    let s3 = s3();
    let ws = Workspace::new();
    generate(&ws, "in.csv.gz", 3_000, 7);
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let bucket = s3.bucket("csv");
    s3.put(&bucket, "exports/2026-12-05.csv.gz", &ws.path("in.csv.gz"));
    let job = write_job(&ws, "in.csv.gz", "local.parquet", &sandbox);
    assert_exit(&run_bin(&ws, &["run", job_path(&job)], &[]), 0);

    // A state of its own, so that this run looks every number up and reads its input twice.
    let input = format!("s3://{bucket}/exports/2026-12-05.csv.gz");
    let output = format!("s3://{bucket}/enriched/2026-12-05.parquet");
    let args = [
        "run",
        job_path(&job),
        "--input",
        &input,
        "--output",
        &output,
    ];
    let args = [&args[..], &["--state", "remote", "--report", "report.json"]].concat();
    let out = run_bin(&ws, &args, &s3.env());
    assert_exit(&out, 0);
    let report = ws.report("report.json");
    assert_eq!(report["summary"]["passes"], 2, "{report}");
    assert_eq!(report["output"], output.as_str(), "{report}");

    let got = ws.path("got.parquet");
    assert!(s3.get(&bucket, "enriched/2026-12-05.parquet", &got));
    let (remote, local) = (read_parquet(&got), read_parquet(&ws.path("local.parquet")));
    assert_eq!(remote.height(), 3_000);
    assert!(without_times(&remote).equals_missing(&without_times(&local)));
    let metadata = parquet_metadata(&got);
    assert_eq!(metadata["input.path"], input);
    assert!(metadata.values().all(|v| !v.contains(&s3.secret)));
    assert!(!stderr(&out).contains(&s3.secret));
    let mut keys = s3.keys(&bucket);
    keys.sort();
    assert_eq!(
        keys,
        ["enriched/2026-12-05.parquet", "exports/2026-12-05.csv.gz"]
    );
    assert_eq!(s3.uploads(&bucket), 0);
    assert_eq!(files_in(&ws.path("remote/spool")), Vec::<PathBuf>::new());
}

#[test]
fn parquet_in_from_a_bucket_matches_the_local_file() {
    let s3 = s3();
    let ws = Workspace::new();
    generate(&ws, "in.parquet", 2_000, 11);
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let bucket = s3.bucket("parquet");
    s3.put(&bucket, "in.parquet", &ws.path("in.parquet"));
    let job = write_job(&ws, "in.parquet", "local.parquet", &sandbox);
    assert_exit(&run_bin(&ws, &["run", job_path(&job)], &[]), 0);
    let input = format!("s3://{bucket}/in.parquet");
    for command in ["validate", "plan"] {
        let out = run_bin(
            &ws,
            &[command, job_path(&job), "--input", &input],
            &s3.env(),
        );
        assert_exit(&out, 0);
    }
    let args = [
        "run",
        job_path(&job),
        "--input",
        &input,
        "--output",
        "remote.parquet",
    ];
    assert_exit(&run_bin(&ws, &args, &s3.env()), 0);
    let (remote, local) = (
        read_parquet(&ws.path("remote.parquet")),
        read_parquet(&ws.path("local.parquet")),
    );
    assert!(without_times(&remote).equals_missing(&without_times(&local)));
    assert_eq!(files_in(&ws.path("state/spool")), Vec::<PathBuf>::new());
}

#[test]
fn cache_export_and_import_go_through_a_bucket() {
    let s3 = s3();
    let ws = Workspace::new();
    generate(&ws, "in.csv", 1_000, 3);
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let job = write_job(&ws, "in.csv", "out.parquet", &sandbox);
    assert_exit(&run_bin(&ws, &["run", job_path(&job)], &[]), 0);
    let bucket = s3.bucket("exchange");
    let url = format!("s3://{bucket}/shards/1.parquet");
    let export = run_bin(
        &ws,
        &["cache", "export", &url, "--state", "state"],
        &s3.env(),
    );
    assert_exit(&export, 0);
    assert_eq!(s3.keys(&bucket), ["shards/1.parquet"]);
    let import = run_bin(
        &ws,
        &["cache", "import", &url, "--state", "other"],
        &s3.env(),
    );
    assert_exit(&import, 0);
    let stats = |state: &str| {
        let out = run_bin(&ws, &["cache", "stats", "--json", "--state", state], &[]);
        assert_exit(&out, 0);
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        stats["hosts"].clone()
    };
    let imported = stats("other");
    assert!(
        imported["sandbox"]["by_status"]["ok"].as_u64().unwrap() > 0,
        "{imported}"
    );
    assert_eq!(imported, stats("state"));
    // A missing export is the input's fault, and changes nothing.
    let missing = format!("s3://{bucket}/shards/2.parquet");
    let out = run_bin(
        &ws,
        &["cache", "import", &missing, "--state", "other"],
        &s3.env(),
    );
    assert_exit(&out, 3);
    assert_stderr_contains(&out, &missing);
    assert_eq!(stats("other"), imported);
    assert_eq!(files_in(&ws.path("state/spool")), Vec::<PathBuf>::new());
    assert_eq!(files_in(&ws.path("other/spool")), Vec::<PathBuf>::new());
}

/// A Parquet input whose output is about 20 MiB (four parts of 5 MiB): 30 numbers, and a
/// column of random text zstd cannot shrink much.
fn large_input(ws: &Workspace) -> PathBuf {
    use rand::distr::{Alphanumeric, SampleString};
    let rows = 2_500;
    let mut rng = rand::rng();
    let phones: Vec<String> = (0..rows).map(|i| format!("+7916{:07}", i % 30)).collect();
    let blobs: Vec<String> = (0..rows)
        .map(|_| Alphanumeric.sample_string(&mut rng, 10_000))
        .collect();
    let mut df = df!("phone" => phones, "blob" => blobs).unwrap();
    let path = ws.path("large.parquet");
    let file = std::fs::File::create(&path).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
    path
}

#[test]
fn a_run_killed_during_the_upload_leaves_the_old_object_and_the_next_run_completes_it() {
    let s3 = s3();
    let ws = Workspace::new();
    large_input(&ws);
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let bucket = s3.bucket("killed");
    let old = ws.write("old.parquet", b"yesterday's export");
    s3.put(&bucket, "out.parquet", &old);
    let output = format!("s3://{bucket}/out.parquet");
    let job = write_job(&ws, "large.parquet", &output, &sandbox);
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["--storage-option", "part_size=5MiB"];
    let got = ws.path("got.parquet");

    // Killed outright: the upload is never completed, so no new object appears.
    let mut run = RunningJob::start_env(&ws, &job, &args, &env);
    run.wait_for(|e| e["event"] == "upload");
    run.signal(libc::SIGKILL);
    assert_eq!(run.finish().0, None);
    assert!(s3.get(&bucket, "out.parquet", &got));
    assert_eq!(std::fs::read(&got).unwrap(), b"yesterday's export");
    let left_by_kill = s3.uploads(&bucket);

    // Stopped by a signal: the upload is aborted (exit 7), the old object still there.
    let mut run = RunningJob::start_env(&ws, &job, &args, &env);
    run.wait_for(|e| e["event"] == "upload");
    run.signal(libc::SIGTERM);
    let (code, text) = run.finish();
    assert_eq!(code, Some(7), "{text}");
    assert!(text.contains("aborted the upload"), "{text}");
    assert!(s3.get(&bucket, "out.parquet", &got));
    assert_eq!(std::fs::read(&got).unwrap(), b"yesterday's export");
    assert_eq!(
        s3.uploads(&bucket),
        left_by_kill,
        "the aborted upload is left"
    );

    // The next run completes it.
    let out = run_bin(
        &ws,
        &["run", job_path(&job), "--storage-option", "part_size=5MiB"],
        &s3.env(),
    );
    assert_exit(&out, 0);
    assert!(s3.get(&bucket, "out.parquet", &got));
    let df = read_parquet(&got);
    assert_eq!(df.height(), 2_500);
    assert!(
        std::fs::metadata(&got).unwrap().len() > 10 << 20,
        "the output fits one part"
    );
    assert_eq!(s3.keys(&bucket), ["out.parquet"]);
    assert_eq!(files_in(&ws.path("state/spool")), Vec::<PathBuf>::new());
}

/// A fault case: its name, the arguments, the environment, the exit code, what stderr says.
type FaultCase<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, String)>, i32, String);

#[test]
fn storage_faults_are_refused_naming_the_url_before_any_request() {
    let s3 = s3();
    let ws = Workspace::new();
    generate(&ws, "in.csv", 200, 5);
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let bucket = s3.bucket("faults");
    s3.put(&bucket, "in.csv", &ws.path("in.csv"));
    let refusing = s3.bucket("refusing");
    s3.helper(&["deny-writes", &refusing]);
    let job = write_job(&ws, "in.csv", "out.parquet", &sandbox);
    let input = format!("s3://{bucket}/in.csv");
    let mut wrong = s3.env();
    wrong[1].1 = "not-the-secret".into();
    let mut unknown = s3.env();
    unknown[0].1 = "AKIAUNKNOWNKEY000000".into();
    let cases: Vec<FaultCase> = vec![
        (
            "wrong secret",
            vec!["--input", &input],
            wrong,
            2,
            format!("{input}: access denied"),
        ),
        (
            "unknown key",
            vec!["--input", &input],
            unknown,
            2,
            format!("{input}: access denied"),
        ),
        (
            "missing key",
            vec!["--input", "s3://BUCKET/nope.csv"],
            s3.env(),
            3,
            "/nope.csv: not found".into(),
        ),
        (
            "missing bucket",
            vec!["--output", "s3://pe-no-such-bucket/o.parquet"],
            s3.env(),
            2,
            "s3://pe-no-such-bucket/o.parquet: not found".into(),
        ),
        (
            "refusing bucket",
            vec!["--output", "s3://REFUSING/o.parquet"],
            s3.env(),
            2,
            "/o.parquet: access denied".into(),
        ),
    ];
    for (case, args, env, code, want) in &cases {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("BUCKET", &bucket).replace("REFUSING", &refusing))
            .collect();
        for command in ["run", "plan", "validate"] {
            let mut full = vec![command, job_path(&job)];
            full.extend(args.iter().map(String::as_str));
            let out = run_bin(&ws, &full, env);
            assert_eq!(
                out.status.code(),
                Some(*code),
                "{case} ({command}): {}",
                stderr(&out)
            );
            assert_stderr_contains(&out, want);
            assert!(!stderr(&out).contains("not-the-secret"));
        }
    }
    assert_eq!(s3.keys(&refusing), Vec::<String>::new());
    assert_eq!(s3.uploads(&refusing), 0);
    assert_eq!(s3.keys(&bucket), ["in.csv"]);
    assert!(!ws.path("out.parquet").exists());
    assert_eq!(sandbox.stats().requests, 0, "a request was sent");

    // A run whose input object is missing is a failed run like any other: the scheduler's
    // metrics file says so.
    let missing = format!("s3://{bucket}/nope.csv");
    let metrics = ws.path("run.prom");
    let args = ["run", job_path(&job), "--input", &missing, "--metrics-file"];
    let mut args = args.to_vec();
    args.push(metrics.to_str().unwrap());
    assert_exit(&run_bin(&ws, &args, &s3.env()), 3);
    let text = std::fs::read_to_string(&metrics).expect("the metrics file is written");
    let exit_line = text
        .lines()
        .find(|l| l.starts_with("phone_enrich_last_run_exit_code{"))
        .unwrap_or_else(|| panic!("no exit code in the metrics file:\n{text}"));
    assert!(exit_line.ends_with(" 3"), "{exit_line}");
}

/// A tmpfs of `size` mounted for a test, unmounted on drop (CI runs as root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed: this test needs root, as CI has",
            at.display()
        );
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn an_input_larger_than_the_spools_free_space_is_refused_before_the_download() {
    let s3 = s3();
    let ws = Workspace::new();
    generate(&ws, "in.csv", 40_000, 9);
    let size = std::fs::metadata(ws.path("in.csv")).unwrap().len();
    assert!(size > 2 << 20, "the input is only {size} bytes");
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let bucket = s3.bucket("space");
    s3.put(&bucket, "in.csv", &ws.path("in.csv"));
    let small = Tmpfs::mount(ws.path("small"), "1m");
    let job = write_job(&ws, "in.csv", "out.parquet", &sandbox);
    let input = format!("s3://{bucket}/in.csv");
    let spool = format!("spool_dir={}", small.0.display());
    let args = [
        "run",
        job_path(&job),
        "--input",
        &input,
        "--storage-option",
        &spool,
    ];
    let out = run_bin(&ws, &args, &s3.env());
    assert_exit(&out, 2);
    assert_stderr_contains(&out, &format!("{input}: the object is {size} bytes but"));
    assert_stderr_contains(&out, "set storage.spool_dir to a larger volume");
    assert_eq!(files_in(&small.0), Vec::<PathBuf>::new());
    assert_eq!(sandbox.stats().requests, 0);
}
