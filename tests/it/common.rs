//! The test harness: inputs in a temp dir, the real binary, a sandbox on loopback, the Parquet
//! read back.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use phone_enrich::provider::sandbox::SandboxStats;
use polars::prelude::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_phone-enrich");

/// A sandbox served by the binary (`phone-enrich sandbox`), killed on drop.
pub struct SandboxProcess {
    child: Child,
    pub url: String,
}

impl SandboxProcess {
    /// `config` holds the keys of a `[provider.sandbox]` section.
    pub fn start(dir: &Path, config: &str) -> SandboxProcess {
        let path = dir.join(format!(
            "sandbox-{}.toml",
            std::process::id() as u64 ^ rand_suffix()
        ));
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(BIN)
            .args(["sandbox", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().trim_end_matches('/').to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "sandbox printed `{line}`"
        );
        SandboxProcess { child, url }
    }

    pub fn stats(&self) -> SandboxStats {
        let addr = self.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET /sandbox/stats HTTP/1.0\r\nHost: {addr}\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).expect("an HTTP body");
        serde_json::from_str(body).unwrap()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) << 20
}

/// A temp dir with a job in it.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Writes a job reading `input` into `out.parquet`, with `provider` lines (and any extra
    /// sections) appended.
    pub fn job(&self, name: &str, input: &str, input_extra: &str, provider: &str) -> PathBuf {
        let text = format!(
            "[input]\npath = \"{input}\"\nphone_columns = [\"phone\"]\n{input_extra}\n\n[output]\npath = \"out.parquet\"\n\n[state]\ndir = \"state\"\n\n[provider]\n{provider}\n"
        );
        self.write(name, text)
    }

    pub fn run(&self, job: &Path, args: &[&str]) -> Output {
        self.run_env(job, args, &[])
    }

    pub fn run_env(&self, job: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command("run", job, args, env)
    }

    /// `phone-enrich COMMAND JOB ARGS...` in the workspace, with only `env` for credentials.
    pub fn command(
        &self,
        command: &str,
        job: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg(command)
            .arg(job)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SMSC_LOGIN")
            .env_remove("SMSC_PASSWORD")
            .env_remove("SMSC_ACCOUNTS_FILE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("the binary runs")
    }

    /// Writes a secret file (a password or accounts file) only its owner may read.
    pub fn write_secret(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write(name, text);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// The `--report` a run wrote to `name`.
    pub fn report(&self, name: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn read_output(&self) -> DataFrame {
        read_parquet(&self.path("out.parquet"))
    }
}

pub fn read_parquet(path: &Path) -> DataFrame {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(file).finish().unwrap()
}

/// A Parquet file's key/value metadata (the job's settings, the run's summary).
pub fn parquet_metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let metadata = ParquetReader::new(file).get_metadata().unwrap().clone();
    metadata
        .key_value_metadata()
        .as_ref()
        .unwrap()
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a run's exit code, showing its stderr when it differs.
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code; stderr:\n{}",
        stderr(o)
    );
}

/// Asserts that the run's stderr holds `text`, showing the stderr when it does not.
pub fn assert_stderr_contains(o: &Output, text: &str) {
    let stderr = stderr(o);
    assert!(stderr.contains(text), "stderr lacks `{text}`:\n{stderr}");
}

pub fn strings(df: &DataFrame, column: &str) -> Vec<Option<String>> {
    df.column(column)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// `defaults` (TOML lines) with `extra` appended, less the defaults whose key `extra` sets.
pub fn with_defaults(defaults: &str, extra: &str) -> String {
    let key = |line: &str| line.split('=').next().map(|k| k.trim().to_string());
    let set: Vec<Option<String>> = extra.lines().map(key).collect();
    let mut text: String = defaults
        .lines()
        .filter(|l| !set.contains(&key(l)))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(extra);
    text
}

/// Provider settings for a job pointed at a sandbox process, at short test windows. Keys in
/// `extra` replace the defaults.
pub fn provider_for(sandbox: &SandboxProcess, extra: &str) -> String {
    let defaults = "request_limit = \"20/2s\"\nidentical_limit = \"3/2s\"\nretry_base_delay = \"50ms\"\nretry_max_delay = \"500ms\"\ntimeout = \"2s\"\n";
    format!(
        "kind = \"sandbox\"\nbase_url = \"{}\"\n{}",
        sandbox.url,
        with_defaults(defaults, extra)
    )
}

/// A sandbox config at the same short windows as [`provider_for`].
pub const FAST_SANDBOX: &str =
    "request_limit = \"20/2s\"\nidentical_limit = \"3/2s\"\nlatency = \"5ms\"\n";

/// Writes a generated CRM export (`phone-enrich generate`) into the workspace.
pub fn generate(ws: &Workspace, name: &str, rows: u64, seed: u64) {
    let status = Command::new(BIN)
        .args([
            "generate",
            "--rows",
            &rows.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg(ws.path(name))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A workspace with a generated export `in.csv`, a sandbox process, and `job.toml` reading the
/// export through that sandbox.
pub struct Setup {
    pub ws: Workspace,
    pub sandbox: SandboxProcess,
    pub job: PathBuf,
}

/// `sandbox` and `provider` are lines for the sandbox config and the job's `[provider]`; their
/// keys replace the fast defaults.
pub fn setup(rows: u64, seed: u64, sandbox: &str, provider: &str) -> Setup {
    let ws = Workspace::new();
    generate(&ws, "in.csv", rows, seed);
    let sandbox = SandboxProcess::start(ws.dir.path(), &with_defaults(FAST_SANDBOX, sandbox));
    let job = ws.job("job.toml", "in.csv", "", &provider_for(&sandbox, provider));
    Setup { ws, sandbox, job }
}

/// The enrichment columns of an output, without `checked_at` (a time that differs between runs).
pub fn enrichment(df: &DataFrame) -> DataFrame {
    df.select([
        "phone_e164",
        "phone_status",
        "phone_country",
        "phone_operator",
        "phone_region",
        "phone_mcc",
        "phone_mnc",
        "phone_tz",
    ])
    .unwrap()
}

/// Temporary files left in a directory.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

/// A `run` in the background with JSON logs and progress events every 50 ms, so a test can act
/// at a moment the run itself reports (a phase reached, a share of lookups done) rather than
/// after a guessed time.
pub struct RunningJob {
    pub child: Child,
    events: std::sync::mpsc::Receiver<serde_json::Value>,
    /// Every stderr line read so far.
    lines: Vec<String>,
    all: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RunningJob {
    pub fn start(ws: &Workspace, job: &Path, args: &[&str]) -> RunningJob {
        RunningJob::start_env(ws, job, args, &[])
    }

    /// [`RunningJob::start`] with `env` set for the run.
    pub fn start_env(
        ws: &Workspace,
        job: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> RunningJob {
        let mut child = Command::new(BIN)
            .arg("run")
            .arg(job)
            .args(["--log-format", "json", "--progress", "log"])
            .args(["--progress-every", "50ms"])
            .args(args)
            .current_dir(ws.dir.path())
            .env_remove("SMSC_LOGIN")
            .env_remove("SMSC_PASSWORD")
            .env_remove("SMSC_ACCOUNTS_FILE")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        let all = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = all.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(event);
                }
            }
        });
        RunningJob {
            child,
            events,
            lines: Vec::new(),
            all,
        }
    }

    /// The first log event from now on for which `wanted` holds; panics if the run ends first.
    pub fn wait_for(&mut self, wanted: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        for event in &self.events {
            if wanted(&event) {
                return event;
            }
        }
        self.lines = self.all.lock().unwrap().clone();
        panic!(
            "the run ended before the awaited event:\n{}",
            self.lines.join("\n")
        );
    }

    /// Waits for the first `progress` event of `phase` with at least `share` of its total done.
    pub fn wait_for_progress(&mut self, phase: &str, share: f64) -> serde_json::Value {
        self.wait_for(|e| {
            let (done, total) = (e["done"].as_f64(), e["total"].as_f64());
            e["event"] == "progress"
                && e["phase"] == phase
                && matches!((done, total), (Some(d), Some(t)) if t > 0.0 && d >= share * t)
        })
    }

    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the process to end: its exit code (`None` when killed by a signal) and its
    /// stderr.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        // The reader thread ends with the pipe; what it read is complete once it does.
        while self.events.recv().is_ok() {}
        let text = self.all.lock().unwrap().join("\n");
        (status.code(), text)
    }
}

/// Waits until `condition` holds (a file the run writes, a line it logs), checking every 10 ms;
/// fails the test after 60 s, naming `what` was awaited.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 60 s for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Runs `phone-enrich cache ARGS` in the workspace.
pub fn cache(ws: &Workspace, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("cache")
        .args(args)
        .current_dir(ws.dir.path())
        .output()
        .expect("the binary runs")
}

/// libphonenumber 9.0.33's `PhoneNumberMetadata.xml`, unpacked from tests/data.
pub fn plans_9_0_33() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/PhoneNumberMetadata-9.0.33.xml.gz"
    );
    let mut xml = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut xml)
        .unwrap();
    xml
}

/// [`plans_9_0_33`], and a copy whose RU mobile pattern also opens the range `300…` (a range no
/// release has), for tests of loaded plans.
pub fn plans_with_ru_300() -> (String, String) {
    let xml = plans_9_0_33();
    let mobile = r"<nationalNumberPattern>9\d{9}</nationalNumberPattern>";
    assert_eq!(xml.matches(mobile).count(), 1, "RU's mobile pattern");
    let opened = xml.replace(
        mobile,
        r"<nationalNumberPattern>9\d{9}|300\d{7}</nationalNumberPattern>",
    );
    (xml, opened)
}
