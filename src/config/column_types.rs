//! The names `input.types` gives CSV column types (`int64`, `decimal(12,2)`), both ways, and
//! a column name as a TOML key: what the job file says and what messages quote.
//!
//! Contract: [`column_type`] accepts exactly the names [`COLUMN_TYPE_NAMES`] lists (and their
//! aliases); [`type_name`] gives back the name `column_type` reads for every type it returns.

use polars::prelude::{DataType, TimeUnit};

/// The names `input.types` takes, as messages list them.
pub const COLUMN_TYPE_NAMES: &str =
    "string, int64, float64, bool, date, datetime, time, decimal(P,S)";

/// The type a name of `input.types` declares (`int64`, `decimal(12,2)`), or `None`.
pub fn column_type(name: &str) -> Option<DataType> {
    let name = name.trim().to_ascii_lowercase();
    Some(match name.as_str() {
        "string" | "str" | "text" => DataType::String,
        "int64" | "i64" => DataType::Int64,
        "float64" | "f64" => DataType::Float64,
        "bool" | "boolean" => DataType::Boolean,
        "date" => DataType::Date,
        "datetime" => DataType::Datetime(TimeUnit::Microseconds, None),
        "time" => DataType::Time,
        _ => {
            let inner = name.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (precision, scale) = inner.split_once(',')?;
            let precision: usize = precision.trim().parse().ok()?;
            let scale: usize = scale.trim().parse().ok()?;
            polars_compute::decimal::dec128_verify_prec_scale(precision, scale).ok()?;
            DataType::Decimal(precision, scale)
        }
    })
}

/// A type as `input.types` names it (`datetime (UTC)` for the one it cannot declare).
pub fn type_name(dtype: &DataType) -> String {
    match dtype {
        DataType::String => "string".into(),
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Boolean => "bool".into(),
        DataType::Date => "date".into(),
        DataType::Datetime(_, None) => "datetime".into(),
        DataType::Datetime(_, Some(zone)) => format!("datetime ({zone})"),
        DataType::Time => "time".into(),
        DataType::Decimal(precision, scale) => format!("decimal({precision},{scale})"),
        other => other.to_string(),
    }
}

/// A column name as a TOML key: bare when it can be, else quoted.
pub fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match bare {
        true => name.to_string(),
        false => toml::Value::String(name.to_string()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_read_and_print_alike() {
        let cases: &[(&str, Option<DataType>)] = &[
            ("int64", Some(DataType::Int64)),
            ("Float64", Some(DataType::Float64)),
            ("bool", Some(DataType::Boolean)),
            ("string", Some(DataType::String)),
            ("date", Some(DataType::Date)),
            (
                "datetime",
                Some(DataType::Datetime(TimeUnit::Microseconds, None)),
            ),
            ("time", Some(DataType::Time)),
            ("decimal(12,2)", Some(DataType::Decimal(12, 2))),
            ("decimal( 38 , 0 )", Some(DataType::Decimal(38, 0))),
            ("decimal(39,2)", None),
            ("decimal(2,3)", None),
            ("decimal(12)", None),
            ("int32", None),
            ("number", None),
        ];
        for (name, want) in cases {
            assert_eq!(column_type(name), *want, "{name}");
            if let Some(dtype) = want {
                assert_eq!(column_type(&type_name(dtype)).as_ref(), Some(dtype));
            }
        }
        assert_eq!(toml_key("amount_2"), "amount_2");
        assert_eq!(toml_key("first name"), "\"first name\"");
    }
}
