//! `normalize.metadata`: a libphonenumber `PhoneNumberMetadata.xml` loaded at start. The files
//! are libphonenumber 9.0.33's XML (committed gzipped) and a copy edited to open a new RU
//! mobile range, `+7 300 …`.

use sha2::{Digest, Sha256};

use crate::common::*;

/// The crate's XML and the edited copy, written into the workspace; their SHA-256s.
fn write_metadata(ws: &Workspace) -> [(String, String); 2] {
    let (xml, edited) = plans_with_ru_300();
    [("crate.xml", xml), ("edited.xml", edited)].map(|(name, text)| {
        let path = ws.write(name, &text);
        let sha256: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (format!("{} (sha256 {sha256})", path.display()), sha256)
    })
}

/// Two numbers in the new range, a Moscow mobile, a St. Petersburg number (whose national
/// number starts with the national prefix 8, valid with any plans).
const PHONES: &str =
    "id,phone\n1,+7 300 123-45-67\n2,8 (300) 1234568\n3,8 916 123 45 67\n4,8 (812) 123-45-67\n";

#[test]
fn a_range_the_metadata_file_opens_is_looked_up_and_the_file_is_named_in_the_output() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(
        ws.dir.path(),
        &format!("{FAST_SANDBOX}not_found_percent = 0\n"),
    );
    ws.write("phones.csv", PHONES);
    let [crate_xml, edited] = write_metadata(&ws);
    let provider = provider_for(&sandbox, "");
    // Each run: the setting, how the run names its plans, whether `+7 300 …` is a number, and
    // the numbers it looks up (the Moscow and St. Petersburg ones once, then the two new ones).
    let runs = [
        ("", "built-in (libphonenumber 9.0.42)", false, 2),
        ("metadata = \"crate.xml\"", crate_xml.0.as_str(), false, 0),
        ("metadata = \"edited.xml\"", edited.0.as_str(), true, 2),
    ];
    for (setting, described, opened, looked_up) in runs {
        let job = ws.job(
            "job.toml",
            "phones.csv",
            "",
            &format!("{provider}\n[normalize]\n{setting}\n"),
        );
        let out = ws.run(&job, &["--report", "report.json"]);
        assert_exit(&out, 0);
        let df = ws.read_output();
        let status = strings(&df, "phone_status");
        let e164 = strings(&df, "phone_e164");
        for row in 0..2 {
            let answered = matches!(status[row].as_deref(), Some("ok" | "not_found"));
            assert_eq!(
                answered, opened,
                "{setting}: row {row} is {:?}",
                status[row]
            );
            assert_eq!(e164[row].is_some(), opened, "{setting}: row {row}");
        }
        if opened {
            assert_eq!(e164[0].as_deref(), Some("+73001234567"));
            assert_eq!(e164[1].as_deref(), Some("+73001234568"));
        }
        assert_eq!(status[2].as_deref(), Some("ok"), "{setting}");
        assert!(
            matches!(status[3].as_deref(), Some("ok" | "not_found")),
            "{setting}"
        );
        assert_eq!(e164[3].as_deref(), Some("+78121234567"), "{setting}");
        let kv = parquet_metadata(&ws.path("out.parquet"));
        assert_eq!(kv["normalize.metadata"], described, "{setting}");
        let summary = &ws.report("report.json")["summary"];
        assert_eq!(summary["metadata"], described);
        assert_eq!(summary["looked_up"], looked_up, "{setting}");
    }
    assert_ne!(crate_xml.1, edited.1);
}

#[test]
fn a_bad_metadata_file_is_a_job_error_naming_it_before_any_work() {
    let ws = Workspace::new();
    ws.write("phones.csv", PHONES);
    ws.write("not-xml.xml", "id,phone\n1,2\n");
    ws.write(
        "other.xml",
        "<?xml version=\"1.0\"?><html><body>hi</body></html>",
    );
    ws.write(
        "no-territories.xml",
        "<phoneNumberMetadata><territories></territories></phoneNumberMetadata>",
    );
    for name in [
        "missing.xml",
        "not-xml.xml",
        "other.xml",
        "no-territories.xml",
    ] {
        let job = ws.job(
            "job.toml",
            "phones.csv",
            "",
            &format!("kind = \"sandbox\"\n\n[normalize]\nmetadata = \"{name}\"\n"),
        );
        for command in ["run", "validate"] {
            let out = ws.command(command, &job, &[], &[]);
            assert_exit(&out, 2);
            let err = stderr(&out);
            assert!(err.contains("normalize.metadata"), "{name}: {err}");
            assert!(
                err.contains(&ws.path(name).display().to_string()),
                "{name}: {err}"
            );
        }
        assert!(!ws.path("out.parquet").exists(), "{name}");
        assert!(!ws.path("state").exists(), "{name}: the state was opened");
    }
}
