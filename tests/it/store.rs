//! The state store damaged: a run refuses it and sends nothing; `cache verify` reports;
//! `cache repair` keeps what can be read, and the next run asks only for the rest.

use std::path::Path;

use crate::common::*;

/// A copy of the state directory `from`, as a backup tool would make it.
fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

fn overwrite_with_random_bytes(path: &Path) {
    use rand::{RngCore, SeedableRng};
    let mut bytes = vec![0u8; std::fs::metadata(path).unwrap().len() as usize];
    rand::rngs::StdRng::seed_from_u64(11).fill_bytes(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

fn cut_in_half(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_run_on_a_damaged_store_exits_3_naming_the_damage_and_sends_nothing() {
    let Setup { ws, sandbox, job } = setup(200, 41, "", "batch_size = 10\n");
    assert_exit(&ws.run(&job, &[]), 0);
    // (case, what is done to sled's data file)
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 3] = [
        ("overwritten with random bytes", overwrite_with_random_bytes),
        ("cut in half", cut_in_half),
        ("deleted", |path| std::fs::remove_file(path).unwrap()),
    ];
    for (i, (name, damage)) in cases.into_iter().enumerate() {
        let state = ws.path(&format!("state-{i}"));
        copy_dir(&ws.path("state"), &state);
        damage(&state.join("db/db"));
        let before = sandbox.stats().requests;
        let out = ws.run(
            &job,
            &[
                "--state",
                state.to_str().unwrap(),
                "--output",
                "second.parquet",
            ],
        );
        assert_exit(&out, 3);
        let err = stderr(&out);
        assert!(
            err.contains("is damaged") && err.contains("cache repair --state"),
            "{name}: {err}"
        );
        assert_eq!(
            sandbox.stats().requests,
            before,
            "{name}: requests were sent"
        );
        assert!(!ws.path("second.parquet").exists(), "{name}");
        eprintln!(
            "{name}: {}",
            err.lines().find(|l| l.contains("damaged")).unwrap_or("")
        );
    }
}

#[test]
fn cache_repair_keeps_what_can_be_read_and_the_next_run_asks_only_for_the_rest() {
    let Setup { ws, sandbox, job } = setup(300, 42, "", "batch_size = 10\n");
    assert_exit(&ws.run(&job, &[]), 0);
    let reference = enrichment(&ws.read_output());
    let answered = sandbox.stats().numbers_answered;
    cut_in_half(&ws.path("state/db/db"));

    let json = cache(&ws, &["verify", "--state", "state", "--json"]);
    assert_exit(&json, 3);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["sound"], false);
    let parts = report["parts"].as_array().unwrap();
    let manifest = parts.iter().find(|p| p["part"] == "manifest").unwrap();
    assert_eq!(manifest["sound"], true, "{report}");
    assert!(parts.iter().any(|p| p["sound"] == false), "{report}");
    let text = cache(&ws, &["verify", "--state", "state"]);
    assert_exit(&text, 3);
    assert!(stdout(&text).contains("DAMAGED"), "{}", stdout(&text));

    let repair = cache(&ws, &["repair", "--state", "state"]);
    assert_exit(&repair, 0);
    let said = stdout(&repair);
    // "... repaired; kept K answers, lost L"
    let figures: Vec<u64> = said
        .lines()
        .next()
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [kept, lost] = figures[figures.len() - 2..] else {
        panic!("{said}")
    };
    assert_eq!(kept + lost, answered, "{said}");
    assert!(lost > 0, "{said}");
    assert_exit(&cache(&ws, &["verify", "--state", "state"]), 0);
    assert_exit(&cache(&ws, &["repair", "--state", "state"]), 0);

    assert_exit(&ws.run(&job, &[]), 0);
    assert_eq!(
        sandbox.stats().numbers_answered - answered,
        lost,
        "asked again: {said}"
    );
    assert!(enrichment(&ws.read_output()).equals_missing(&reference));
}
