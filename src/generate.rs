//! Synthetic CRM exports of any size, for the samples, the tests and the benchmarks.
//!
//! Contract: [`generate`] writes `rows` rows of `id, name, phone, city, email, created_at` as
//! CSV (UTF-8 or windows-1251, any delimiter, plain or gzip) or Parquet. Phones come in the
//! shapes people type (`8 (9xx) ...`, `+7 9xx ...`, bare 10 digits, dashes, stray blanks, two
//! numbers in a cell), with foreign numbers, landlines, garbage and empty cells; about
//! `distinct_ratio` of the rows carry a number not seen in an earlier row. The same options and
//! seed always give the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::TextEncoding;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    Csv {
        delimiter: u8,
        encoding: TextEncoding,
        gzip: bool,
    },
    Parquet,
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub path: PathBuf,
    pub rows: u64,
    pub distinct_ratio: f64,
    pub seed: u64,
    pub format: GenFormat,
}

const FIRST: &[&str] = &[
    "Иван",
    "Мария",
    "Алексей",
    "Ольга",
    "Дмитрий",
    "Анна",
    "Сергей",
    "Елена",
    "Андрей",
    "Наталья",
    "Павел",
    "Татьяна",
    "Артём",
    "Юлия",
    "Никита",
    "Ксения",
];
const LAST: &[&str] = &[
    "Иванов",
    "Смирнова",
    "Кузнецов",
    "Попова",
    "Васильев",
    "Петрова",
    "Соколов",
    "Михайлова",
    "Новиков",
    "Фёдорова",
    "Морозов",
    "Волкова",
    "Алексеев",
    "Лебедева",
];
const CITIES: &[&str] = &[
    "Москва",
    "Санкт-Петербург",
    "Новосибирск",
    "Екатеринбург",
    "Казань",
    "Нижний Новгород",
    "Краснодар",
    "Самара",
    "Ростов-на-Дону",
    "Уфа",
    "Алматы",
    "Минск",
];
const GARBAGE: &[&str] = &[
    "-",
    "нет",
    "n/a",
    "12345",
    "звонить после 18:00",
    "0",
    "тел. уточнить",
    "+7 (000) 000-00-00",
];

/// The digits of the `index`-th distinct number of a generated export (E.164, no `+`).
fn number_for(index: u64, seed: u64) -> (u64, Kind) {
    let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let roll = rng.random_range(0..100);
    let tail = |rng: &mut StdRng, digits: u32| rng.random_range(0..10u64.pow(digits));
    match roll {
        0..=87 => (79_000_000_000 + tail(&mut rng, 9), Kind::RuMobile),
        88..=91 => {
            let code =
                [701u64, 702, 705, 707, 747, 771, 775, 776, 777, 778][rng.random_range(0..10)];
            (
                70_000_000_000 + code * 10_000_000 + tail(&mut rng, 7),
                Kind::Foreign,
            )
        }
        92..=93 => {
            let code = [25u64, 29, 33, 44][rng.random_range(0..4)];
            (
                375_000_000_000 + code * 10_000_000 + tail(&mut rng, 7),
                Kind::Foreign,
            )
        }
        94..=95 => {
            let code = [50u64, 63, 66, 67, 68, 73, 93, 95, 96, 97, 98, 99][rng.random_range(0..12)];
            (
                380_000_000_000 + code * 10_000_000 + tail(&mut rng, 7),
                Kind::Foreign,
            )
        }
        96 => {
            let code = [90u64, 91, 93, 94, 95, 97, 99][rng.random_range(0..7)];
            (
                998_000_000_000 + code * 10_000_000 + tail(&mut rng, 7),
                Kind::Foreign,
            )
        }
        _ => (
            74_950_000_000 + rng.random_range(2_000_000..10_000_000),
            Kind::RuLandline,
        ),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    RuMobile,
    RuLandline,
    Foreign,
}

/// Writes a number the way a person might have typed it.
fn typed(number: u64, kind: Kind, rng: &mut StdRng) -> String {
    let d = number.to_string();
    if kind == Kind::Foreign {
        let cc = if d.starts_with('7') { 1 } else { 3 };
        let (c, rest) = d.split_at(cc);
        return match rng.random_range(0..3) {
            0 => format!(
                "+{c} {} {}-{}-{}",
                &rest[..rest.len() - 7],
                &rest[rest.len() - 7..rest.len() - 4],
                &rest[rest.len() - 4..rest.len() - 2],
                &rest[rest.len() - 2..]
            ),
            1 => format!("+{d}"),
            _ => format!(
                "+{c} {} {}",
                &rest[..rest.len() - 7],
                &rest[rest.len() - 7..]
            ),
        };
    }
    // Russian: 7 + 10 national digits.
    let n = &d[1..];
    let (a, b, c, e) = (&n[..3], &n[3..6], &n[6..8], &n[8..]);
    match rng.random_range(0..10) {
        0 => format!("8 ({a}) {b}-{c}-{e}"),
        1 => format!("+7 {a} {b} {c} {e}"),
        2 => n.to_string(),
        3 => format!("+7({a}){b}{c}{e}"),
        4 => format!("7{n}"),
        5 => format!("8{n}"),
        6 => format!("  +7 {a} {b}-{c}-{e} "),
        7 => format!("+7-{a}-{b}-{c}-{e}"),
        8 => format!("8-{a}-{b}{c}{e}"),
        _ => format!("+7 ({a}) {b}-{c}-{e}"),
    }
}

struct Row {
    id: u64,
    name: String,
    phone: Option<String>,
    city: &'static str,
    email: String,
    created_at: String,
}

struct Rows {
    rng: StdRng,
    seed: u64,
    next: u64,
    total: u64,
    distinct_used: u64,
    distinct_ratio: f64,
}

impl Iterator for Rows {
    type Item = Row;
    fn next(&mut self) -> Option<Row> {
        if self.next >= self.total {
            return None;
        }
        let id = self.next + 1;
        self.next += 1;
        let rng = &mut self.rng;
        let last = LAST[rng.random_range(0..LAST.len())];
        let first = FIRST[rng.random_range(0..FIRST.len())];
        let roll: f64 = rng.random();
        let phone = if roll < 0.02 {
            None
        } else if roll < 0.04 {
            Some(GARBAGE[rng.random_range(0..GARBAGE.len())].to_string())
        } else {
            let fresh = self.distinct_used == 0 || rng.random::<f64>() < self.distinct_ratio;
            let index = if fresh {
                self.distinct_used += 1;
                self.distinct_used - 1
            } else {
                rng.random_range(0..self.distinct_used)
            };
            let (number, kind) = number_for(index, self.seed);
            let text = typed(number, kind, rng);
            if rng.random_range(0..100) == 0 {
                let (other, kind) = number_for(index + 1_000_003, self.seed);
                Some(format!("{text}, {}", typed(other, kind, rng)))
            } else {
                Some(text)
            }
        };
        Some(Row {
            id,
            name: format!("{last} {first}"),
            phone,
            city: CITIES[rng.random_range(0..CITIES.len())],
            email: format!(
                "user{}@example.{}",
                rng.random_range(0..1_000_000),
                ["ru", "com", "kz"][rng.random_range(0..3)]
            ),
            created_at: format!(
                "2025-{:02}-{:02} {:02}:{:02}:{:02}",
                rng.random_range(1..13),
                rng.random_range(1..29),
                rng.random_range(0..24),
                rng.random_range(0..60),
                rng.random_range(0..60)
            ),
        })
    }
}

/// The phone cells of a generated export (`None` for an empty cell), for benchmarks.
pub fn phone_cells(rows: u64, distinct_ratio: f64, seed: u64) -> Vec<Option<String>> {
    Rows {
        rng: StdRng::seed_from_u64(seed),
        seed,
        next: 0,
        total: rows,
        distinct_used: 0,
        distinct_ratio,
    }
    .map(|r| r.phone)
    .collect()
}

pub fn generate(options: &GenerateOptions) -> Result<()> {
    if !(0.0..=1.0).contains(&options.distinct_ratio) {
        bail!(
            "--distinct-ratio {} is not between 0 and 1",
            options.distinct_ratio
        );
    }
    let rows = Rows {
        rng: StdRng::seed_from_u64(options.seed),
        seed: options.seed,
        next: 0,
        total: options.rows,
        distinct_used: 0,
        distinct_ratio: options.distinct_ratio,
    };
    let path = &options.path;
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    match options.format {
        GenFormat::Csv {
            delimiter,
            encoding,
            gzip,
        } => {
            let sink: Box<dyn Write> = if gzip {
                Box::new(flate2::write::GzEncoder::new(
                    BufWriter::new(file),
                    flate2::Compression::fast(),
                ))
            } else {
                Box::new(BufWriter::with_capacity(1 << 20, file))
            };
            write_csv(rows, sink, delimiter, encoding)
                .with_context(|| format!("writing {}", path.display()))
        }
        GenFormat::Parquet => {
            write_parquet(rows, file).with_context(|| format!("writing {}", path.display()))
        }
    }
}

fn write_csv(
    rows: Rows,
    mut sink: Box<dyn Write>,
    delimiter: u8,
    encoding: TextEncoding,
) -> Result<()> {
    let new_chunk = || {
        csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(Vec::with_capacity(1 << 20))
    };
    let flush = |csv: csv::Writer<Vec<u8>>, sink: &mut Box<dyn Write>| -> Result<()> {
        let buf = csv.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        match encoding {
            TextEncoding::Utf8 => sink.write_all(&buf)?,
            TextEncoding::Windows1251 => {
                let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(std::str::from_utf8(&buf)?);
                sink.write_all(&bytes)?;
            }
        }
        Ok(())
    };
    let mut csv = new_chunk();
    csv.write_record(["id", "name", "phone", "city", "email", "created_at"])?;
    for (i, r) in rows.enumerate() {
        csv.write_record([
            r.id.to_string().as_str(),
            &r.name,
            r.phone.as_deref().unwrap_or(""),
            r.city,
            &r.email,
            &r.created_at,
        ])?;
        if i % 10_000 == 9_999 {
            flush(std::mem::replace(&mut csv, new_chunk()), &mut sink)?;
        }
    }
    flush(csv, &mut sink)?;
    sink.flush()?;
    Ok(())
}

fn write_parquet(mut rows: Rows, file: File) -> Result<()> {
    let schema = Schema::from_iter([
        Field::new("id".into(), DataType::Int64),
        Field::new("name".into(), DataType::String),
        Field::new("phone".into(), DataType::String),
        Field::new("city".into(), DataType::String),
        Field::new("email".into(), DataType::String),
        Field::new("created_at".into(), DataType::String),
    ]);
    let mut writer = ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .batched(&schema)?;
    loop {
        let chunk: Vec<Row> = rows.by_ref().take(100_000).collect();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new(
                    "id".into(),
                    chunk.iter().map(|r| r.id as i64).collect::<Vec<_>>(),
                ),
                Column::new(
                    "name".into(),
                    chunk.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "phone".into(),
                    chunk.iter().map(|r| r.phone.as_deref()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "city".into(),
                    chunk.iter().map(|r| r.city).collect::<Vec<_>>(),
                ),
                Column::new(
                    "email".into(),
                    chunk.iter().map(|r| r.email.as_str()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "created_at".into(),
                    chunk
                        .iter()
                        .map(|r| r.created_at.as_str())
                        .collect::<Vec<_>>(),
                ),
            ],
        )?;
        df.align_chunks_par();
        writer.write_batch(&df)?;
    }
    writer.finish()?;
    Ok(())
}
