//! One login, many runs: runs on one machine share the login's limits through a file, so
//! together they keep them and use them; a run killed with SIGKILL leaves nothing held; and a
//! client the runs cannot see, drawing from the same login, is adapted to through error 9.
//! Through the binary, against one sandbox process at short windows; the figures are the
//! sandbox's own arrivals, as ratios of the limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use phone_enrich::provider::sandbox::Arrivals;

use crate::common::*;

/// The sandbox's limits in these tests: 20 requests a second.
const LIMIT: u64 = 20;
const SANDBOX: &str = "request_limit = \"20/1s\"\nidentical_limit = \"3/1s\"\nlatency = \"5ms\"\n";

/// A job over `input` writing `NAME.parquet`, with its own state directory, under the
/// sandbox's one login, sharing its limits in the workspace's directory `limits`.
fn job(ws: &Workspace, sandbox: &SandboxProcess, name: &str, input: &str, limits: &str) -> PathBuf {
    let provider = provider_for(
        sandbox,
        &format!(
            "request_limit = \"20/1s\"\nidentical_limit = \"3/1s\"\nbatch_size = 10\nshared_limits_dir = \"{limits}\"\n"
        ),
    );
    let text = format!(
        "[input]\npath = \"{input}\"\nphone_columns = [\"phone\"]\n\n[output]\npath = \"{name}.parquet\"\n\n[state]\ndir = \"state-{name}\"\n\n[provider]\n{provider}\n"
    );
    ws.write(&format!("{name}.toml"), text)
}

/// `GET path` on the sandbox, the body as JSON.
fn get(sandbox: &SandboxProcess, path: &str) -> serde_json::Value {
    let addr = sandbox.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split("\r\n\r\n").nth(1).expect("an HTTP body");
    serde_json::from_str(body).unwrap()
}

fn arrivals(sandbox: &SandboxProcess) -> Arrivals {
    serde_json::from_value(get(sandbox, "/sandbox/arrivals?login=sandbox")).unwrap()
}

/// The most arrivals (sorted) within any window of `window_ms` starting at or after `from`.
fn fullest_window(arrivals: &[u64], window_ms: u64, from: u64) -> u64 {
    let after: Vec<u64> = arrivals.iter().copied().filter(|t| *t >= from).collect();
    let mut best = 0;
    let mut start = 0;
    for end in 0..after.len() {
        while after[end] - after[start] >= window_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
}

/// The share of the limit the arrivals used while requests went: a window over the mean time
/// from each arrival to the one `LIMIT` later, which a slot of the window freed for (1.0: every
/// slot sent again the moment the provider's window let it go).
fn share_of_limit(a: &Arrivals) -> f64 {
    let mut t = a.arrivals_ms.clone();
    t.sort_unstable();
    let limit = LIMIT as usize;
    let reuse: u64 = (limit..t.len()).map(|i| t[i] - t[i - limit]).sum();
    let mean = reuse as f64 / (t.len() - limit) as f64;
    a.window_ms as f64 / mean
}

/// Two inputs (of `rows_a` and `rows_b` rows) and two jobs reading them under one login.
fn two_jobs(rows_a: u64, rows_b: u64) -> (Workspace, SandboxProcess, PathBuf, PathBuf) {
    let ws = Workspace::new();
    generate(&ws, "a.csv", rows_a, 71);
    generate(&ws, "b.csv", rows_b, 72);
    let sandbox = SandboxProcess::start(ws.dir.path(), SANDBOX);
    let a = job(&ws, &sandbox, "a", "a.csv", "limits");
    let b = job(&ws, &sandbox, "b", "b.csv", "limits");
    (ws, sandbox, a, b)
}

#[test]
fn two_runs_under_one_login_keep_its_limit_together_and_use_it() {
    let (ws, sandbox, a, b) = two_jobs(3000, 3000);
    let plan = |job: &PathBuf| -> serde_json::Value {
        let out = ws.command("plan", job, &["--format", "json"], &[]);
        assert_exit(&out, 0);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(
        plan(&b)["runs_sharing_logins"],
        0,
        "no run holds the login yet"
    );
    let mut first = RunningJob::start(&ws, &a, &[]);
    first.wait_for_progress("lookups", 0.05);
    assert_eq!(
        plan(&b)["runs_sharing_logins"],
        1,
        "plan counts the run under way"
    );
    let second = RunningJob::start(&ws, &b, &[]);
    let (code_a, log_a) = first.finish();
    let (code_b, log_b) = second.finish();
    assert_eq!(code_a, Some(0), "{log_a}");
    assert_eq!(code_b, Some(0), "{log_b}");
    let stats = sandbox.stats();
    let refused = stats.errors.get("9").copied().unwrap_or(0);
    let login = &stats.logins["sandbox"];
    let seen = arrivals(&sandbox);
    let share = share_of_limit(&seen);
    let mut per_window = vec![0u64; (seen.now_ms / seen.window_ms + 1) as usize];
    for t in &seen.arrivals_ms {
        per_window[(t / seen.window_ms) as usize] += 1;
    }
    eprintln!("per window: {per_window:?}");
    eprintln!(
        "two runs, one login at {LIMIT}/1s: {} requests, {refused} refused (error 9), fullest window {}, {:.1}% of the limit used",
        login.requests,
        login.max_in_window,
        share * 100.0
    );
    assert_eq!(refused, 0, "error 9 answered: {:?}", stats.errors);
    assert!(
        share >= 0.95,
        "together the runs used {share:.3} of the limit"
    );
    // The shared file is named by a hash: the login is nowhere in clear.
    for entry in std::fs::read_dir(ws.path("limits")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.contains("sandbox"), "{name}");
    }
}

#[test]
fn a_run_killed_leaves_nothing_held_and_the_survivor_takes_the_whole_limit() {
    // The survivor has several windows of work left after the kill.
    let (ws, sandbox, a, b) = two_jobs(1500, 5000);
    let mut victim = RunningJob::start(&ws, &a, &[]);
    let survivor = RunningJob::start(&ws, &b, &[]);
    victim.wait_for_progress("lookups", 0.3);
    let killed_at = arrivals(&sandbox).now_ms;
    victim.signal(libc::SIGKILL);
    let (code, _) = victim.finish();
    assert_eq!(code, None, "killed by the signal");
    let (code, log) = survivor.finish();
    assert_eq!(code, Some(0), "{log}");
    let stats = sandbox.stats();
    let refused = stats.errors.get("9").copied().unwrap_or(0);
    assert_eq!(refused, 0, "error 9 answered: {:?}", stats.errors);
    let seen = arrivals(&sandbox);
    // A window (and its safety margin) after the kill, whatever the victim held has expired.
    let hold = seen.window_ms + seen.window_ms / 50;
    let after_kill = seen.arrivals_ms.iter().filter(|t| **t >= killed_at).count();
    let fullest = fullest_window(&seen.arrivals_ms, seen.window_ms, killed_at + hold + 10);
    eprintln!(
        "one of two runs killed: {after_kill} requests after the kill; the survivor's fullest window from one window after it: {fullest} of {LIMIT}"
    );
    assert_eq!(fullest, LIMIT, "the survivor never reached the full limit");
}

/// A client outside the runs: one request every `every`, with numbers of its own, until told
/// to stop (at most `most` requests). Counts its requests and the refused ones.
struct Stranger {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stranger {
    fn start(sandbox: &SandboxProcess, every: std::time::Duration, most: u64) -> Stranger {
        let addr = sandbox.url.trim_start_matches("http://").to_string();
        let (stop, sent, refused) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, n, r) = (stop.clone(), sent.clone(), refused.clone());
        let thread = std::thread::spawn(move || {
            for i in 0..most {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let form = format!(
                    "get_operator=1&login=sandbox&psw=sandbox&fmt=3&phone={}",
                    79990000000u64 + i
                );
                let mut stream = TcpStream::connect(&addr).unwrap();
                write!(
                    stream,
                    "POST /sys/info.php HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
                    form.len()
                )
                .unwrap();
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                n.fetch_add(1, Ordering::Relaxed);
                let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
                let said: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                if said["error_code"] == 9 {
                    r.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(every);
            }
        });
        Stranger {
            stop,
            sent,
            refused,
            thread: Some(thread),
        }
    }

    /// Stops it: its requests and how many were refused.
    fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        (
            self.sent.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_stranger_on_the_login_is_adapted_to_with_few_refusals() {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 6000, 73);
    let sandbox = SandboxProcess::start(ws.dir.path(), SANDBOX);
    let job = job(&ws, &sandbox, "run", "in.csv", "limits");
    // A quarter of the limit, already going when the run starts.
    let stranger = Stranger::start(&sandbox, std::time::Duration::from_millis(200), 2000);
    wait_until("the stranger's first requests", || {
        sandbox.stats().requests >= 5
    });
    let run = RunningJob::start(&ws, &job, &["--report", "report.json"]);
    let (code, log) = run.finish();
    let (stranger_sent, stranger_refused) = stranger.stop();
    assert_eq!(code, Some(0), "{log}");
    let stats = sandbox.stats();
    let login = &stats.logins["sandbox"];
    let refused = login.errors.get("9").copied().unwrap_or(0);
    let share = refused as f64 / login.requests as f64;
    let report = ws.report("report.json");
    eprintln!(
        "a stranger at a quarter of the limit: {} requests on the login, {refused} refused ({:.2}%); the stranger {stranger_refused} of {stranger_sent}; the run's errors {}",
        login.requests,
        share * 100.0,
        report["summary"]["errors"]
    );
    assert!(
        share < 0.02,
        "{refused} of {} requests refused",
        login.requests
    );
}

#[test]
fn two_machines_on_one_login_settle_with_few_refusals() {
    // Two runs that cannot see each other's files, as on two machines: only error 9 tells
    // each of the other.
    let ws = Workspace::new();
    generate(&ws, "a.csv", 6000, 74);
    generate(&ws, "b.csv", 6000, 75);
    let sandbox = SandboxProcess::start(ws.dir.path(), SANDBOX);
    let a = job(&ws, &sandbox, "a", "a.csv", "machine-a");
    let b = job(&ws, &sandbox, "b", "b.csv", "machine-b");
    let first = RunningJob::start(&ws, &a, &[]);
    let second = RunningJob::start(&ws, &b, &[]);
    let (code_a, log_a) = first.finish();
    let (code_b, log_b) = second.finish();
    assert_eq!(code_a, Some(0), "{log_a}");
    assert_eq!(code_b, Some(0), "{log_b}");
    let login = &sandbox.stats().logins["sandbox"];
    let refused = login.errors.get("9").copied().unwrap_or(0);
    let share = refused as f64 / login.requests as f64;
    let used = share_of_limit(&arrivals(&sandbox));
    eprintln!(
        "two machines, one login at {LIMIT}/1s: {} requests, {refused} refused ({:.2}%), {:.1}% of the limit used",
        login.requests,
        share * 100.0,
        used * 100.0
    );
    assert!(
        share < 0.02,
        "{refused} of {} requests refused",
        login.requests
    );
}
