//! Hostile inputs through the binary (issue 10): line ends of every kind, a quote never closed,
//! an output that is the input, pipes, a header line of 50 MB, and Parquet columns of every
//! Arrow type.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use polars::prelude::*;
use polars_arrow::array::{
    Array, BooleanArray, DictionaryArray, FixedSizeBinaryArray, FixedSizeListArray, ListArray,
    PrimitiveArray, StructArray, Utf8Array,
};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::{
    ArrowDataType as A, ArrowSchema, Field as ArrowField, IntegerType, TimeUnit as Unit,
};
use polars_arrow::offset::OffsetsBuffer;
use polars_arrow::record_batch::RecordBatchT;
use polars_parquet::write::{
    schema_to_metadata_key, CompressionOptions, FileWriter, RowGroupIterator, StatisticsOptions,
    Version, WriteOptions,
};

use crate::common::*;

const NO_NOT_FOUND: &str = "not_found_percent = 0\n";

/// A column to write: its name, its data, and the Arrow type the footer declares for it (as
/// pyarrow does, e.g. `string` for data polars' writer takes only with 64-bit offsets).
type Written = (&'static str, Box<dyn Array>, A);

/// A column whose declared type is its data's.
fn own(name: &'static str, array: Box<dyn Array>) -> Written {
    let dtype = array.dtype().clone();
    (name, array, dtype)
}

/// Writes `columns` as one Parquet row group with polars' own Arrow writer, the footer's
/// `ARROW:schema` declaring each column's type.
fn write_arrow_parquet(path: &Path, columns: Vec<Written>) {
    let len = columns[0].1.len();
    let schema = |declared: bool| {
        ArrowSchema::from_iter(columns.iter().map(|(name, a, d)| {
            let dtype = if declared {
                d.clone()
            } else {
                a.dtype().clone()
            };
            ArrowField::new((*name).into(), dtype, true)
        }))
    };
    let (data, declared) = (schema(false), schema(true));
    let arrays: Vec<Box<dyn Array>> = columns.iter().map(|(_, a, _)| a.clone()).collect();
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        version: Version::V2,
        compression: CompressionOptions::Uncompressed,
        data_page_size: None,
    };
    let encodings = polars::io::parquet::write::get_encodings(&data);
    let batch = RecordBatchT::new(len, Arc::new(data.clone()), arrays);
    let groups =
        RowGroupIterator::try_new(std::iter::once(Ok(batch)), &data, options, encodings).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = FileWriter::try_new(file, data, options).unwrap();
    for group in groups {
        writer.write(len as u64, group.unwrap()).unwrap();
    }
    writer
        .end(Some(vec![schema_to_metadata_key(&declared)]))
        .unwrap();
}

/// The Arrow schema a Parquet file declares, as written.
fn declared_schema(path: &Path) -> ArrowSchema {
    let mut file = std::fs::File::open(path).unwrap();
    let metadata = polars_parquet::read::read_metadata(&mut file).unwrap();
    phone_enrich::input::declared_schema(&metadata).unwrap()
}

fn field(dtype: A) -> Box<ArrowField> {
    Box::new(ArrowField::new("item".into(), dtype, true))
}

fn validity() -> Option<Bitmap> {
    Some(Bitmap::from([true, false, true]))
}

fn ints<T: polars_arrow::types::NativeType>(values: [T; 3], dtype: A) -> Box<dyn Array> {
    PrimitiveArray::<T>::from([Some(values[0]), None, Some(values[2])])
        .to(dtype)
        .boxed()
}

/// Text with the 64-bit offsets polars' writer takes (declared `string` where it is one).
fn utf8(values: [Option<&str>; 3]) -> Utf8Array<i64> {
    Utf8Array::<i64>::from(values.as_slice())
}

/// Three rows of every Arrow type a CRM export holds, beside the phone column.
fn every_type() -> Vec<Written> {
    let day = 86_400_000i64;
    let float16 = polars_compute::cast::cast(
        &PrimitiveArray::<f32>::from([Some(1.5f32), None, Some(-2.25)]),
        &A::Float16,
        Default::default(),
    )
    .unwrap();
    let i64s = PrimitiveArray::<i64>::from([Some(1i64), Some(2), Some(3)]).boxed();
    let list_of = |dtype: A, values: Box<dyn Array>, offsets: Vec<i32>| {
        ListArray::<i32>::new(
            A::List(field(dtype)),
            OffsetsBuffer::try_from(offsets).unwrap(),
            values,
            validity(),
        )
        .boxed()
    };
    let struct_of = |b: A| {
        A::Struct(vec![
            ArrowField::new("a".into(), A::Int32, true),
            ArrowField::new("b".into(), b, true),
        ])
    };
    let dictionary_of = |values: A| A::Dictionary(IntegerType::Int32, Box::new(values), false);
    vec![
        own("decimal_12_2", ints([12345i128, 0, -1], A::Decimal(12, 2))),
        own(
            "decimal_38_10",
            ints([i128::MAX / 10, 0, -7], A::Decimal(38, 10)),
        ),
        // polars' writer takes no 256-bit values: 128-bit ones, the same in Parquet up to 38
        // digits, declared `decimal256` as pyarrow declares them.
        (
            "decimal256_20",
            ints([5i128, 0, -5], A::Decimal(20, 3)),
            A::Decimal256(20, 3),
        ),
        own("float16", float16),
        own("uint8", ints([255u8, 0, 1], A::UInt8)),
        own("uint16", ints([65535u16, 0, 1], A::UInt16)),
        own("uint32", ints([u32::MAX, 0, 1], A::UInt32)),
        own("uint64", ints([u64::MAX, 0, 1], A::UInt64)),
        own("int16", ints([-300i16, 0, 300], A::Int16)),
        own("date32", ints([19_000i32, 0, -1], A::Date32)),
        own("date64", ints([19_000 * day, 0, -day], A::Date64)),
        own(
            "time32_s",
            ints([3_600i32, 0, 86_399], A::Time32(Unit::Second)),
        ),
        own(
            "time32_ms",
            ints([3_600_000i32, 0, 1], A::Time32(Unit::Millisecond)),
        ),
        own(
            "time64_us",
            ints([3_600_000_000i64, 0, 1], A::Time64(Unit::Microsecond)),
        ),
        own("time64_ns", ints([1i64, 0, 2], A::Time64(Unit::Nanosecond))),
        own(
            "duration_s",
            ints([90i64, 0, -5], A::Duration(Unit::Second)),
        ),
        own(
            "duration_ms",
            ints([90i64, 0, -5], A::Duration(Unit::Millisecond)),
        ),
        own(
            "duration_us",
            ints([90i64, 0, -5], A::Duration(Unit::Microsecond)),
        ),
        own(
            "duration_ns",
            ints([90i64, 0, -5], A::Duration(Unit::Nanosecond)),
        ),
        own(
            "timestamp_s",
            ints([1_700_000_000i64, 0, -1], A::Timestamp(Unit::Second, None)),
        ),
        own(
            "fixed_binary",
            FixedSizeBinaryArray::new(
                A::FixedSizeBinary(4),
                b"abcd\0\0\0\0wxyz".to_vec().into(),
                validity(),
            )
            .boxed(),
        ),
        own(
            "fixed_list",
            FixedSizeListArray::new(
                A::FixedSizeList(field(A::Int32), 2),
                3,
                PrimitiveArray::<i32>::from_vec(vec![1, 2, 0, 0, 5, 6]).boxed(),
                validity(),
            )
            .boxed(),
        ),
        own("list", list_of(A::Int64, i64s.clone(), vec![0, 2, 2, 3])),
        (
            "large_list",
            ListArray::<i64>::new(
                A::LargeList(field(A::LargeUtf8)),
                OffsetsBuffer::try_from(vec![0i64, 1, 1, 3]).unwrap(),
                utf8([Some("x"), Some("y"), None]).boxed(),
                validity(),
            )
            .boxed(),
            A::LargeList(field(A::Utf8)),
        ),
        own(
            "nested_list",
            list_of(
                A::List(field(A::Int64)),
                list_of(A::Int64, i64s, vec![0, 1, 1, 3]),
                vec![0, 2, 2, 3],
            ),
        ),
        own(
            "list_of_date64",
            list_of(
                A::Date64,
                ints([day, 0, 2 * day], A::Date64),
                vec![0, 2, 2, 3],
            ),
        ),
        (
            "struct",
            StructArray::new(
                struct_of(A::LargeUtf8),
                3,
                vec![
                    PrimitiveArray::<i32>::from([Some(1), Some(2), None]).boxed(),
                    utf8([Some("p"), None, Some("r")]).boxed(),
                ],
                validity(),
            )
            .boxed(),
            struct_of(A::Utf8),
        ),
        (
            "dictionary",
            DictionaryArray::<i32>::try_new(
                dictionary_of(A::LargeUtf8),
                PrimitiveArray::<i32>::from([Some(1), None, Some(0)]),
                utf8([Some("gold"), Some("silver"), None]).boxed(),
            )
            .unwrap()
            .boxed(),
            dictionary_of(A::Utf8),
        ),
        own(
            "bool",
            BooleanArray::from([Some(true), None, Some(false)]).boxed(),
        ),
        (
            "string",
            utf8([Some("a"), None, Some("c")]).boxed(),
            A::Utf8,
        ),
        own("large_string", utf8([Some("a"), None, Some("c")]).boxed()),
    ]
}

#[test]
fn every_arrow_type_comes_out_with_its_type_and_values() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), &format!("{FAST_SANDBOX}{NO_NOT_FOUND}"));
    let mut columns: Vec<Written> = vec![(
        "phone",
        utf8([Some("8 916 123 45 67"), None, Some("+7 903 123 45 67")]).boxed(),
        A::Utf8,
    )];
    columns.extend(every_type());
    let input = ws.path("in.parquet");
    write_arrow_parquet(&input, columns);
    let job = ws.job("job.toml", "in.parquet", "", &provider_for(&sandbox, ""));
    let out = ws.run(&job, &[]);
    assert_exit(&out, 0);

    let (declared_in, declared_out) = (
        declared_schema(&input),
        declared_schema(&ws.path("out.parquet")),
    );
    let (df_in, df_out) = (read_parquet(&input), ws.read_output());
    assert_eq!(df_out.height(), 3);
    for (name, field) in declared_in.iter() {
        let out_field = declared_out
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        assert_eq!(out_field.dtype, field.dtype, "{name}: the type changed");
        let (a, b) = (df_in.column(name).unwrap(), df_out.column(name).unwrap());
        assert!(
            a.as_materialized_series()
                .equals_missing(b.as_materialized_series()),
            "{name}: values changed\nin:  {a:?}\nout: {b:?}"
        );
    }
    assert_eq!(
        strings(&df_out, "phone_e164"),
        vec![
            Some("+79161234567".into()),
            None,
            Some("+79031234567".into())
        ]
    );
}

#[test]
fn a_column_polars_cannot_carry_is_refused_before_reading() {
    let ws = Workspace::new();
    let phone = || {
        (
            "phone",
            utf8([Some("89161234567"), None, Some("89031234567")]).boxed(),
            A::Utf8,
        )
    };
    // A map is written as the list of key-value structs it is in Parquet, and declared a map.
    let entries_of = |key: A| {
        A::Struct(vec![
            ArrowField::new("key".into(), key, false),
            ArrowField::new("value".into(), A::Int32, true),
        ])
    };
    let entries = StructArray::new(
        entries_of(A::LargeUtf8),
        2,
        vec![
            utf8([Some("k"), Some("l"), None]).sliced(0, 2).boxed(),
            PrimitiveArray::<i32>::from([Some(1), None]).boxed(),
        ],
        None,
    );
    let entries_field =
        |key: A| Box::new(ArrowField::new("entries".into(), entries_of(key), false));
    let map = ListArray::<i32>::new(
        A::List(entries_field(A::LargeUtf8)),
        OffsetsBuffer::try_from(vec![0i32, 1, 1, 2]).unwrap(),
        entries.boxed(),
        validity(),
    );
    write_arrow_parquet(
        &ws.path("map.parquet"),
        vec![
            phone(),
            (
                "attributes",
                map.boxed(),
                A::Map(entries_field(A::Utf8), false),
            ),
        ],
    );
    // Wider than 38 digits: 32 bytes a value in Parquet, declared `decimal256(50, 2)`.
    let wide = (
        "balance",
        FixedSizeBinaryArray::new(A::FixedSizeBinary(32), vec![1u8; 96].into(), validity()).boxed(),
        A::Decimal256(50, 2),
    );
    write_arrow_parquet(&ws.path("wide.parquet"), vec![phone(), wide]);
    for (input, column) in [("map.parquet", "attributes"), ("wide.parquet", "balance")] {
        let job = ws.job("job.toml", input, "", "kind = \"sandbox\"\n");
        let out = ws.run(&job, &[]);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{input}: {message}");
        assert!(
            message.contains(&format!("column `{column}` has type")) && message.contains(input),
            "{input}: {message}"
        );
        assert!(!message.contains("panicked"), "{message}");
        assert!(!ws.path("out.parquet").exists());
    }
}

#[test]
fn a_dictionary_phone_column_is_text() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), &format!("{FAST_SANDBOX}{NO_NOT_FOUND}"));
    let dictionary = |values: A| A::Dictionary(IntegerType::Int8, Box::new(values), false);
    let phones = DictionaryArray::<i8>::try_new(
        dictionary(A::LargeUtf8),
        PrimitiveArray::<i8>::from([Some(0), None, Some(1), Some(0)]),
        utf8([Some("8 916 123 45 67"), Some("+7 903 123 45 67"), None]).boxed(),
    )
    .unwrap();
    write_arrow_parquet(
        &ws.path("in.parquet"),
        vec![("phone", phones.boxed(), dictionary(A::Utf8))],
    );
    let job = ws.job("job.toml", "in.parquet", "", &provider_for(&sandbox, ""));
    assert_exit(&ws.run(&job, &[]), 0);
    let df = ws.read_output();
    assert_eq!(
        strings(&df, "phone_e164"),
        vec![
            Some("+79161234567".into()),
            None,
            Some("+79031234567".into()),
            Some("+79161234567".into())
        ]
    );
    let declared = declared_schema(&ws.path("out.parquet"));
    assert!(
        matches!(
            declared.get("phone").unwrap().dtype,
            A::Dictionary(IntegerType::Int8, _, _)
        ),
        "{:?}",
        declared.get("phone")
    );
}

/// Ten rows of `id,phone` with `end` after every line.
fn ten_rows(header_end: &str, end: &str) -> String {
    let mut text = format!("id,phone{header_end}");
    for i in 0..10 {
        text.push_str(&format!("{i},8916{i:07}{end}"));
    }
    text
}

#[test]
fn every_line_end_gives_every_row_and_an_open_quote_is_refused() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), &format!("{FAST_SANDBOX}{NO_NOT_FOUND}"));
    let provider = provider_for(&sandbox, "");
    let cases = [
        ("cr.csv", ten_rows("\r", "\r")),
        ("cr-header.csv", ten_rows("\r", "\n")),
        ("crlf-header.csv", ten_rows("\r\n", "\n")),
        (
            "mixed.csv",
            ten_rows("\n", "\r\n").replace("5,89160000005\r\n", "5,89160000005\r"),
        ),
    ];
    for (name, text) in cases {
        ws.write(name, text);
        let out = ws.run(&ws.job("job.toml", name, "", &provider), &[]);
        assert_exit(&out, 0);
        let df = ws.read_output();
        let ids: Vec<Option<String>> = (0..10).map(|i| Some(i.to_string())).collect();
        assert_eq!(strings(&df, "id"), ids, "{name}");
    }
    // A quote left open near the end would swallow the lines after it into one cell.
    ws.write(
        "open.csv",
        ten_rows("\n", "\n").replace("8,8916", "8,\"8916"),
    );
    std::fs::remove_file(ws.path("out.parquet")).unwrap();
    let out = ws.run(&ws.job("job.toml", "open.csv", "", &provider), &[]);
    assert_exit(&out, 3);
    assert_stderr_contains(
        &out,
        "open.csv: line 10: a quoted field opens here and is never closed",
    );
    assert!(!ws.path("out.parquet").exists());
}

/// `text` in UTF-16 with its byte-order mark, little- or big-endian.
fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    let units = std::iter::once(0xFEFF).chain(text.encode_utf16());
    match little_endian {
        true => units.flat_map(u16::to_le_bytes).collect(),
        false => units.flat_map(u16::to_be_bytes).collect(),
    }
}

#[test]
fn a_utf16_export_is_read_by_its_byte_order_mark() {
    let ws = Workspace::new();
    // Excel's "Unicode text": UTF-16LE with a BOM, tab-separated.
    let text = ten_rows("\r\n", "\r\n").replace(',', "\t");
    let cases = [
        ("le.txt", utf16(&text, true), ""),
        ("be.csv", utf16(&ten_rows("\n", "\n"), false), ""),
        (
            "le-1251.csv",
            utf16(&ten_rows("\n", "\n"), true),
            "encoding = \"windows-1251\"",
        ),
    ];
    for (name, bytes, extra) in cases {
        ws.write(name, bytes);
        let out = ws.run(&ws.job("job.toml", name, extra, "kind = \"sandbox\""), &[]);
        assert_exit(&out, 0);
        let df = ws.read_output();
        let ids: Vec<Option<String>> = (0..10).map(|i| Some(i.to_string())).collect();
        assert_eq!(strings(&df, "id"), ids, "{name}");
        assert_eq!(
            strings(&df, "phone_e164")[3].as_deref(),
            Some("+79160000003")
        );
    }
}

#[test]
fn a_missing_phone_column_suggests_the_closest_name() {
    let ws = Workspace::new();
    let cases = [
        ("id,Phone\n1,89161234567\n", " did you mean `Phone`?"),
        ("id,phones\n1,89161234567\n", " did you mean `phones`?"),
        ("id,tel\n1,89161234567\n", " the columns are: id, tel"),
    ];
    for (text, want) in cases {
        ws.write("in.csv", text);
        let out = ws.run(&ws.job("job.toml", "in.csv", "", "kind = \"sandbox\""), &[]);
        assert_exit(&out, 3);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("no column `phone` (input.phone_columns);{want}")),
            "{err}"
        );
    }
}

#[test]
fn an_output_or_state_that_is_the_input_is_refused_and_the_input_kept() {
    let ws = Workspace::new();
    let mut df = df!("phone" => ["89161234567", "89031234567"]).unwrap();
    let input = ws.path("in.parquet");
    ParquetWriter::new(std::fs::File::create(&input).unwrap())
        .finish(&mut df)
        .unwrap();
    let before = std::fs::read(&input).unwrap();
    std::fs::create_dir(ws.path("sub")).unwrap();
    std::os::unix::fs::symlink(&input, ws.path("link.parquet")).unwrap();
    std::fs::hard_link(&input, ws.path("hard.parquet")).unwrap();
    let absolute = input.to_str().unwrap().to_string();
    let job = ws.job("job.toml", "in.parquet", "", "kind = \"sandbox\"\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--output", "./in.parquet"], "is the input file"),
        (vec!["--output", &absolute], "is the input file"),
        (vec!["--output", "sub/../in.parquet"], "is the input file"),
        // A directory that does not exist yet: the run would create it, then write `..`.
        (vec!["--output", "gone/../in.parquet"], "is the input file"),
        (vec!["--output", "link.parquet"], "is the input file"),
        (vec!["--output", "hard.parquet"], "is the input file"),
        (
            vec!["--input", "link.parquet", "--output", "in.parquet"],
            "is the input file",
        ),
        (vec!["--state", "."], "state.dir"),
    ];
    for (args, want) in cases {
        let out = ws.run(&job, &args);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(
            std::fs::read(&input).unwrap(),
            before,
            "{args:?}: the input changed"
        );
    }
    // A file named as the output's temporary, which runs remove once its process is gone.
    let temporary = ".out.parquet.4000000.tmp";
    std::fs::copy(&input, ws.path(temporary)).unwrap();
    let out = ws.run(
        &job,
        &["--input", temporary, "--set", "input.format=\"parquet\""],
    );
    assert_exit(&out, 2);
    assert!(ws.path(temporary).exists());
}

#[test]
fn a_pipe_is_refused_at_once_and_stdin_from_a_file_is_read() {
    let ws = Workspace::new();
    let sandbox = SandboxProcess::start(ws.dir.path(), &format!("{FAST_SANDBOX}{NO_NOT_FOUND}"));
    let job = ws.job(
        "job.toml",
        "in.csv",
        "format = \"csv\"",
        &provider_for(&sandbox, ""),
    );
    let fifo = ws.path("fifo.csv");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // Nothing ever writes to the FIFO: a run that opened it would wait forever.
    let out = ws.run(&job, &["--input", "fifo.csv"]);
    assert_exit(&out, 3);
    assert_stderr_contains(&out, "fifo.csv is a pipe");

    // Standard input: a pipe is refused, a file is read (twice: a lookup pass, then writing).
    let text = ten_rows("\n", "\n");
    let piped = |stdin: Stdio| {
        Command::new(BIN)
            .arg("run")
            .arg(&job)
            .args(["--input", "-"])
            .current_dir(ws.dir.path())
            .stdin(stdin)
            .output()
            .unwrap()
    };
    let mut child = Command::new("printf")
        .arg(&text)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = piped(Stdio::from(child.stdout.take().unwrap()));
    let _ = child.wait();
    assert_exit(&out, 3);
    assert_stderr_contains(&out, "is a pipe");
    ws.write("in.csv", &text);
    let out = piped(Stdio::from(std::fs::File::open(ws.path("in.csv")).unwrap()));
    assert_exit(&out, 0);
    assert_eq!(ws.read_output().height(), 10);
}

#[test]
fn a_50_mb_header_line_gives_a_short_message() {
    let ws = Workspace::new();
    ws.write("huge.csv", "x".repeat(50 << 20));
    let job = ws.job("job.toml", "huge.csv", "", "kind = \"sandbox\"\n");
    let report = ws.path("report.json");
    let out = ws.run(&job, &["--report", report.to_str().unwrap()]);
    assert_exit(&out, 3);
    let message = stderr(&out);
    assert!(
        message.contains("no column `phone`"),
        "{}",
        &message[..message.len().min(2000)]
    );
    assert!(message.len() < 2_000, "{} bytes of stderr", message.len());
    let report = std::fs::metadata(&report).unwrap().len();
    assert!(report < 4_000, "{report} bytes of report");
}

#[test]
fn sigterm_while_reading_ends_the_run() {
    use std::io::BufRead;
    let ws = Workspace::new();
    generate(&ws, "big.csv", 500_000, 5);
    // The in-process sandbox at the provider's real limits: whatever the run is doing when the
    // signal comes (reading, or the hours of lookups after), only the signal ends it.
    let job = ws.job("job.toml", "big.csv", "", "kind = \"sandbox\"\n");
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&job)
        .args(["--progress", "log", "--progress-every", "50ms"])
        .args(["--set", "output.row_group_size=1000"])
        .current_dir(ws.dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    // The run's own word that it is reading.
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("progress") && line.contains("reading") {
            break;
        }
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{}", rest.join("\n"));
    assert!(
        rest.iter().any(|l| l.contains("interrupted")),
        "{}",
        rest.join("\n")
    );
    assert!(!ws.path("out.parquet").exists());
}
