//! The state directory's disk in the way, on a real file system: a small tmpfs filled mid-run,
//! then remounted read-only. The environment is named as what it is (exit 1), never reported
//! as damage, `cache repair` moves nothing, and once space is freed the rerun buys only what
//! was not committed. Mounting needs root, which CI has; without it these tests fail saying so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A tmpfs mounted at a directory of the test's, unmounted when dropped (also on failure).
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            root,
            "this test mounts a tmpfs, which needs root (CI runs as root): run it as root"
        );
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("`mount` runs");
        assert!(status.success(), "mount -t tmpfs on {}", at.display());
        Tmpfs {
            at: at.to_path_buf(),
        }
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.at)
            .status()
            .unwrap();
        assert!(status.success(), "remount,{options}");
    }

    /// Fills the file system with `filler` until it is full.
    fn fill(&self) -> PathBuf {
        let path = self.at.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            if let Err(e) = file.write_all(&chunk).and_then(|_| file.sync_all()) {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                return path;
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// A job over `in.csv` whose state directory is `state` (under the tmpfs).
fn job_with_state(ws: &Workspace, sandbox: &SandboxProcess, state: &Path, output: &str) -> PathBuf {
    let provider = provider_for(
        sandbox,
        "request_limit = \"40/1s\"\nidentical_limit = \"3/1s\"\nbatch_size = 5\nconcurrency = 2\n",
    );
    let text = format!(
        "[input]\npath = \"in.csv\"\nphone_columns = [\"phone\"]\n\n[output]\npath = \"{output}\"\n\n[state]\ndir = \"{}\"\n\n[provider]\n{provider}\n",
        state.display()
    );
    ws.write(&format!("{output}.toml"), text)
}

/// Whether `text` reports the store damaged (the advice "the store is not damaged" does not).
fn says_damaged(text: &str) -> bool {
    text.contains("is damaged") || text.contains("DAMAGED") || text.contains(": damaged")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_full_disk_is_named_as_such_never_damage_and_the_rerun_buys_only_what_was_lost() {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 3000, 61);
    let sandbox = SandboxProcess::start(
        ws.dir.path(),
        &with_defaults(
            FAST_SANDBOX,
            "request_limit = \"40/1s\"\nidentical_limit = \"3/1s\"\n",
        ),
    );
    // The reference: the same job on an ordinary disk, and what it costs.
    let reference = job_with_state(&ws, &sandbox, &ws.path("state-ref"), "ref.parquet");
    assert_exit(&ws.run(&reference, &[]), 0);
    let clean_requests = sandbox.stats().requests;

    let disk = Tmpfs::mount(&ws.path("disk"), "8m");
    let state = disk.at.join("state");
    let job = job_with_state(&ws, &sandbox, &state, "out.parquet");
    let before = sandbox.stats().requests;
    let mut run = RunningJob::start(&ws, &job, &[]);
    run.wait_for_progress("lookups", 0.3);
    let filler = disk.fill();
    let (code, log) = run.finish();
    assert_eq!(code, Some(1), "the run on a full disk:\n{log}");
    assert!(
        log.contains("no space left on the device") && log.contains("free space on"),
        "{log}"
    );
    assert!(!says_damaged(&log), "{log}");
    let first_requests = sandbox.stats().requests - before;

    // `cache verify` and `cache repair` on the full disk: no verdict of damage, nothing moved.
    let state_arg = state.to_str().unwrap();
    let listed = entries(&state);
    let verify = cache(&ws, &["verify", "--state", state_arg]);
    let said = format!("{}{}", stdout(&verify), stderr(&verify));
    assert!(!says_damaged(&said), "{said}");
    assert!(!said.contains("cache repair --state"), "{said}");
    match verify.status.code() {
        Some(0) => assert!(said.contains("sound"), "{said}"),
        code => {
            assert_eq!(code, Some(1), "{said}");
            assert!(said.contains("no space left on the device"), "{said}");
        }
    }
    eprintln!("cache verify on the full disk: {}", said.trim());
    let repair = cache(&ws, &["repair", "--state", state_arg]);
    let said = format!("{}{}", stdout(&repair), stderr(&repair));
    assert!(!said.contains("repaired"), "{said}");
    assert!(matches!(repair.status.code(), Some(0 | 1)), "{said}");
    assert_eq!(entries(&state), listed, "cache repair moved something");
    assert!(!entries(&state).iter().any(|e| e.starts_with("damaged-")));

    // Space freed: sound, and the rerun buys only what was not committed.
    std::fs::remove_file(filler).unwrap();
    let verify = cache(&ws, &["verify", "--state", state_arg]);
    assert_exit(&verify, 0);
    assert!(stdout(&verify).contains("sound"), "{}", stdout(&verify));
    let before = sandbox.stats().requests;
    assert_exit(&ws.run(&job, &[]), 0);
    let rerun_requests = sandbox.stats().requests - before;
    let bought_twice = (first_requests + rerun_requests).saturating_sub(clean_requests);
    eprintln!(
        "full disk: clean run {clean_requests} requests; failed run {first_requests}, rerun {rerun_requests}: {bought_twice} bought twice"
    );
    // At most the batches in flight or awaiting their commit when the disk filled.
    assert!(bought_twice <= 8, "{bought_twice} requests bought twice");
    assert_eq!(
        enrichment(&ws.read_output()),
        enrichment(&read_parquet(&ws.path("ref.parquet")))
    );
}

#[test]
fn a_read_only_state_directory_is_named_as_such_in_every_command() {
    let ws = Workspace::new();
    generate(&ws, "in.csv", 300, 62);
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let disk = Tmpfs::mount(&ws.path("disk"), "8m");
    let state = disk.at.join("state");
    let job = job_with_state(&ws, &sandbox, &state, "out.parquet");
    assert_exit(&ws.run(&job, &[]), 0);
    let state_arg = state.to_str().unwrap();
    let earlier = ws.path("earlier.parquet");
    let earlier = earlier.to_str().unwrap();
    assert_exit(&cache(&ws, &["export", earlier, "--state", state_arg]), 0);
    disk.remount("ro");
    let export = ws.path("export.parquet");
    let runs: [(&str, Vec<&str>); 5] = [
        (
            "purge",
            vec!["purge", "--older-than", "1s", "--state", state_arg],
        ),
        (
            "export",
            vec!["export", "--state", state_arg, export.to_str().unwrap()],
        ),
        ("import", vec!["import", earlier, "--state", state_arg]),
        ("repair", vec!["repair", "--state", state_arg]),
        ("verify", vec!["verify", "--state", state_arg]),
    ];
    for (name, args) in runs {
        let out = cache(&ws, &args);
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!says_damaged(&said), "{name}: {said}");
        if out.status.code() != Some(0) {
            assert_eq!(out.status.code(), Some(1), "{name}: {said}");
            assert!(said.contains("read-only file system"), "{name}: {said}");
        }
        eprintln!("cache {name} on a read-only disk: {}", said.trim());
    }
    let out = ws.run(&job, &["--output", "second.parquet"]);
    assert_exit(&out, 1);
    assert_stderr_contains(&out, "read-only file system");
    assert_stderr_contains(&out, state_arg);
}
