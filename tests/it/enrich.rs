//! End to end through the binary: CSV and Parquet in, the sandbox on loopback, Parquet out,
//! read back row by row.

use std::collections::HashSet;
use std::io::Write;

use crate::common::*;
use phone_enrich::normalize::{Normalized, Normalizer, PhoneMetadata};
use phone_enrich::provider::sandbox::operator_of;
use polars::prelude::*;
use polars_parquet::parquet::statistics::Statistics;

/// A hand-written export: formats people type, a duplicate, garbage, an empty cell, quoting
/// with delimiters, quotes and newlines inside fields, Cyrillic.
const CRM: &str = "id,name,phone,comment
1,\"Иванов, Иван\",8 (916) 123-45-67,first
2,Петрова Мария,+7 916 123 45 67,\"same number, other format\"
3,Сидоров,9161234567,
4,Кузнецов,+7(903)1234567,\"two
lines\"
5,Мусор,n/a,
6,Пусто,,
7,Два номера,\"+7 926 765 43 21, 8 903 123 45 67\",
8,Беларусь,+375 29 123-45-67,
9,Городской,+7 495 123 45 67,
10,Казахстан,+7 701 123 4567,
11,Кавычки,\"say \"\"hi\"\"\",
";

/// (id, e164, status) the output must carry for each row of `CRM`.
const CRM_EXPECTED: &[(&str, Option<&str>, Option<&str>)] = &[
    ("1", Some("+79161234567"), Some("ok")),
    ("2", Some("+79161234567"), Some("ok")),
    ("3", Some("+79161234567"), Some("ok")),
    ("4", Some("+79031234567"), Some("ok")),
    ("5", None, Some("invalid_number")),
    ("6", None, None),
    ("7", Some("+79267654321"), Some("ok")),
    ("8", Some("+375291234567"), Some("ok")),
    ("9", Some("+74951234567"), Some("not_found")),
    ("10", Some("+77011234567"), Some("ok")),
    ("11", None, Some("invalid_number")),
];

const NO_NOT_FOUND: &str = "not_found_percent = 0\n";

#[test]
fn csv_rows_come_back_in_order_with_the_sandbox_answers() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), &format!("{FAST_SANDBOX}{NO_NOT_FOUND}"));
    ws.write("crm.csv", CRM);
    let job = ws.job(
        "job.toml",
        "crm.csv",
        "",
        &provider_for(&sandbox, "batch_size = 2\n"),
    );
    let out = ws.run(&job, &[]);
    assert_exit(&out, 0);

    let df = ws.read_output();
    assert_eq!(df.height(), CRM_EXPECTED.len());
    let ids = strings(&df, "id");
    let e164 = strings(&df, "phone_e164");
    let status = strings(&df, "phone_status");
    for (i, (id, want_e164, want_status)) in CRM_EXPECTED.iter().enumerate() {
        assert_eq!(ids[i].as_deref(), Some(*id), "row {i}");
        assert_eq!(e164[i].as_deref(), *want_e164, "row {i} e164");
        assert_eq!(status[i].as_deref(), *want_status, "row {i} status");
    }
    // Input columns are untouched, quoting included.
    assert_eq!(strings(&df, "name")[0].as_deref(), Some("Иванов, Иван"));
    assert_eq!(strings(&df, "comment")[3].as_deref(), Some("two\nlines"));
    assert_eq!(strings(&df, "phone")[10].as_deref(), Some("say \"hi\""));
    assert_eq!(strings(&df, "comment")[2], None);

    // The enrichment is what the sandbox answers for the number.
    let want = operator_of(phone_enrich::normalize::E164(79161234567), 0).unwrap();
    assert_eq!(
        strings(&df, "phone_operator")[0].as_deref(),
        Some(want.operator.as_str())
    );
    assert_eq!(
        strings(&df, "phone_region")[0].as_deref(),
        Some(want.region.as_str())
    );
    assert_eq!(strings(&df, "phone_country")[0].as_deref(), Some("Россия"));
    assert_eq!(
        df.column("phone_mcc").unwrap().u16().unwrap().get(0),
        Some(250)
    );
    assert_eq!(
        strings(&df, "phone_mnc")[0].as_deref(),
        Some(want.mnc.as_str())
    );
    assert_eq!(df.column("phone_tz").unwrap().i8().unwrap().get(0), want.tz);
    assert!(df
        .column("phone_checked_at")
        .unwrap()
        .is_not_null()
        .get(0)
        .unwrap());
    assert!(df
        .column("phone_checked_at")
        .unwrap()
        .is_null()
        .get(4)
        .unwrap());

    // Types as documented.
    let types: Vec<(String, DataType)> = df
        .schema()
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    let want_types: Vec<(&str, DataType)> = vec![
        ("id", DataType::String),
        ("name", DataType::String),
        ("phone", DataType::String),
        ("comment", DataType::String),
        ("phone_e164", DataType::String),
        ("phone_status", DataType::String),
        ("phone_country", DataType::String),
        ("phone_operator", DataType::String),
        ("phone_region", DataType::String),
        ("phone_mcc", DataType::UInt16),
        ("phone_mnc", DataType::String),
        ("phone_tz", DataType::Int8),
        (
            "phone_checked_at",
            DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        ),
    ];
    assert_eq!(
        types,
        want_types
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect::<Vec<_>>()
    );

    // 6 distinct valid numbers, asked once each, in batches of at most 2.
    let stats = sandbox.stats();
    assert_eq!(stats.numbers_answered, 6);
    assert_eq!(stats.requests, 3);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
}

#[test]
fn a_generated_export_matches_the_sandbox_row_by_row() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    generate(&ws, "export.csv", 1500, 3);
    let job = ws.job(
        "job.toml",
        "export.csv",
        "",
        &provider_for(&sandbox, "batch_size = 50\n"),
    );
    assert_exit(&ws.run(&job, &[]), 0);

    let df = ws.read_output();
    assert_eq!(df.height(), 1500);
    let normalizer = Normalizer::new(
        phone_enrich::normalize::Region::RU,
        PhoneMetadata::built_in(),
    );
    let (ids, phones, e164, status, operator) = (
        strings(&df, "id"),
        strings(&df, "phone"),
        strings(&df, "phone_e164"),
        strings(&df, "phone_status"),
        strings(&df, "phone_operator"),
    );
    let mut distinct = HashSet::new();
    for i in 0..df.height() {
        assert_eq!(ids[i], Some((i + 1).to_string()), "row order");
        let expected = phones[i]
            .as_deref()
            .map(|p| normalizer.normalize(p))
            .unwrap_or(Normalized::Empty);
        match expected {
            Normalized::Empty => assert_eq!(status[i], None, "row {i}"),
            Normalized::Invalid => {
                assert_eq!(status[i].as_deref(), Some("invalid_number"), "row {i}")
            }
            Normalized::Valid(n) => {
                distinct.insert(n);
                assert_eq!(e164[i], Some(format!("+{n}")), "row {i}");
                match operator_of(n, 3) {
                    Some(info) => {
                        assert_eq!(status[i].as_deref(), Some("ok"), "row {i}");
                        assert_eq!(
                            operator[i].as_deref(),
                            Some(info.operator.as_str()),
                            "row {i}"
                        );
                    }
                    None => assert_eq!(status[i].as_deref(), Some("not_found"), "row {i}"),
                }
            }
        }
    }
    let stats = sandbox.stats();
    assert_eq!(
        stats.numbers_answered as usize,
        distinct.len(),
        "each number asked once"
    );
    assert_eq!(stats.requests as usize, distinct.len().div_ceil(50));
    assert_dictionary_encoded(&ws.path("out.parquet"), &df);
}

/// Asserts that each added column but `phone_e164` (the columns that take few values, written
/// as dictionary pages as polars, pyarrow and DuckDB write such columns) has a dictionary page
/// in every row group of the Parquet file at `path` (read back as `df`), and min/max statistics
/// that are those of the row group's values (taken from the dictionary, they would show a value
/// the row group lacks).
fn assert_dictionary_encoded(path: &std::path::Path, df: &DataFrame) {
    let mut file = std::fs::File::open(path).unwrap();
    let metadata = polars_parquet::read::read_metadata(&mut file).unwrap();
    let mut offset = 0;
    for (g, group) in metadata.row_groups.iter().enumerate() {
        let rows = df.slice(offset, group.num_rows());
        offset += group.num_rows() as i64;
        let added = enrichment(&rows);
        for column in &added.columns()[1..] {
            let name = column.name().as_str();
            let chunk = group.columns_under_root_iter(name).unwrap().next().unwrap();
            assert!(
                chunk.dictionary_page_offset().is_some(),
                "{name} of row group {g} is not dictionary-encoded"
            );
            let stats = chunk.statistics(&metadata.footer_buf).unwrap().unwrap();
            let (min, max) = match stats {
                Statistics::Binary(s) => {
                    let text = |v: Option<Vec<u8>>| v.map(|v| String::from_utf8(v).unwrap());
                    (text(s.min_value), text(s.max_value))
                }
                Statistics::Int32(s) => (
                    s.min_value.map(|v| v.to_string()),
                    s.max_value.map(|v| v.to_string()),
                ),
                other => panic!("{name}: statistics of an unexpected type {other:?}"),
            };
            let (want_min, want_max) = match column.dtype() {
                DataType::String => {
                    let values = column.str().unwrap();
                    (
                        values.iter().flatten().min().map(str::to_string),
                        values.iter().flatten().max().map(str::to_string),
                    )
                }
                _ => {
                    let values = column.cast(&DataType::Int32).unwrap();
                    let values = values.i32().unwrap();
                    (
                        values.min().map(|v| v.to_string()),
                        values.max().map(|v| v.to_string()),
                    )
                }
            };
            assert_eq!((min, max), (want_min, want_max), "{name} of row group {g}");
        }
    }
    assert_eq!(offset as usize, df.height());
}

#[test]
fn csv_dialects_give_the_same_output() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let provider = provider_for(&sandbox, "");
    ws.write("utf8.csv", CRM);
    assert_exit(
        &ws.run(&ws.job("utf8.toml", "utf8.csv", "", &provider), &[]),
        0,
    );
    let reference = ws.read_output();

    let semicolons = CRM
        .replace(',', ";")
        .replace("Иванов; Иван", "Иванов, Иван")
        .replace("same number; other", "same number, other")
        .replace("+7 926 765 43 21; 8", "+7 926 765 43 21, 8");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(CRM.as_bytes()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "cp1251.csv",
            encoding_rs::WINDOWS_1251.encode(&semicolons).0.into_owned(),
            "encoding = \"windows-1251\"",
        ),
        (
            "bom.csv",
            [b"\xEF\xBB\xBF".as_slice(), CRM.as_bytes()].concat(),
            "",
        ),
        ("crm.csv.gz", gz.finish().unwrap(), ""),
        (
            "tabs.tsv",
            CRM.replace(',', "\t")
                .replace("Иванов\t Иван", "Иванов, Иван")
                .replace("same number\t other", "same number, other")
                .replace("+7 926 765 43 21\t 8", "+7 926 765 43 21, 8")
                .into_bytes(),
            "delimiter = \"tab\"",
        ),
    ];
    for (name, bytes, extra) in cases {
        ws.write(name, bytes);
        let out = ws.run(
            &ws.job(&format!("{name}.toml"), name, extra, &provider),
            &[],
        );
        assert_exit(&out, 0);
        let df = ws.read_output();
        assert!(
            df.select(["id", "name", "phone", "comment"])
                .unwrap()
                .equals_missing(
                    &reference
                        .select(["id", "name", "phone", "comment"])
                        .unwrap()
                ),
            "{name}"
        );
        assert!(
            enrichment(&df).equals_missing(&enrichment(&reference)),
            "{name}"
        );
    }
}

#[test]
fn parquet_input_keeps_its_types_and_takes_integer_phones() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), &format!("{FAST_SANDBOX}{NO_NOT_FOUND}"));
    let mut df = df!(
        "id" => [1i64, 2, 3, 4],
        "phone" => [Some(79161234567i64), None, Some(79161234567), Some(12345)],
        "score" => [0.5f64, 1.5, 2.5, 3.5],
        "active" => [true, false, true, false],
        "name" => ["Иванов", "Петров", "Сидоров", "Козлов"],
    )
    .unwrap();
    let input = ws.path("in.parquet");
    ParquetWriter::new(std::fs::File::create(&input).unwrap())
        .finish(&mut df)
        .unwrap();
    let job = ws.job("job.toml", "in.parquet", "", &provider_for(&sandbox, ""));
    assert_exit(&ws.run(&job, &[]), 0);

    let out = ws.read_output();
    assert!(out
        .select(["id", "phone", "score", "active", "name"])
        .unwrap()
        .equals_missing(&df));
    assert_eq!(
        strings(&out, "phone_e164"),
        vec![
            Some("+79161234567".into()),
            None,
            Some("+79161234567".into()),
            None
        ]
    );
    assert_eq!(
        strings(&out, "phone_status"),
        vec![
            Some("ok".into()),
            None,
            Some("ok".into()),
            Some("invalid_number".into())
        ]
    );
    assert_eq!(sandbox.stats().requests, 1);
}

#[test]
fn several_phone_columns_each_get_their_columns_and_share_lookups() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), &format!("{FAST_SANDBOX}{NO_NOT_FOUND}"));
    ws.write(
        "two.csv",
        "id;mobile;work\n1;+7 916 123 45 67;8 903 123 45 67\n2;8 903 123 45 67;\n",
    );
    let job = ws.write(
        "job.toml",
        format!(
            "[input]\npath = \"two.csv\"\nphone_columns = [\"mobile\", \"work\"]\n[output]\npath = \"out.parquet\"\ncolumn_prefixes = {{ work = \"w_\" }}\n[state]\ndir = \"state\"\n[provider]\n{}",
            provider_for(&sandbox, "")
        ),
    );
    assert_exit(&ws.run(&job, &[]), 0);
    let df = ws.read_output();
    assert_eq!(
        strings(&df, "mobile_e164"),
        vec![Some("+79161234567".into()), Some("+79031234567".into())]
    );
    assert_eq!(
        strings(&df, "w_e164"),
        vec![Some("+79031234567".into()), None]
    );
    assert_eq!(strings(&df, "w_status"), vec![Some("ok".into()), None]);
    assert_eq!(sandbox.stats().numbers_answered, 2);
}

#[test]
fn bad_jobs_and_inputs_stop_before_any_request_and_write_nothing() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let provider = provider_for(&sandbox, "");
    ws.write("crm.csv", CRM);
    ws.write("clash.csv", "id,phone,phone_status\n1,89161234567,x\n");
    ws.write(
        "ragged.csv",
        "id,phone\n1,89161234567\n2,89031234567,extra\n",
    );
    let cases: Vec<(&str, std::path::PathBuf, i32, &str)> = vec![
        (
            "unknown key",
            ws.job("a.toml", "crm.csv", "colour = \"red\"", &provider),
            2,
            "unknown field `colour`",
        ),
        (
            "bad rate",
            ws.job(
                "b.toml",
                "crm.csv",
                "",
                &format!("{provider}\nconcurrency = 20"),
            ),
            2,
            "provider.concurrency",
        ),
        (
            "missing input",
            ws.job("c.toml", "nope.csv", "", &provider),
            3,
            "nope.csv",
        ),
        (
            "missing column",
            {
                let job = ws.job("d.toml", "crm.csv", "", &provider);
                ws.write(
                    "d.toml",
                    std::fs::read_to_string(job)
                        .unwrap()
                        .replace("[\"phone\"]", "[\"tel\"]"),
                )
            },
            3,
            "no column `tel`",
        ),
        (
            "name clash",
            ws.job("e.toml", "clash.csv", "", &provider),
            2,
            "phone_status",
        ),
        (
            "ragged row",
            ws.job("f.toml", "ragged.csv", "", &provider),
            3,
            "line 3",
        ),
    ];
    for (what, job, code, message) in cases {
        let out = ws.run(&job, &[]);
        assert_exit(&out, code);
        assert!(
            stderr(&out).contains(message),
            "{what}: stderr lacks `{message}`:\n{}",
            stderr(&out)
        );
        assert!(
            !ws.path("out.parquet").exists(),
            "{what}: an output was written"
        );
    }
    assert_eq!(sandbox.stats().requests, 0, "a request was sent");
    let leftovers = temp_files(ws.dir.path());
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn wrong_credentials_stop_after_one_request_with_their_own_exit_code() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let input = ws.path("export.csv");
    assert!(std::process::Command::new(BIN)
        .args(["generate", "--rows", "2000"])
        .arg(&input)
        .status()
        .unwrap()
        .success());
    let job = ws.job(
        "job.toml",
        "export.csv",
        "",
        &provider_for(&sandbox, "batch_size = 10\n"),
    );
    let out = ws.run_env(
        &job,
        &[],
        &[
            ("SMSC_LOGIN", "sandbox"),
            ("SMSC_PASSWORD", "not-the-password"),
        ],
    );
    assert_exit(&out, 5);
    assert_stderr_contains(&out, "refused the credentials");
    assert!(
        !stderr(&out).contains("not-the-password"),
        "the password was printed"
    );
    // Until the provider accepts the credentials, requests go one at a time.
    let stats = sandbox.stats();
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.errors.get("2").copied(), Some(1));
    assert!(!ws.path("out.parquet").exists());
}

#[test]
fn a_rerun_over_the_same_export_sends_nothing() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    ws.write("crm.csv", CRM);
    let job = ws.job("job.toml", "crm.csv", "", &provider_for(&sandbox, ""));
    let report = ws.path("report.json");
    let passes = || {
        let text = std::fs::read_to_string(&report).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["summary"]["passes"].as_u64().unwrap()
    };
    assert_exit(&ws.run(&job, &["--report", report.to_str().unwrap()]), 0);
    assert_eq!(passes(), 2, "read, look up, read again to write");
    let first = ws.read_output();
    let requests = sandbox.stats().requests;
    assert_exit(&ws.run(&job, &["--report", report.to_str().unwrap()]), 0);
    assert_eq!(
        sandbox.stats().requests,
        requests,
        "the rerun asked the provider"
    );
    assert_eq!(passes(), 1, "every number cached: the input is read once");
    let second = ws.read_output();
    assert!(
        second.equals_missing(&first),
        "the cached answers, times included, are the same"
    );
    assert_exit(&ws.run(&job, &["--refresh"]), 0);
    assert!(sandbox.stats().requests > requests, "--refresh asked again");
}

#[test]
fn the_output_does_not_depend_on_how_the_input_is_cut() {
    let Setup { ws, sandbox, job } = setup(3000, 11, "", "");
    assert_exit(&ws.run(&job, &[]), 0);
    let reference = ws.read_output();
    let requests = sandbox.stats().requests;
    // Pieces of 1 and 7 rows go to every worker thread out of order and come back in order;
    // every number is cached now, so each run reads the input once.
    for rows in ["1", "7", "100000"] {
        let set = format!("output.row_group_size={rows}");
        assert_exit(&ws.run(&job, &["--set", &set]), 0);
        let df = ws.read_output();
        assert!(df.equals_missing(&reference), "pieces of {rows} rows");
    }
    assert_eq!(sandbox.stats().requests, requests);
}

#[test]
fn a_bad_row_early_in_a_long_file_stops_the_run() {
    let ws = Workspace::new();
    let mut text = String::from("id,phone\n");
    for i in 0..200_000u64 {
        if i == 30 {
            text.push_str("30,+79161234567,extra\n");
        } else {
            text.push_str(&format!("{i},8916{i:07}\n"));
        }
    }
    ws.write("crm.csv", text);
    // Once with an empty store (reading only), once with answers (writing while reading).
    for round in 0..2 {
        let job = ws.job("job.toml", "crm.csv", "", "kind = \"sandbox\"\n");
        if round == 1 {
            ws.write("ok.csv", "id,phone\n1,89161234567\n");
            let warm = ws.job("warm.toml", "ok.csv", "", "kind = \"sandbox\"\n");
            assert_exit(&ws.run(&warm, &[]), 0);
        }
        let before = std::fs::read(ws.path("out.parquet")).ok();
        let mut child = std::process::Command::new(BIN)
            .arg("run")
            .arg(&job)
            .args(["--set", "output.row_group_size=10"])
            .current_dir(ws.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Not a timing: a run that never ends is the failure this test exists for.
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > std::time::Duration::from_secs(120) {
                child.kill().unwrap();
                panic!("round {round}: the run did not stop after the bad row");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(3), "round {round}: {stderr}");
        assert!(
            stderr.contains("line 32 has 3 fields"),
            "round {round}: {stderr}"
        );
        assert!(temp_files(ws.dir.path()).is_empty(), "round {round}");
        // Round 1 finds the warm-up's output, untouched.
        let after = std::fs::read(ws.path("out.parquet")).ok();
        assert_eq!(after, before, "round {round}: the output changed");
        assert_eq!(after.is_some(), round == 1);
    }
}
