//! A CSV column's type: declared (`input.types`), inferred from the first rows as polars infers
//! it (`input.infer_types`), or text.
//!
//! Contract: [`ColumnTypes::settle`] decides every column's type once, before the first pass,
//! and every reader of the file is opened with the result, so every piece of both passes has
//! the same schema. Inference is polars 0.55's own (`infer_field_schema` with dates tried, one
//! type per column from the values of its first rows, empty fields not counted, text with
//! anything else text, integers with floats floats), except that an integer past int64 counts
//! as text. Phone columns are always text. The names `input.types` gives types are
//! `config::column_types`'; `convert` turns fields into values of these types.

use std::num::NonZeroUsize;
use std::path::Path;

use anyhow::bail;
use polars::io::csv::read::schema_inference::{finish_infer_field_schema, infer_field_schema};
use polars::prelude::*;

use super::{did_you_mean, excerpt, Columns, InputReader};
use crate::config::{toml_key, InputConfig, InputFormat};

/// Where a column's type came from, as a message says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Text: a phone column, or a column neither declared nor inferred.
    Text,
    /// `input.types`.
    Declared,
    /// Inferred from the values of this many first rows.
    Inferred { rows: usize },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Text => write!(f, "read as text"),
            Origin::Declared => write!(f, "declared in input.types"),
            Origin::Inferred { rows } => write!(f, "inferred from the first {rows} rows"),
        }
    }
}

/// The type one CSV column is read as, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// The column's values are of this type (`String` for text).
    pub dtype: DataType,
    /// Declared, inferred, or text.
    pub origin: Origin,
}

impl ColumnType {
    /// A column read as it was written.
    pub const TEXT: ColumnType = ColumnType {
        dtype: DataType::String,
        origin: Origin::Text,
    };

    /// Whether the column is read as text (so no value can fail to fit).
    pub fn is_text(&self) -> bool {
        self.dtype == DataType::String
    }
}

/// Every CSV column's type, by header position, as settled before the first pass.
#[derive(Debug, Clone, Default)]
pub struct ColumnTypes {
    /// The header and each column's type; empty when every column is text (the default, and
    /// every Parquet input), which needs nothing of the file.
    columns: Vec<(String, ColumnType)>,
}

/// Why the column types could not be settled: the job, or the input, is at fault.
#[derive(Debug, thiserror::Error)]
pub enum TypesError {
    /// `input.types` names a column the header does not have.
    #[error("input.types.{key}: {file} has no column `{column}`{hint}")]
    UnknownColumn {
        /// The column as a TOML key.
        key: String,
        /// The column as a message quotes it.
        column: String,
        /// The input file, as a message names it.
        file: String,
        /// `; did you mean ...?` when a column is close, else empty.
        hint: String,
    },
    /// The input cannot be read (the error names the file, and the line).
    #[error(transparent)]
    Input(anyhow::Error),
}

impl ColumnTypes {
    /// Settles every column's type from the job's `input.types` and, with `input.infer_types`,
    /// the values of the file's first `input.infer_rows` rows. Reads nothing when every column
    /// is text.
    pub fn settle(cfg: &InputConfig) -> Result<ColumnTypes, TypesError> {
        if cfg.format != InputFormat::Csv || (cfg.types.is_empty() && cfg.infer_rows.is_none()) {
            return Ok(ColumnTypes::default());
        }
        let rows = cfg.infer_rows.unwrap_or(NonZeroUsize::MIN);
        let text = ColumnTypes::default();
        let mut reader =
            InputReader::open(cfg, &text, Columns::All, rows).map_err(TypesError::Input)?;
        let names: Vec<&str> = reader.schema().iter_names().map(|n| n.as_str()).collect();
        for (column, _) in &cfg.types {
            if !names.contains(&column.as_str()) {
                return Err(TypesError::UnknownColumn {
                    key: toml_key(column),
                    column: excerpt(column),
                    file: cfg.path.display().to_string(),
                    hint: did_you_mean(column, names.iter().copied())
                        .map(|hint| format!("; {hint}"))
                        .unwrap_or_default(),
                });
            }
        }
        let names: Vec<String> = names.into_iter().map(str::to_string).collect();
        let first = match cfg.infer_rows {
            Some(_) => reader
                .next_piece()
                .and_then(|p| p.map(|p| p.into_frame(Columns::All)).transpose())
                .map_err(TypesError::Input)?,
            None => None,
        };
        let columns = names
            .into_iter()
            .map(|name| {
                let declared = cfg.types.iter().find(|(c, _)| *c == name);
                let column = match (declared, &first) {
                    _ if cfg.phone_columns.contains(&name) => ColumnType::TEXT,
                    (Some((_, dtype)), _) => ColumnType {
                        dtype: dtype.clone(),
                        origin: Origin::Declared,
                    },
                    (None, Some(frame)) => ColumnType {
                        dtype: infer_column(frame.column(&name).and_then(|c| c.str()).ok()),
                        origin: Origin::Inferred {
                            rows: frame.height(),
                        },
                    },
                    (None, None) => ColumnType::TEXT,
                };
                (name, column)
            })
            .collect();
        Ok(ColumnTypes { columns })
    }

    /// The type of each column of a header read from `path`: the settled ones, which must be
    /// of this very header, or text for every column when none were settled.
    pub(super) fn of_header(
        &self,
        path: &Path,
        names: &[String],
    ) -> anyhow::Result<Vec<ColumnType>> {
        if self.columns.is_empty() {
            return Ok(vec![ColumnType::TEXT; names.len()]);
        }
        if !self.columns.iter().map(|(n, _)| n).eq(names) {
            bail!(
                "{}: the header is not the one the run began with; was the file replaced while the run read it?",
                path.display()
            );
        }
        Ok(self.columns.iter().map(|(_, t)| t.clone()).collect())
    }
}

/// A column's type as polars infers it from its values (text when there are none).
fn infer_column(values: Option<&StringChunked>) -> DataType {
    let mut seen = PlIndexSet::default();
    for value in values.into_iter().flat_map(|v| v.iter()).flatten() {
        seen.insert(infer_value(value));
        // Text with anything is text.
        if seen.contains(&DataType::String) {
            break;
        }
    }
    finish_infer_field_schema(&seen)
}

/// The type polars infers for one value, dates tried; an integer past int64 is text (polars
/// would need int128, which Parquet cannot hold).
pub(super) fn infer_value(value: &str) -> DataType {
    match infer_field_schema(value, true, false) {
        DataType::Int64 if value.parse::<i64>().is_err() => DataType::String,
        dtype => dtype,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polars' rules, value by value: what each string is inferred as.
    #[test]
    fn values_are_inferred_as_polars_infers_them() {
        let datetime = DataType::Datetime(TimeUnit::Microseconds, None);
        let utc = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
        let cases: &[(&str, DataType)] = &[
            ("42", DataType::Int64),
            ("-7", DataType::Int64),
            ("007", DataType::Int64),
            ("+7", DataType::String),
            ("12345678901234567890", DataType::String),
            ("1.5", DataType::Float64),
            (".5", DataType::Float64),
            ("5.", DataType::Float64),
            ("1e5", DataType::Float64),
            ("NaN", DataType::Float64),
            ("-inf", DataType::Float64),
            ("nan", DataType::String),
            ("1,234", DataType::String),
            ("1 234", DataType::String),
            (" 42", DataType::String),
            ("true", DataType::Boolean),
            ("FALSE", DataType::Boolean),
            ("yes", DataType::String),
            ("2025-04-21", DataType::Date),
            ("21.04.2025", DataType::Date),
            ("2025/04/21", DataType::Date),
            ("2025-04-21 22:35:10", datetime.clone()),
            ("2025-04-21T22:35", datetime.clone()),
            ("21.04.2025 22:35", datetime),
            ("2025-04-21T22:35:10+03:00", utc),
            ("22:35:10", DataType::Time),
            ("2025-13-01", DataType::String),
        ];
        for (value, want) in cases {
            assert_eq!(infer_value(value), *want, "{value}");
        }
    }

    #[test]
    fn a_column_takes_the_one_type_of_its_values() {
        let column = |values: &[Option<&str>]| {
            infer_column(Some(&StringChunked::from_iter(values.iter().copied())))
        };
        let cases: &[(&[Option<&str>], DataType)] = &[
            (&[Some("1"), None, Some("2")], DataType::Int64),
            (&[Some("1"), Some("2.5")], DataType::Float64),
            (&[Some("1"), Some("true")], DataType::String),
            (
                &[Some("2025-01-01"), Some("2025-01-01 10:00")],
                DataType::String,
            ),
            (&[None, None], DataType::String),
            (&[], DataType::String),
        ];
        for (values, want) in cases {
            assert_eq!(column(values), *want, "{values:?}");
        }
    }
}
