//! Synthetic CRM exports of any size, for the samples, the tests and the benchmarks.
//!
//! Contract: [`generate`] writes `rows` rows of `id, name, phone, city, email, created_at` as
//! CSV (UTF-8 or windows-1251, any delimiter, plain or gzip) or Parquet. What the text columns
//! hold is the [`Profile`]'s: `standard` (the shapes the fast path was first written for) or
//! `messy` (the way people type, placeholders and notes, quoted names). About
//! `distinct_ratio` of the rows carry a number not seen in an earlier row. The same options and
//! seed always give the same bytes.

mod messy;
mod standard;

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

/// What the generated rows look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Profile {
    /// Phones in the common shapes; 2% garbage, 2% empty.
    #[default]
    Standard,
    /// A CRM export as people type it: every Russian layout, foreign numbers as `+CC` and
    /// `00CC`, placeholders and notes, names with commas and quotes.
    Messy,
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub path: PathBuf,
    pub rows: u64,
    pub distinct_ratio: f64,
    pub seed: u64,
    pub format: GenFormat,
    pub profile: Profile,
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
    profile: Profile,
}

impl Rows {
    fn new(rows: u64, distinct_ratio: f64, seed: u64, profile: Profile) -> Rows {
        Rows {
            rng: StdRng::seed_from_u64(seed),
            seed,
            next: 0,
            total: rows,
            distinct_used: 0,
            distinct_ratio,
            profile,
        }
    }

    /// Which distinct number a row carries: a new one with probability `distinct_ratio`,
    /// else one of an earlier row's.
    fn number_index(&mut self) -> u64 {
        let fresh = self.distinct_used == 0 || self.rng.random::<f64>() < self.distinct_ratio;
        if fresh {
            self.distinct_used += 1;
            self.distinct_used - 1
        } else {
            self.rng.random_range(0..self.distinct_used)
        }
    }
}

impl Iterator for Rows {
    type Item = Row;
    fn next(&mut self) -> Option<Row> {
        if self.next >= self.total {
            return None;
        }
        let id = self.next + 1;
        self.next += 1;
        let (name, phone, city) = match self.profile {
            Profile::Standard => standard::row(self),
            Profile::Messy => messy::row(self),
        };
        let rng = &mut self.rng;
        Some(Row {
            id,
            name,
            phone,
            city,
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
pub fn phone_cells(
    profile: Profile,
    rows: u64,
    distinct_ratio: f64,
    seed: u64,
) -> Vec<Option<String>> {
    Rows::new(rows, distinct_ratio, seed, profile)
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
    let rows = Rows::new(
        options.rows,
        options.distinct_ratio,
        options.seed,
        options.profile,
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Normalized, Normalizer, PhoneMetadata};

    /// How the crate reads a profile's cells: shares of empty, invalid, valid with country code
    /// 7 and valid foreign cells, in percent.
    fn spread(profile: Profile) -> [f64; 4] {
        let n = Normalizer::new(crate::normalize::Region::RU, PhoneMetadata::built_in());
        let cells = phone_cells(profile, 20_000, 0.6, 3);
        let mut counts = [0usize; 4];
        for cell in &cells {
            let read = cell
                .as_deref()
                .map_or(Normalized::Empty, |c| n.read(c.trim()));
            let i = match read {
                Normalized::Empty => 0,
                Normalized::Invalid => 1,
                Normalized::Valid(e) if e.0 / 10_000_000_000 == 7 => 2,
                Normalized::Valid(_) => 3,
            };
            counts[i] += 1;
        }
        counts.map(|c| 100.0 * c as f64 / cells.len() as f64)
    }

    /// A real export's mix, as the crate reads it: mostly valid Russian numbers, a tenth
    /// invalid or empty, foreign numbers of many countries.
    #[test]
    fn the_messy_profile_reads_like_a_real_export() {
        let [empty, invalid, home, foreign] = spread(Profile::Messy);
        let shares = format!("{empty:.1} {invalid:.1} {home:.1} {foreign:.1}");
        assert!((2.0..4.5).contains(&empty), "{shares}");
        assert!((5.0..12.0).contains(&invalid), "{shares}");
        assert!((75.0..90.0).contains(&home), "{shares}");
        assert!((4.0..10.0).contains(&foreign), "{shares}");
    }

    #[test]
    fn the_same_seed_gives_the_same_cells() {
        for profile in [Profile::Standard, Profile::Messy] {
            assert_eq!(
                phone_cells(profile, 500, 0.6, 9),
                phone_cells(profile, 500, 0.6, 9)
            );
        }
    }
}
