//! A CSV field's text as a value of its column's type, as polars' CSV reader reads it.
//!
//! Contract: the piece parser calls [`ColumnParser::push`] for each field of a column and
//! [`ColumnParser::finish`] for the column. An empty field is null; numbers have the blanks
//! before them skipped (nothing left is null); booleans are `true`/`false` in any case; dates
//! and datetimes take the pattern group (day first, year first, with an offset) of the
//! column's first value in the piece and any pattern of that group after, times the format of
//! the first; decimals are read by polars' own `str_to_dec128`. A value that does not fit is a
//! [`Misfit`] naming the column, the type, where the type came from and the `input.types`
//! setting that reads it. Text columns take every value as it is.

use polars::chunked_array::temporal::time_to_time64ns;
use polars::io::csv::read::schema_inference::finish_infer_field_schema;
use polars::prelude::*;
use polars::time::chunkedarray::string::infer::{
    infer_pattern_single, sniff_time_fmt, DatetimeInfer, StrpTimeParser, TryFromWithUnit,
};
use polars::time::chunkedarray::string::Pattern;

use super::excerpt;
use super::types::{infer_value, ColumnType, Origin};
use crate::config::{column_type, toml_key, type_name};

/// A value that does not fit its column's type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column `{column}`: `{value}` is not {expected} ({origin}); set input.types = {{ {key} = \"{fits}\" }} to read the column as {fits}")]
pub struct Misfit {
    /// The column as a message quotes it.
    pub column: String,
    /// The column as a TOML key.
    pub key: String,
    /// The value as a message quotes it.
    pub value: String,
    /// The column's type.
    pub expected: String,
    /// Where the column's type came from.
    pub origin: Origin,
    /// The type that reads this value and the column's others.
    pub fits: String,
}

/// The declarable type that reads `value` and the values that fit `dtype` (text when no
/// other would).
fn fitting_type(dtype: &DataType, value: &str) -> DataType {
    let seen = PlIndexSet::from_iter([dtype.clone(), infer_value(value)]);
    match finish_infer_field_schema(&seen) {
        fit if fit != *dtype && column_type(&type_name(&fit)).is_some() => fit,
        _ => DataType::String,
    }
}

/// The values of one column of a piece, turned into its type as they come.
pub struct ColumnParser {
    name: PlSmallStr,
    column: ColumnType,
    values: Values,
}

enum Values {
    Text(StringChunkedBuilder),
    Int64(PrimitiveChunkedBuilder<Int64Type>),
    Float64(PrimitiveChunkedBuilder<Float64Type>),
    Boolean(BooleanChunkedBuilder),
    Decimal(PrimitiveChunkedBuilder<Int128Type>, usize, usize),
    Date(Temporal<Int32Type>),
    Datetime(Temporal<Int64Type>, TimeUnit, Option<TimeZone>),
    Time(TimeOfDay),
}

impl ColumnParser {
    /// A parser of `capacity` values of the column `name`, of type `column`.
    pub fn new(name: PlSmallStr, column: &ColumnType, capacity: usize) -> ColumnParser {
        let values = match &column.dtype {
            DataType::Int64 => Values::Int64(PrimitiveChunkedBuilder::new(name.clone(), capacity)),
            DataType::Float64 => {
                Values::Float64(PrimitiveChunkedBuilder::new(name.clone(), capacity))
            }
            DataType::Boolean => {
                Values::Boolean(BooleanChunkedBuilder::new(name.clone(), capacity))
            }
            DataType::Decimal(p, s) => {
                Values::Decimal(PrimitiveChunkedBuilder::new(name.clone(), capacity), *p, *s)
            }
            DataType::Date => Values::Date(Temporal::new(&name, capacity, None)),
            DataType::Datetime(unit, zone) => Values::Datetime(
                Temporal::new(&name, capacity, Some(*unit)),
                *unit,
                zone.clone(),
            ),
            DataType::Time => Values::Time(TimeOfDay {
                format: None,
                values: PrimitiveChunkedBuilder::new(name.clone(), capacity),
            }),
            _ => Values::Text(StringChunkedBuilder::new(name.clone(), capacity)),
        };
        ColumnParser {
            name,
            column: column.clone(),
            values,
        }
    }

    /// Adds one field's text: an empty field is null, others a value of the column's type.
    pub fn push(&mut self, field: &str) -> Result<(), Box<Misfit>> {
        let fits = match &mut self.values {
            _ if field.is_empty() => self.push_null(),
            Values::Text(b) => {
                b.append_value(field);
                true
            }
            Values::Int64(b) => append_number(b, field, |n| n.parse().ok()),
            Values::Float64(b) => append_number(b, field, |n| n.parse().ok()),
            Values::Decimal(b, p, s) => append_number(b, field, |n| {
                polars_compute::decimal::str_to_dec128(n.as_bytes(), *p, *s, false)
            }),
            Values::Boolean(b) => match field {
                f if f.eq_ignore_ascii_case("true") => append_bool(b, true),
                f if f.eq_ignore_ascii_case("false") => append_bool(b, false),
                _ => false,
            },
            Values::Date(t) => t.push(field),
            Values::Datetime(t, ..) => t.push(field),
            Values::Time(t) => t.push(field),
        };
        match fits {
            true => Ok(()),
            false => Err(Box::new(self.misfit(field))),
        }
    }

    fn push_null(&mut self) -> bool {
        match &mut self.values {
            Values::Text(b) => b.append_null(),
            Values::Int64(b) => b.append_null(),
            Values::Float64(b) => b.append_null(),
            Values::Boolean(b) => b.append_null(),
            Values::Decimal(b, ..) => b.append_null(),
            Values::Date(t) => t.values.append_null(),
            Values::Datetime(t, ..) => t.values.append_null(),
            Values::Time(t) => t.values.append_null(),
        }
        true
    }

    fn misfit(&self, value: &str) -> Misfit {
        let fits = fitting_type(&self.column.dtype, value);
        Misfit {
            column: excerpt(&self.name),
            key: toml_key(&self.name),
            value: excerpt(value),
            expected: type_name(&self.column.dtype),
            origin: self.column.origin.clone(),
            fits: type_name(&fits),
        }
    }

    /// The column of the values pushed.
    pub fn finish(self) -> Column {
        match self.values {
            Values::Text(b) => b.finish().into_column(),
            Values::Int64(b) => b.finish().into_column(),
            Values::Float64(b) => b.finish().into_column(),
            Values::Boolean(b) => b.finish().into_column(),
            Values::Decimal(b, p, s) => b.finish().into_decimal_unchecked(p, s).into_column(),
            Values::Date(t) => t.values.finish().into_date().into_column(),
            Values::Datetime(t, unit, zone) => {
                t.values.finish().into_datetime(unit, zone).into_column()
            }
            Values::Time(t) => t.values.finish().into_time().into_column(),
        }
    }
}

/// Appends `value` when there is one; `false` when there is none.
fn append<T: PolarsNumericType>(
    values: &mut PrimitiveChunkedBuilder<T>,
    value: Option<T::Native>,
) -> bool {
    value.map(|v| values.append_value(v)).is_some()
}

/// Appends a number as polars reads one: blanks before it skipped, nothing left a null.
fn append_number<T: PolarsNumericType>(
    values: &mut PrimitiveChunkedBuilder<T>,
    field: &str,
    parse: impl FnOnce(&str) -> Option<T::Native>,
) -> bool {
    match field.trim_start_matches([' ', '\t']) {
        "" => {
            values.append_null();
            true
        }
        number => append(values, parse(number)),
    }
}

fn append_bool(values: &mut BooleanChunkedBuilder, value: bool) -> bool {
    values.append_value(value);
    true
}

/// Dates and datetimes as polars' CSV reader parses them: the pattern group of the column's
/// first value (day first, year first, or with an offset), any pattern of that group after.
/// Unlike polars, the parser that read the last value (polars' own, or chrono in the last
/// pattern that fit) is tried first, and the compiled patterns are kept rather than compiled
/// again for each value polars' fast parser cannot read (any with seconds, `%.f`): a million
/// such datetimes cost 0.2 s of CPU instead of 1.2 s. Patterns of one group read a value alike,
/// so the values are polars'.
struct Temporal<T: PolarsNumericType> {
    compiled: Option<DatetimeInfer<T>>,
    chrono_first: bool,
    unit: Option<TimeUnit>,
    values: PrimitiveChunkedBuilder<T>,
}

impl<T> Temporal<T>
where
    T: PolarsNumericType,
    DatetimeInfer<T>: TryFromWithUnit<Pattern> + StrpTimeParser<T::Native>,
{
    fn new(name: &PlSmallStr, capacity: usize, unit: Option<TimeUnit>) -> Self {
        Temporal {
            compiled: None,
            chrono_first: false,
            unit,
            values: PrimitiveChunkedBuilder::new(name.clone(), capacity),
        }
    }

    fn push(&mut self, text: &str) -> bool {
        let value = self.parse(text);
        append(&mut self.values, value)
    }

    fn parse(&mut self, text: &str) -> Option<T::Native> {
        let Some(compiled) = &mut self.compiled else {
            let pattern = infer_pattern_single(text)?;
            let mut infer = DatetimeInfer::<T>::try_from_with_unit(pattern, self.unit).ok()?;
            let value = infer.parse(text)?;
            self.compiled = Some(infer);
            return Some(value);
        };
        if self.chrono_first {
            if let Some(value) = compiled.parse(text) {
                return Some(value);
            }
        }
        if let Some(value) = compiled.parse_bytes(text.as_bytes(), self.unit) {
            self.chrono_first = false;
            return Some(value);
        }
        let value = compiled.parse(text)?;
        self.chrono_first = true;
        Some(value)
    }
}

/// Times of day as polars reads them: in the format of the column's first value (`%T%.f` or
/// `%R`).
struct TimeOfDay {
    format: Option<&'static str>,
    values: PrimitiveChunkedBuilder<Int64Type>,
}

impl TimeOfDay {
    fn push(&mut self, text: &str) -> bool {
        let Some(format) = self.format.or_else(|| sniff_time_fmt(text)) else {
            return false;
        };
        self.format = Some(format);
        let time = chrono::NaiveTime::parse_from_str(text, format).ok();
        append(&mut self.values, time.as_ref().map(time_to_time64ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(dtype: DataType, fields: &[&str]) -> Result<Column, Box<Misfit>> {
        let column = ColumnType {
            dtype,
            origin: Origin::Inferred { rows: 10 },
        };
        let mut parser = ColumnParser::new("c".into(), &column, fields.len());
        for field in fields {
            parser.push(field)?;
        }
        Ok(parser.finish())
    }

    #[test]
    fn fields_become_values_as_polars_reads_them() {
        let ints = parse(DataType::Int64, &["1", " 007", "", "-3", "+4", "\t"]).unwrap();
        let want: Vec<Option<i64>> = vec![Some(1), Some(7), None, Some(-3), Some(4), None];
        assert_eq!(ints.i64().unwrap().iter().collect::<Vec<_>>(), want);
        let floats = parse(DataType::Float64, &["1.5", "NaN", "inf", "2", ""]).unwrap();
        let floats: Vec<Option<f64>> = floats.f64().unwrap().iter().collect();
        assert_eq!(floats[0], Some(1.5));
        assert!(floats[1].unwrap().is_nan());
        assert_eq!(floats[2..], [Some(f64::INFINITY), Some(2.0), None]);
        let bools = parse(DataType::Boolean, &["True", "false", ""]).unwrap();
        let bools: Vec<Option<bool>> = bools.bool().unwrap().iter().collect();
        assert_eq!(bools, [Some(true), Some(false), None]);
        let decimals = parse(DataType::Decimal(12, 2), &["12.5", "3", "-0.01"]).unwrap();
        let decimals = decimals.cast(&DataType::Float64).unwrap();
        let decimals: Vec<Option<f64>> = decimals.f64().unwrap().iter().collect();
        assert_eq!(decimals, [Some(12.5), Some(3.0), Some(-0.01)]);
        let dates = parse(DataType::Date, &["2025-04-21", "2025/04/22", ""]).unwrap();
        let days: Vec<Option<i32>> = dates.date().unwrap().physical().iter().collect();
        assert_eq!(days, [Some(20199), Some(20200), None]);
        let datetime = DataType::Datetime(TimeUnit::Microseconds, None);
        // Patterns polars' fast parser reads and patterns only chrono reads, in turn.
        let fields = [
            "2025-04-21 22:35:10",
            "2025-04-21",
            "2025-04-21T00:00:01.5",
            "2025-04-21 00:01",
            "2025-04-21 22:35:10",
        ];
        let stamps = parse(datetime, &fields).unwrap();
        let stamps: Vec<Option<i64>> = stamps.datetime().unwrap().physical().iter().collect();
        let midnight = 20199 * 86_400_000_000i64;
        let at = |us: i64| Some(midnight + us);
        let want = [
            at(81_310_000_000),
            at(0),
            at(1_500_000),
            at(60_000_000),
            at(81_310_000_000),
        ];
        assert_eq!(stamps, want);
        let times = parse(DataType::Time, &["22:35:10", "00:00:01.5"]).unwrap();
        let times = times
            .as_materialized_series()
            .time()
            .unwrap()
            .physical()
            .clone();
        let times: Vec<Option<i64>> = times.iter().collect();
        assert_eq!(times, [Some(81_310_000_000_000), Some(1_500_000_000)]);
    }

    #[test]
    fn a_value_that_does_not_fit_names_the_setting_that_reads_it() {
        let datetime = DataType::Datetime(TimeUnit::Microseconds, None);
        let cases: Vec<(DataType, &[&str], &str)> = vec![
            (DataType::Int64, &["1", "1.5"], "float64"),
            (DataType::Int64, &["1", "1,5"], "string"),
            (DataType::Int64, &["1", "1 "], "string"),
            (DataType::Float64, &["1", "n/a"], "string"),
            (DataType::Boolean, &["true", "yes"], "string"),
            (DataType::Date, &["2025-04-21", "21.04.2025"], "string"),
            (
                DataType::Date,
                &["2025-04-21", "2025-04-21 10:00"],
                "string",
            ),
            (datetime, &["2025-04-21 10:00", "tomorrow"], "string"),
            (DataType::Decimal(4, 2), &["12.5", "123.5"], "string"),
            (DataType::Time, &["10:00", "10:00:01"], "string"),
        ];
        for (dtype, fields, fits) in cases {
            let name = type_name(&dtype);
            let misfit = parse(dtype, fields).unwrap_err();
            assert_eq!(misfit.fits, fits, "{name} {fields:?}");
            assert_eq!(misfit.value, *fields.last().unwrap());
            let message = misfit.to_string();
            assert!(
                message.contains(&format!("is not {name} (inferred from the first 10 rows)"))
                    && message.contains(&format!("input.types = {{ c = \"{fits}\" }}")),
                "{message}"
            );
        }
    }
}
