//! The store as a whole: commits, compaction, interruptions, and every kind of damage.

use std::path::Path;
use std::time::Duration;

use super::log::log_tree_name;
use super::manifest;
use super::vacuum::VACUUM_KEY;
use super::*;
use crate::normalize::E164;
use crate::provider::{NumberAnswer, OperatorInfo};

fn info() -> NumberAnswer {
    NumberAnswer::Found(OperatorInfo::example())
}

fn ttl(secs: u64) -> Ttl {
    Ttl {
        found: Duration::from_secs(secs),
        not_found: Duration::from_secs(secs),
    }
}

/// Numbers `79_100_000_000 + i` for `i` in `numbers`, checked at `at_ms`: even ones found
/// (`info()`), odd ones not.
fn answers_at(numbers: std::ops::Range<u64>, at_ms: i64) -> Vec<(E164, StoredAnswer)> {
    numbers
        .map(|i| {
            let answer = if i % 2 == 0 {
                info()
            } else {
                NumberAnswer::NotFound
            };
            (
                E164(79_100_000_000 + i),
                StoredAnswer {
                    checked_at_ms: at_ms,
                    answer,
                },
            )
        })
        .collect()
}

fn number(i: u64) -> E164 {
    E164(79_100_000_000 + i)
}

/// Every answer of `host`, fresh or not.
fn book(store: &StateStore, host: &str) -> AnswerBook {
    store.replay(host).unwrap().0
}

#[test]
fn commits_survive_reopening_and_are_keyed_by_host() {
    let dir = tempfile::tempdir().unwrap();
    let n = E164(79161234567);
    {
        let store = StateStore::open(dir.path()).unwrap();
        let stored = StoredAnswer {
            checked_at_ms: 5_999,
            answer: info(),
        };
        store.commit("smsc.ru", &[(n, stored)]).unwrap();
    }
    let store = StateStore::open(dir.path()).unwrap();
    // Kept to the second.
    let book = store.load("smsc.ru", ttl(60), 6_000).unwrap();
    assert_eq!(book.get(&n), Some((&info(), 5_000)));
    assert!(store.load("smsc.kz", ttl(60), 6_000).unwrap().is_empty());
    // Stale answers are held but not given.
    let later = store.load("smsc.ru", ttl(60), 65_000).unwrap();
    assert_eq!((later.len(), later.get(&n)), (1, None));
    // A later commit replaces an earlier answer for the same number.
    store.commit("smsc.ru", &answers_at(0..50, 7_000)).unwrap();
    let replaced = StoredAnswer {
        checked_at_ms: 9_000,
        answer: NumberAnswer::Rejected,
    };
    store.commit("smsc.ru", &[(number(8), replaced)]).unwrap();
    let book = store.load("smsc.ru", ttl(60), 10_000).unwrap();
    assert_eq!(book.len(), 51);
    assert_eq!(book.get(&number(8)), Some((&NumberAnswer::Rejected, 9_000)));
    assert_eq!(book.get(&number(9)), Some((&NumberAnswer::NotFound, 7_000)));
    let record = store.record("smsc.ru");
    assert_eq!(
        (record.log_next, record.log_entries, record.answers),
        (3, 52, 3)
    );
}

#[test]
fn a_log_grown_past_its_answers_is_compacted_to_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let numbers = 40_000;
    let day = 86_400_000;
    // Four nights of the same numbers (160,000 entries for 40,000 answers), then one more.
    for night in 0..4 {
        store
            .commit("h", &answers_at(0..numbers, night * day))
            .unwrap();
    }
    let late = StoredAnswer {
        checked_at_ms: 4 * day,
        answer: NumberAnswer::Rejected,
    };
    store.commit("h", &[(number(1), late)]).unwrap();
    assert_eq!(store.log("h").unwrap().len(), 5);
    let book = store.load("h", ttl(7 * 86_400), 4 * day).unwrap();
    assert_eq!(store.log("h").unwrap().len(), 0, "folded into the snapshot");
    let snapshot = store.record("h").snapshot.expect("a snapshot");
    assert_eq!(
        (snapshot.generation, snapshot.covers_below, snapshot.entries),
        (1, 5, 40_000)
    );
    assert!(store.snapshot_path("h", 1).exists());
    // Answers after the snapshot go to the log again, and both are read.
    store
        .commit("h", &answers_at(numbers..numbers + 10, 5 * day))
        .unwrap();
    let bytes_before = store.db.size_on_disk().unwrap();
    drop(store);
    // Reopened, the database is rewritten without the space the removed blocks held.
    let store = StateStore::open(dir.path()).unwrap();
    let meta = store.db.open_tree("meta").unwrap();
    assert!(!meta.contains_key(VACUUM_KEY).unwrap());
    let bytes_after = store.db.size_on_disk().unwrap();
    assert!(
        bytes_after < bytes_before / 2,
        "{bytes_after} bytes after, {bytes_before} before"
    );
    // Blocks keep coming after the snapshot's, the database rewritten or not.
    store
        .commit("h", &answers_at(numbers + 10..numbers + 12, 6 * day))
        .unwrap();
    let (again, logged) = store.replay("h").unwrap();
    assert_eq!(logged, 12);
    assert_eq!(again.len(), book.len() + 12);
    assert_eq!(store.stats(0).unwrap().entries, book.len() as u64 + 12);
    for (n, answer, at) in book.iter() {
        let (id, s) = again.numbers.get(n.0).unwrap();
        assert_eq!((again.answer(id), s as i64 * 1000), (answer, at), "{n:?}");
    }
    let at = |i| again.numbers.get(number(i).0).map(|(_, s)| s as i64 * 1000);
    assert_eq!((at(1), at(0)), (Some(4 * day), Some(3 * day)));
    // A second compaction supersedes the first snapshot, whose file goes.
    store.write_snapshot("h", &again).unwrap();
    assert!(!store.snapshot_path("h", 1).exists() && store.snapshot_path("h", 2).exists());
    assert_eq!(book_len(&store, "h"), again.len());
}

fn book_len(store: &StateStore, host: &str) -> usize {
    book(store, host).len()
}

#[test]
fn a_compaction_interrupted_anywhere_reads_the_same() {
    // (case, what of the compaction is on disk)
    let cases = [
        ("the new snapshot written, MANIFEST not", 1),
        ("MANIFEST written, the log not dropped", 2),
    ];
    for (name, steps) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.commit("h", &answers_at(0..100, 1_000)).unwrap();
        store.commit("h", &answers_at(50..150, 2_000)).unwrap();
        let expected = book(&store, "h");
        let record = store.record("h");
        let written =
            log::write_snapshot_file(dir.path(), "h", 1, record.log_next, &expected).unwrap();
        if steps == 2 {
            let mut manifest = store.manifest.lock().unwrap();
            let mut next = manifest.current().clone();
            let r = next.hosts.get_mut("h").unwrap();
            (r.snapshot, r.log_entries) = (Some(written), 0);
            manifest.write(next).unwrap();
        }
        drop(store);
        let store = StateStore::open(dir.path()).unwrap();
        store.commit("h", &answers_at(0..1, 3_000)).unwrap();
        let (again, logged) = store.replay("h").unwrap();
        let at = |i| again.numbers.get(number(i).0).map(|(_, s)| s);
        assert_eq!(
            (again.len(), at(0), at(60), at(10)),
            (150, Some(3), Some(2), Some(1)),
            "{name}"
        );
        let expected_log = if steps == 2 { 1 } else { 201 };
        assert_eq!(logged, expected_log, "{name}: covered blocks skipped");
        // A snapshot not in force is removed when the store is opened.
        assert_eq!(store.snapshot_path("h", 1).exists(), steps == 2, "{name}");
    }
}

/// How a run's last commits reached MANIFEST before it ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CutShort {
    /// The block was flushed; the process died before its manifest write.
    BeforeTheWrite,
    /// The manifest write was torn: its slot is unreadable.
    TornWrite,
    /// Three commits were only staged (written at most once a second) when the process died.
    OnlyStaged,
}

#[test]
fn commits_cut_short_are_kept_when_their_blocks_reached_the_disk() {
    // (case, batches of 10 the store holds)
    let cases = [
        (CutShort::BeforeTheWrite, 2),
        (CutShort::TornWrite, 2),
        (CutShort::OnlyStaged, 4),
    ];
    for (case, batches) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(manifest::FILE);
        let after_first;
        {
            let store = StateStore::open(dir.path()).unwrap();
            store.commit("h", &answers_at(0..10, 1_000)).unwrap();
            after_first = std::fs::read(&path).unwrap();
            match case {
                CutShort::BeforeTheWrite => write_block_only(&store, 1, 10..20),
                CutShort::TornWrite => store.commit("h", &answers_at(10..20, 2_000)).unwrap(),
                CutShort::OnlyStaged => {
                    for b in 1..4 {
                        store
                            .commit("h", &answers_at(b * 10..b * 10 + 10, 2_000))
                            .unwrap();
                    }
                }
            }
        }
        match case {
            CutShort::BeforeTheWrite => {}
            // The newest version (3: create, first commit, second commit) sits in slot 1.
            CutShort::TornWrite => rewrite(&path, |b| b[32 * 1024 + 40] ^= 0xff),
            CutShort::OnlyStaged => std::fs::write(&path, &after_first).unwrap(),
        }
        let store = StateStore::open(dir.path()).unwrap();
        let record = store.record("h");
        assert_eq!(
            (record.log_next, record.log_entries),
            (batches, batches * 10),
            "{case:?}"
        );
        assert_eq!(book_len(&store, "h"), batches as usize * 10, "{case:?}");
        store.commit("h", &answers_at(100..110, 3_000)).unwrap();
        assert_eq!(
            book_len(&store, "h"),
            batches as usize * 10 + 10,
            "{case:?}"
        );
    }
}

/// Writes a block of `numbers` under `key` and a new answer (`Rejected`, id 2) for them, as
/// commit writes them before MANIFEST.
fn write_block_only(store: &StateStore, key: u64, numbers: std::ops::Range<u64>) {
    let mut block = vec![1u8];
    for i in numbers {
        block.extend_from_slice(&number(i).0.to_le_bytes());
        block.extend_from_slice(&2u32.to_le_bytes());
        block.extend_from_slice(&2u32.to_le_bytes());
    }
    let dict = store.db.open_tree("dict@h").unwrap();
    dict.insert(2u32.to_be_bytes(), book::encode(&NumberAnswer::Rejected))
        .unwrap();
    store
        .log("h")
        .unwrap()
        .insert(key.to_be_bytes(), block)
        .unwrap();
    store.db.flush().unwrap();
}

/// What a damage case leaves: the part refused, answers kept by a repair, answers it says lost.
struct Expected {
    part: Option<Part>,
    kept: u64,
    lost: Option<u64>,
}

/// The store every damage case starts from: host `h` with a snapshot of 120,000 answers (two
/// chunks: 65,536 and 54,464), then 5 blocks of 100 other numbers in the log.
fn damage_fixture(dir: &Path) {
    let store = StateStore::open(dir).unwrap();
    for batch in 0..3 {
        store
            .commit(
                "h",
                &answers_at(batch * 40_000..(batch + 1) * 40_000, 1_000_000),
            )
            .unwrap();
    }
    store.load("h", ttl(1), 0).unwrap();
    for batch in 0..5 {
        let from = 120_000 + batch * 100;
        store
            .commit("h", &answers_at(from..from + 100, 2_000_000))
            .unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut bytes = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

fn rewrite(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    change(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// `h`'s snapshot file in force.
fn snapshot_file(dir: &Path) -> std::path::PathBuf {
    dir.join(snapshot::file_name("h", Some(1)))
}

/// Removes a key of one of the store's sled trees.
fn remove_from_sled(dir: &Path, tree: &str, key: &[u8]) {
    let db = lock::open_sled(&dir.join("db")).unwrap();
    db.open_tree(tree).unwrap().remove(key).unwrap();
    db.flush().unwrap();
}

#[test]
fn every_kind_of_damage_is_refused_reported_and_repaired() {
    let template = tempfile::tempdir().unwrap();
    damage_fixture(template.path());
    type Damager = fn(&Path);
    let cases: Vec<(&str, Damager, Expected)> = vec![
        ("sound", |_| {}, expect(None, 120_500, Some(0))),
        (
            "sled's data file overwritten with random bytes",
            |dir| rewrite(&dir.join("db/db"), |b| *b = random_bytes(b.len(), 7)),
            expect(Some(Part::Sled), 120_000, Some(500)),
        ),
        (
            "sled's data file cut in half",
            |dir| rewrite(&dir.join("db/db"), |b| b.truncate(b.len() / 2)),
            // What sled still reads of it is sled's affair: at least the snapshot is kept.
            expect(None, 120_000, None),
        ),
        (
            "sled's data file deleted",
            |dir| std::fs::remove_file(dir.join("db/db")).unwrap(),
            expect(Some(Part::Sled), 120_000, Some(500)),
        ),
        (
            "a bit of the snapshot flipped",
            |dir| {
                rewrite(&snapshot_file(dir), |b| {
                    let at = b.len() - 1000;
                    b[at] ^= 8
                })
            },
            expect(Some(Part::Snapshot), 120_500 - 54_464, Some(54_464)),
        ),
        (
            "the snapshot truncated",
            |dir| rewrite(&snapshot_file(dir), |b| b.truncate(b.len() - 500_000)),
            expect(Some(Part::Snapshot), 120_500 - 54_464, Some(54_464)),
        ),
        (
            "the snapshot deleted while the log still references it",
            |dir| std::fs::remove_file(snapshot_file(dir)).unwrap(),
            expect(Some(Part::Snapshot), 500, Some(120_000)),
        ),
        (
            "a block of the log gone from sled",
            |dir| remove_from_sled(dir, &log_tree_name("h"), &4u64.to_be_bytes()),
            expect(Some(Part::Log), 120_400, Some(100)),
        ),
        (
            "an answer gone from the dictionary",
            |dir| remove_from_sled(dir, "dict@h", &1u32.to_be_bytes()),
            expect(Some(Part::Dictionary), 120_500, Some(0)),
        ),
        (
            "MANIFEST deleted",
            |dir| std::fs::remove_file(dir.join(manifest::FILE)).unwrap(),
            expect(Some(Part::Manifest), 120_500, None),
        ),
        (
            "MANIFEST overwritten with random bytes",
            |dir| rewrite(&dir.join(manifest::FILE), |b| *b = random_bytes(b.len(), 3)),
            expect(Some(Part::Manifest), 120_500, None),
        ),
    ];
    assert_eq!(
        120_000 - snapshot::CHUNK,
        54_464,
        "the snapshot's second chunk"
    );
    for (name, damage, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        copy_dir(template.path(), dir);
        damage(dir);
        check_damage_case(name, dir, &expected);
    }
}

/// What a damage case should come to: the part refused (none when the store opens whole), the
/// answers `cache repair` keeps and those it reports lost (none when it cannot know).
fn expect(part: Option<Part>, kept: u64, lost: Option<u64>) -> Expected {
    Expected { part, kept, lost }
}

fn check_damage_case(name: &str, dir: &Path, expected: &Expected) {
    // Never read as smaller than recorded: refused as damaged, or read whole.
    let opened = StateStore::open(dir).and_then(|s| s.load("h", ttl(1), 0).map(|b| b.len()));
    let damaged = match &opened {
        Ok(n) => {
            assert!(expected.part.is_none(), "{name}: opened");
            assert_eq!(*n, 120_500, "{name}");
            false
        }
        Err(e @ StateError::Damaged { damage, .. }) => {
            if let Some(part) = expected.part {
                assert_eq!(damage.part, part, "{name}: {damage}");
            }
            assert!(
                e.to_string().contains("cache repair --state"),
                "{name}: {e}"
            );
            true
        }
        Err(e) => panic!("{name}: {e}"),
    };
    let report = verify(dir).unwrap();
    assert_eq!(report.sound, !damaged, "{name}: {report}");
    if let Some(part) = expected.part {
        assert!(
            report.parts.iter().any(|p| p.part == part && !p.sound),
            "{name}: {report}"
        );
    }
    let repaired = repair(dir).unwrap();
    assert_eq!(repaired.repaired, damaged, "{name}");
    let (kept, lost) = (repaired.kept(), repaired.lost());
    if !damaged {
        assert_eq!((kept, lost), (0, Some(0)), "{name}: nothing to repair");
    } else if expected.part.is_none() {
        // Whatever sled still yields is kept, and every recorded answer is kept or lost.
        assert!(
            kept >= expected.kept && kept + lost.unwrap() == 120_500,
            "{name}: {repaired}"
        );
    } else {
        assert_eq!(
            (kept, lost),
            (expected.kept, expected.lost),
            "{name}: {repaired}"
        );
    }
    eprintln!(
        "{name}: {}",
        if damaged {
            repaired.to_string()
        } else {
            "sound".into()
        }
    );
    assert!(verify(dir).unwrap().sound, "{name}: sound after the repair");
    let store = StateStore::open(dir).unwrap();
    let book = store.load("h", ttl(1), 0).unwrap();
    assert_eq!(
        book.len() as u64,
        if damaged { kept } else { 120_500 },
        "{name}"
    );
    for i in [0u64, 1, 70_000, 120_499] {
        if let Some(known) = book.known(number(i)) {
            let want = &answers_at(i..i + 1, 0)[0].1.answer;
            assert_eq!(known.answer, want, "{name}: {i}");
        }
    }
    if damaged {
        let moved = repaired.moved_to.expect("the damaged parts moved");
        assert!(moved.join("old").exists(), "{name}");
    }
}

#[test]
fn an_interrupted_repair_leaves_the_old_store_or_the_new() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, numbers) in [(old.path(), 0..10), (new.path(), 100..130)] {
        let store = StateStore::open(dir).unwrap();
        store.commit("h", &answers_at(numbers, 1_000)).unwrap();
    }
    std::fs::remove_file(new.path().join(lock::LOCK_FILE)).unwrap();
    // (case, how far the repair went, the answers then in force)
    type Interrupt = fn(&Path, &Path);
    let cases: &[(&str, Interrupt, usize)] = &[
        (
            "cut short before its commit",
            |dir, new| copy_dir(new, &dir.join("repair.tmp/new")),
            10,
        ),
        (
            "committed, nothing moved",
            |dir, new| copy_dir(new, &dir.join("repair.done/new")),
            30,
        ),
        (
            "the old parts half moved aside",
            |dir, new| {
                copy_dir(new, &dir.join("repair.done/new"));
                std::fs::create_dir(dir.join("repair.done/old.partial")).unwrap();
                std::fs::rename(
                    dir.join("MANIFEST"),
                    dir.join("repair.done/old.partial/MANIFEST"),
                )
                .unwrap();
            },
            30,
        ),
        (
            "the new parts half moved in",
            |dir, new| {
                copy_dir(new, &dir.join("repair.done/new"));
                std::fs::create_dir(dir.join("repair.done/old")).unwrap();
                for name in ["MANIFEST", "db"] {
                    std::fs::rename(dir.join(name), dir.join("repair.done/old").join(name))
                        .unwrap();
                }
                std::fs::rename(dir.join("repair.done/new/db"), dir.join("db")).unwrap();
            },
            30,
        ),
    ];
    for (name, interrupt, in_force) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(old.path(), dir.path());
        interrupt(dir.path(), new.path());
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(book_len(&store, "h"), *in_force, "{name}");
        drop(store);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("repair") || n.starts_with("damaged-"))
            .collect();
        let moved_aside = usize::from(*in_force == 30);
        assert_eq!(left.len(), moved_aside, "{name}: {left:?}");
        assert!(verify(dir.path()).unwrap().sound, "{name}");
    }
}

#[test]
fn stats_and_purge_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let day = 86_400_000;
    let now = 100 * day;
    let entries: Vec<(E164, StoredAnswer)> = [
        (1, info(), 0),
        (2, NumberAnswer::NotFound, 3),
        (3, info(), 40),
    ]
    .into_iter()
    .map(|(n, answer, age)| {
        (
            E164(79_000_000_000 + n),
            StoredAnswer {
                checked_at_ms: now - age * day,
                answer,
            },
        )
    })
    .collect();
    store.commit("smsc.ru", &entries).unwrap();
    let stats = store.stats(now).unwrap();
    assert_eq!(stats.entries, 3);
    let host = &stats.hosts["smsc.ru"];
    assert_eq!(host.by_status["ok"], 2);
    assert_eq!(host.by_status["not_found"], 1);
    let ages = (
        host.by_age.under_1d,
        host.by_age.from_1d_to_7d,
        host.by_age.over_30d,
    );
    assert_eq!(ages, (1, 1, 1));
    assert_eq!(
        store
            .purge_older_than(Duration::from_secs(30 * 86400), now)
            .unwrap(),
        1
    );
    let after = store.stats(now).unwrap();
    assert_eq!(after.entries, 2);
    // The purge wrote a snapshot; the size on disk counts it.
    let snapshot = std::fs::metadata(store.snapshot_path("smsc.ru", 1))
        .unwrap()
        .len();
    assert!(after.size_on_disk_bytes > snapshot, "{after:?}");
}
