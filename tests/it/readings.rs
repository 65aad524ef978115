//! The four ways the previous release read a cell differently from libphonenumber (issue 18),
//! through the binary: each class's cells come out as libphonenumber reads them (looked up and
//! written as the number, or `invalid_number` and never sent); and when the plans change
//! between runs, a number that became valid is looked up and a cached answer of a number no
//! longer valid is not written as `ok`.

use crate::common::*;

/// Runs a job over `rows` (`phone` cells) in `region` against a fresh sandbox; returns each
/// row's `phone_status` and `phone_e164`, and the run's `looked_up`.
fn read_through_the_binary(
    region: &str,
    rows: &[&str],
) -> (Vec<Option<String>>, Vec<Option<String>>, u64) {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(
        ws.dir.path(),
        &format!("{FAST_SANDBOX}not_found_percent = 0\n"),
    );
    let mut csv = String::from("id,phone\n");
    for (i, row) in rows.iter().enumerate() {
        csv.push_str(&format!("{i},\"{row}\"\n"));
    }
    ws.write("phones.csv", csv);
    let job = ws.job(
        "job.toml",
        "phones.csv",
        &format!("default_region = \"{region}\""),
        &provider_for(&sandbox, ""),
    );
    let out = ws.run(&job, &["--report", "report.json"]);
    assert_exit(&out, 0);
    let df = ws.read_output();
    let looked_up = ws.report("report.json")["summary"]["looked_up"]
        .as_u64()
        .expect("looked_up");
    (
        strings(&df, "phone_status"),
        strings(&df, "phone_e164"),
        looked_up,
    )
}

/// Cells and what they must become: `Some(E.164)` looked up and answered, `None` invalid.
fn check(region: &str, cases: &[(&str, Option<&str>)]) {
    let rows: Vec<&str> = cases.iter().map(|(cell, _)| *cell).collect();
    let (status, e164, looked_up) = read_through_the_binary(region, &rows);
    for (row, (cell, want)) in cases.iter().enumerate() {
        assert_eq!(e164[row].as_deref(), *want, "{cell:?} in {region}");
        // The sandbox knows operators of some countries only: `not_found` is an answer too.
        let answered = matches!(status[row].as_deref(), Some("ok" | "not_found"));
        match want {
            Some(_) => assert!(answered, "{cell:?}: {:?}", status[row]),
            None => assert_eq!(status[row].as_deref(), Some("invalid_number"), "{cell:?}"),
        }
    }
    let valid: std::collections::HashSet<_> = cases.iter().filter_map(|(_, want)| *want).collect();
    assert_eq!(
        looked_up,
        valid.len() as u64,
        "only the valid numbers are looked up"
    );
}

/// Class 1: the trunk prefix, then an area code that does not exist, is an invalid Russian
/// number, not a foreign one (no `+`, no international prefix: no foreign country code).
#[test]
fn an_invalid_national_number_does_not_become_a_foreign_one() {
    check(
        "RU",
        &[
            ("8 (406) 930-57-50", None),
            ("8-430-230-45-27", None),
            ("8 (502) 457-83-20", None),
            ("8 627 960 59 85", None),
            ("8 (829) 981-24-77", None),
            ("375291234567", None),
            ("8 916 123 45 67", Some("+79161234567")),
            ("8 10 375 29 123 45 67", Some("+375291234567")),
        ],
    );
}

/// Class 2: a number of a region sharing the default region's country code is that region's
/// valid number (KZ under +7 read in RU, GB's crown dependencies under +44).
#[test]
fn a_number_of_a_region_sharing_the_country_code_is_valid() {
    check(
        "RU",
        &[
            ("7012426332", Some("+77012426332")),
            ("8 701 242 63 32", Some("+77012426332")),
            ("+7 717 212 3456", Some("+77172123456")),
        ],
    );
    check(
        "GB",
        &[
            ("07781 123456", Some("+447781123456")),
            ("01624 756789", Some("+441624756789")),
        ],
    );
}

/// Class 3: validity is the full national-number pattern of the number's region and type: a
/// digit too many or too few is invalid, a long valid number is valid.
#[test]
fn a_digit_too_many_or_too_few_is_invalid_and_long_valid_numbers_are_valid() {
    check(
        "RU",
        &[
            ("+387611234567", None),
            ("+880271112347", None),
            ("+359430123453", None),
            ("+8610123456785", None),
            ("+855912345679", None),
            ("+86101234567", None),
            ("+4980012345678900", Some("+4980012345678900")),
        ],
    );
}

/// Class 4: short valid numbers of small territories and non-geographic services.
#[test]
fn short_valid_numbers_are_looked_up() {
    check(
        "RU",
        &[
            ("+6837012", Some("+6837012")),
            ("+6903101", Some("+6903101")),
            ("+3114020", Some("+3114020")),
            ("+4702000", Some("+4702000")),
            ("+989601", Some("+989601")),
            ("+5982112", Some("+5982112")),
        ],
    );
}

/// libphonenumber 9.0.33's XML with RU's mobile pattern opening `300…`, written to the
/// workspace as `opened.xml`.
fn write_opened_plans(ws: &Workspace) {
    let (_, opened) = plans_with_ru_300();
    ws.write("opened.xml", opened);
}

/// Plans change between runs over one state store: the numbers that became valid are looked
/// up on the rerun; when they are no longer valid, their cached answers are not written.
#[test]
fn a_rerun_looks_up_new_numbers_and_writes_no_cached_answer_of_an_invalid_one() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(
        ws.dir.path(),
        &format!("{FAST_SANDBOX}not_found_percent = 0\n"),
    );
    ws.write(
        "phones.csv",
        "id,phone\n1,+7 300 123-45-67\n2,8 (300) 123-45-68\n3,8 916 123 45 67\n",
    );
    write_opened_plans(&ws);
    let provider = provider_for(&sandbox, "");
    // The plans of each run, whether rows 1 and 2 are numbers, and the run's lookups.
    let runs = [
        ("", false, 1),
        ("metadata = \"opened.xml\"", true, 2),
        ("", false, 0),
        ("metadata = \"opened.xml\"", true, 0),
    ];
    for (i, (setting, valid, looked_up)) in runs.into_iter().enumerate() {
        let job = ws.job(
            "job.toml",
            "phones.csv",
            "",
            &format!("{provider}\n[normalize]\n{setting}\n"),
        );
        let out = ws.run(&job, &["--report", "report.json"]);
        assert_exit(&out, 0);
        let df = ws.read_output();
        let statuses = strings(&df, "phone_status");
        let checked = df
            .column("phone_checked_at")
            .unwrap()
            .as_materialized_series()
            .is_not_null();
        for (row, status) in statuses.iter().enumerate().take(2) {
            let status = status.as_deref();
            if valid {
                // The sandbox knows no operator in this new range: `not_found` is its answer.
                assert!(
                    matches!(status, Some("ok" | "not_found")),
                    "run {i}, row {row}: {status:?}"
                );
                assert_eq!(checked.get(row), Some(true), "run {i}, row {row}: answered");
            } else {
                assert_eq!(status, Some("invalid_number"), "run {i}, row {row}");
                assert_eq!(
                    checked.get(row),
                    Some(false),
                    "run {i}, row {row}: a cached answer"
                );
            }
        }
        assert_eq!(statuses[2].as_deref(), Some("ok"), "run {i}");
        let summary = &ws.report("report.json")["summary"];
        assert_eq!(summary["looked_up"], looked_up, "run {i}");
    }
}
