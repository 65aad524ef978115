//! Typed CSV columns through the binary (issue 14): inferred as polars infers them, declared in
//! `input.types`, and a later value that does not fit refused before any request.

use std::path::Path;
use std::sync::Arc;

use polars::io::csv::read::CsvReadOptions;
use polars::prelude::*;

use crate::common::*;

/// A CRM export of `rows` rows whose columns polars reads as int64, float64, bool, date,
/// datetime, time and text, in the shapes that decide inference: leading zeros, `NaN`,
/// exponents, booleans in any case, day-first dates, thousands separators, an empty column.
fn crm_export(rows: usize) -> String {
    let mut text = String::from(
        "id,name,phone,amount,active,zip,signup,created,visited,callback,note,empty\n",
    );
    for i in 0..rows {
        let name = match i % 5 {
            0 => format!("\"Иванов, {i}\""),
            _ => format!("Петров {i}"),
        };
        let phone = match i % 3 {
            0 => format!("7916{:07}", 1_000_000 + i),
            1 => format!("8 (916) {:03}-{:02}-{:02}", 100 + i % 900, i % 100, i % 97),
            _ => format!("+7 903 {:03} {:02} {:02}", 200 + i % 800, i % 100, i % 89),
        };
        let amount = match i % 7 {
            0 => String::new(),
            1 => "NaN".into(),
            2 => format!("{i}"),
            3 => format!("-{i}.5"),
            4 => format!("{}.5e3", i % 10),
            _ => format!("{}.{:02}", i * 13, i % 100),
        };
        let active = ["true", "false", "True", "FALSE"][i % 4];
        let zip = format!("{:06}", i * 37 % 1000);
        let (month, day, hour) = (i % 12 + 1, i % 28 + 1, i % 24);
        let signup = format!("2025-{month:02}-{day:02}");
        let created = format!(
            "2025-{month:02}-{day:02} {hour:02}:{:02}:{:02}",
            i % 60,
            i * 7 % 60
        );
        let visited = format!("{day:02}.{month:02}.2024");
        let callback = format!("{hour:02}:{:02}:{:02}", i * 11 % 60, i % 60);
        let note = match i % 3 {
            0 => format!("\"{},{:03}\"", i + 1, i % 1000),
            _ => format!("{} 000", i + 1),
        };
        text.push_str(&format!(
            "{i},{name},{phone},{amount},{active},{zip},{signup},{created},{visited},{callback},{note},\n"
        ));
    }
    text
}

/// polars' own reading of a CSV file: types inferred from up to 10,000 rows, dates tried,
/// `overwrite` declaring some columns.
fn polars_reading(path: &Path, overwrite: Option<Schema>) -> DataFrame {
    CsvReadOptions::default()
        .with_infer_schema_length(Some(10_000))
        .with_schema_overwrite(overwrite.map(Arc::new))
        .map_parse_options(|o| o.with_try_parse_dates(true))
        .try_into_reader_with_file_path(Some(path.into()))
        .unwrap()
        .finish()
        .unwrap()
}

/// Asserts that every input column of the output has polars' type and values.
fn assert_read_as_polars_reads(output: &DataFrame, polars: &DataFrame) {
    for theirs in polars.columns() {
        let ours = output.column(theirs.name()).unwrap();
        assert_eq!(ours.dtype(), theirs.dtype(), "column {}", theirs.name());
        // NaN is not equal to itself: floats are compared by their bits, every NaN alike.
        let bits = |c: &Column| -> Vec<Option<u64>> {
            let canonical = |x: f64| if x.is_nan() { f64::NAN } else { x }.to_bits();
            c.f64().unwrap().iter().map(|v| v.map(canonical)).collect()
        };
        if ours.dtype() == &DataType::Float64 {
            assert_eq!(bits(ours), bits(theirs), "column {}", theirs.name());
            continue;
        }
        assert!(
            ours.equals_missing(theirs),
            "column {}:\nours {ours:?}\npolars {theirs:?}",
            theirs.name()
        );
    }
}

#[test]
fn a_crm_export_with_inferred_types_reads_as_polars_reads_it() {
    let ws = Workspace::new();
    let input = ws.write("crm.csv", crm_export(500));
    let job = ws.job(
        "job.toml",
        "crm.csv",
        "infer_types = true",
        "kind = \"sandbox\"",
    );
    let out = ws.run(&job, &[]);
    assert_exit(&out, 0);
    let output = ws.read_output();
    let polars = polars_reading(&input, None);
    let datetime = DataType::Datetime(TimeUnit::Microseconds, None);
    let expected: &[(&str, DataType)] = &[
        ("id", DataType::Int64),
        ("name", DataType::String),
        ("phone", DataType::String),
        ("amount", DataType::Float64),
        ("active", DataType::Boolean),
        ("zip", DataType::Int64),
        ("signup", DataType::Date),
        ("created", datetime),
        ("visited", DataType::Date),
        ("callback", DataType::Time),
        ("note", DataType::String),
        ("empty", DataType::String),
    ];
    for (name, dtype) in expected {
        assert_eq!(output.column(name).unwrap().dtype(), dtype, "{name}");
    }
    assert_eq!(polars.width(), expected.len());
    assert_read_as_polars_reads(&output, &polars);
    assert_eq!(output.height(), 500);
    assert_eq!(
        output.column("phone_status").unwrap().null_count(),
        0,
        "every phone is enriched"
    );
}

#[test]
fn declared_types_mix_with_inference_and_phone_columns_stay_as_written() {
    let ws = Workspace::new();
    // A decimal has no NaN.
    let input = ws.write("crm.csv", crm_export(50).replace(",NaN,", ",7.25,"));
    let declared = "types = { zip = \"string\", amount = \"decimal(12,2)\", visited = \"string\" }";
    let job = ws.job(
        "job.toml",
        "crm.csv",
        &format!("infer_types = true\n{declared}"),
        "kind = \"sandbox\"",
    );
    assert_exit(&ws.run(&job, &[]), 0);
    let output = ws.read_output();
    let overwrite = Schema::from_iter([
        Field::new("zip".into(), DataType::String),
        Field::new("amount".into(), DataType::Decimal(12, 2)),
        Field::new("visited".into(), DataType::String),
    ]);
    assert_read_as_polars_reads(&output, &polars_reading(&input, Some(overwrite)));
    assert_eq!(strings(&output, "zip")[1].as_deref(), Some("000037"));
    assert_eq!(
        strings(&output, "phone")[0].as_deref(),
        Some("79161000000"),
        "a phone column of digits stays text"
    );
    // Declared alone: the other columns stay text.
    let job = ws.job("job.toml", "crm.csv", declared, "kind = \"sandbox\"");
    assert_exit(&ws.run(&job, &[]), 0);
    let output = ws.read_output();
    assert_eq!(
        output.column("amount").unwrap().dtype(),
        &DataType::Decimal(12, 2)
    );
    for text in ["id", "created", "active"] {
        assert_eq!(
            output.column(text).unwrap().dtype(),
            &DataType::String,
            "{text}"
        );
    }
}

#[test]
fn a_later_value_that_does_not_fit_stops_the_run_before_any_request() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), FAST_SANDBOX);
    let mut text = String::from("id,phone,amount\n");
    for i in 0..30 {
        let amount = if i == 19 {
            "12.5".to_string()
        } else {
            i.to_string()
        };
        text.push_str(&format!("{i},8916{i:07},{amount}\n"));
    }
    ws.write("in.csv", text);
    let job = ws.job("job.toml", "in.csv", "", &provider_for(&sandbox, ""));
    let typed = [
        "--set",
        "input.infer_types=true",
        "--set",
        "input.infer_rows=10",
        "--set",
        "output.row_group_size=8",
    ];
    let out = ws.run(&job, &typed);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains(
            "in.csv: line 21, column `amount`: `12.5` is not int64 (inferred from the first 10 rows); set input.types = { amount = \"float64\" }"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(sandbox.stats().requests, 0, "refused before any request");
    assert!(!ws.path("out.parquet").exists());
    // The setting the message names reads the file.
    let fixed = [&typed[..], &["--set", "input.types.amount=float64"]].concat();
    assert_exit(&ws.run(&job, &fixed), 0);
    let output = ws.read_output();
    assert_eq!(output.column("id").unwrap().dtype(), &DataType::Int64);
    assert_eq!(
        output.column("phone").unwrap().dtype(),
        &DataType::String,
        "a phone column of digits stays text"
    );
    let amounts: Vec<Option<f64>> = output
        .column("amount")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(amounts[19], Some(12.5));
}

#[test]
fn a_types_setting_the_file_cannot_take_is_a_job_error() {
    let ws = Workspace::new();
    ws.write("in.csv", "id,phone,amount\n1,89161234567,2.5\n");
    let cases = [
        (
            "types = { amout = \"float64\" }",
            "input.types.amout: ",
            "has no column `amout`; did you mean `amount`?",
        ),
        (
            "types = { amount = \"money\" }",
            "input.types.amount: `money` is not a column type",
            "decimal(P,S)",
        ),
        (
            "types = { phone = \"int64\" }",
            "input.types.phone: `phone` is a phone column",
            "read as they were written",
        ),
    ];
    for (setting, key, why) in cases {
        let job = ws.job("job.toml", "in.csv", setting, "kind = \"sandbox\"");
        let out = ws.run(&job, &[]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains(key) && err.contains(why), "{setting}: {err}");
        assert!(!ws.path("out.parquet").exists());
    }
}
