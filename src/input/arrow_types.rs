//! A Parquet input's own Arrow types, where polars reads a column as another type: which of
//! them a run can carry to the output unchanged, and how polars' arrays become them again.
//!
//! polars reads `date64` as a datetime, every `time32`/`time64` as nanoseconds, `duration[s]`
//! and `timestamp[s]` in milliseconds, `fixed_size_binary` as binary, `list` as `large_list`,
//! a dictionary as a categorical or as its values, `decimal256` as a 128-bit decimal. Where
//! the Parquet encoding of the two types is the same (lists, dictionaries, string and binary
//! widths, decimals of the same precision) only the declared type differs, and the output
//! declares the input's; where it differs, [`restore`] turns the values back. A type polars or
//! the Parquet writer cannot carry (a map, a decimal wider than 38 digits, an interval, ...) is
//! refused by [`InputTypes::of_schema`] before any data is read.

use polars::prelude::{PlHashMap, PlSmallStr};
use polars_arrow::array::{Array, FixedSizeListArray, ListArray, PrimitiveArray, StructArray};
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema, Field as ArrowField, TimeUnit};
use polars_compute::cast::{cast, CastOptionsImpl};

use super::excerpt;

/// The input's own Arrow field of each column whose type polars changes on reading, by name.
#[derive(Debug, Clone, Default)]
pub struct InputTypes {
    declared: PlHashMap<PlSmallStr, ArrowField>,
}

/// A column of a type a run cannot carry through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column `{column}` has type {dtype}, which polars 0.55 cannot read or write back unchanged; drop or convert that column")]
pub struct Uncarried {
    /// The column's name, as a message shows it.
    pub column: String,
    /// Its type, as a message shows it.
    pub dtype: String,
}

impl InputTypes {
    /// The types of `schema` (a Parquet file's, as it declares them) that polars would change,
    /// or the first column a run cannot carry. Nothing is read but the schema.
    pub(super) fn of_schema(schema: &ArrowSchema) -> Result<InputTypes, Uncarried> {
        let mut declared = PlHashMap::default();
        for field in schema.iter_values() {
            if !carried(&field.dtype, false) {
                return Err(Uncarried {
                    column: excerpt(&field.name),
                    dtype: excerpt(&format!("{:?}", field.dtype)),
                });
            }
            if polars_arrow_type(field) != field.dtype {
                declared.insert(field.name.clone(), field.clone());
            }
        }
        Ok(InputTypes { declared })
    }

    /// The input's own field of column `name`, when polars reads it as another type.
    pub fn declared(&self, name: &str) -> Option<&ArrowField> {
        self.declared.get(name)
    }
}

/// The Arrow schema a Parquet file declares, as written: its `ARROW:schema` entry decoded as is
/// (polars-parquet's `infer_schema` hands it over already changed), or, for a file without
/// one, the types its Parquet schema maps to.
pub fn declared_schema(
    metadata: &polars_parquet::read::FileMetadata,
) -> polars::prelude::PolarsResult<ArrowSchema> {
    use base64::Engine as _;
    let entry = metadata
        .key_value_metadata()
        .iter()
        .flatten()
        .find(|kv| kv.key == "ARROW:schema")
        .and_then(|kv| kv.value.as_deref());
    let Some(encoded) = entry else {
        return polars_parquet::read::infer_schema(metadata);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| polars::prelude::polars_err!(ComputeError: "ARROW:schema: {e}"))?;
    // Arrow's legacy IPC framing: a continuation marker and a length before the message.
    let message = match bytes.get(..4) {
        Some([255, 255, 255, 255]) => &bytes[8.min(bytes.len())..],
        _ => &bytes[..],
    };
    Ok(polars_arrow::io::ipc::read::deserialize_schema(message)?.0)
}

/// The Arrow type polars gives a column of `field`'s type (as it writes it).
fn polars_arrow_type(field: &ArrowField) -> ArrowDataType {
    polars::prelude::DataType::from_arrow_field(field)
        .to_arrow(polars::prelude::CompatLevel::newest())
}

/// Whether polars reads `dtype` and the output can hold it again as it was. `nested`: inside a
/// list or struct, where the Parquet writer takes neither fixed-size binary nor dictionaries.
fn carried(dtype: &ArrowDataType, nested: bool) -> bool {
    use ArrowDataType as A;
    match dtype {
        A::Null
        | A::Boolean
        | A::Int8
        | A::Int16
        | A::Int32
        | A::Int64
        | A::UInt8
        | A::UInt16
        | A::UInt32
        | A::UInt64
        | A::Float16
        | A::Float32
        | A::Float64
        | A::Date32
        | A::Date64
        | A::Time32(_)
        | A::Time64(_)
        | A::Timestamp(_, _)
        | A::Duration(_)
        | A::Utf8
        | A::LargeUtf8
        | A::Utf8View
        | A::Binary
        | A::LargeBinary
        | A::BinaryView => true,
        A::FixedSizeBinary(_) => !nested,
        A::Decimal(p, _) | A::Decimal32(p, _) | A::Decimal64(p, _) | A::Decimal256(p, _) => {
            *p <= 38
        }
        A::List(f) | A::LargeList(f) | A::FixedSizeList(f, _) => carried(&f.dtype, true),
        A::Struct(fields) => !fields.is_empty() && fields.iter().all(|f| carried(&f.dtype, true)),
        // Dictionary values must reach the output as they are: polars reads them as its own.
        A::Dictionary(_, values, _) => {
            !nested && !values.is_nested() && carried(values, true) && !needs_restoring(values)
        }
        _ => false,
    }
}

/// Whether polars' values of a column declared `dtype` differ from its own in Parquet.
fn needs_restoring(dtype: &ArrowDataType) -> bool {
    use ArrowDataType as A;
    match dtype {
        A::Date64
        | A::Time32(_)
        | A::Timestamp(TimeUnit::Second, _)
        | A::Duration(TimeUnit::Second)
        | A::FixedSizeBinary(_) => true,
        A::Time64(unit) => *unit != TimeUnit::Nanosecond,
        A::List(f) | A::LargeList(f) | A::FixedSizeList(f, _) => needs_restoring(&f.dtype),
        A::Struct(fields) => fields.iter().any(|f| needs_restoring(&f.dtype)),
        _ => false,
    }
}

/// polars' array of a column declared `declared` in the input, with its values as the input
/// had them where their Parquet encoding differs; lists and structs keep polars' layout (the
/// same in Parquet) around restored children.
pub fn restore(
    array: Box<dyn Array>,
    declared: &ArrowDataType,
) -> polars::prelude::PolarsResult<Box<dyn Array>> {
    use ArrowDataType as A;
    if !needs_restoring(declared) {
        return Ok(array);
    }
    match (array.dtype().clone(), declared) {
        (A::LargeList(f), A::List(d) | A::LargeList(d)) => {
            let list = array
                .as_any()
                .downcast_ref::<ListArray<i64>>()
                .expect("a large list");
            let values = restore(list.values().clone(), &d.dtype)?;
            let field = ArrowField::new(f.name.clone(), values.dtype().clone(), f.is_nullable);
            Ok(ListArray::<i64>::new(
                A::LargeList(Box::new(field)),
                list.offsets().clone(),
                values,
                list.validity().cloned(),
            )
            .boxed())
        }
        (A::FixedSizeList(f, size), A::FixedSizeList(d, _)) => {
            let list = array
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .expect("a fixed-size list");
            let values = restore(list.values().clone(), &d.dtype)?;
            let field = ArrowField::new(f.name.clone(), values.dtype().clone(), f.is_nullable);
            Ok(FixedSizeListArray::new(
                A::FixedSizeList(Box::new(field), size),
                list.len(),
                values,
                list.validity().cloned(),
            )
            .boxed())
        }
        (A::Struct(fields), A::Struct(declared_fields)) => {
            let s = array
                .as_any()
                .downcast_ref::<StructArray>()
                .expect("a struct");
            let mut values = Vec::with_capacity(fields.len());
            let mut out_fields = Vec::with_capacity(fields.len());
            for ((field, value), d) in fields.iter().zip(s.values()).zip(declared_fields) {
                let value = restore(value.clone(), &d.dtype)?;
                out_fields.push(ArrowField::new(
                    field.name.clone(),
                    value.dtype().clone(),
                    field.is_nullable,
                ));
                values.push(value);
            }
            Ok(StructArray::new(
                A::Struct(out_fields),
                s.len(),
                values,
                s.validity().cloned(),
            )
            .boxed())
        }
        (A::Duration(from), A::Duration(TimeUnit::Second)) => Ok(in_seconds(&*array, from)),
        _ => cast(array.as_ref(), declared, CastOptionsImpl::default()),
    }
}

/// A duration array of `unit` as `duration[s]`.
fn in_seconds(array: &dyn Array, unit: TimeUnit) -> Box<dyn Array> {
    use ArrowDataType as A;
    let per_second: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let values = array
        .as_any()
        .downcast_ref::<PrimitiveArray<i64>>()
        .expect("durations are 64-bit");
    let seconds: PrimitiveArray<i64> = values.iter().map(|v| v.map(|v| v / per_second)).collect();
    seconds.to(A::Duration(TimeUnit::Second)).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_carried_or_refused() {
        use ArrowDataType as A;
        let field = |dtype: A| Box::new(ArrowField::new("x".into(), dtype, true));
        let cases: Vec<(A, bool)> = vec![
            (A::Decimal(12, 2), true),
            (A::Decimal256(38, 0), true),
            (A::Decimal256(50, 2), false),
            (A::Float16, true),
            (A::UInt8, true),
            (A::Date64, true),
            (A::Time32(TimeUnit::Second), true),
            (A::Duration(TimeUnit::Second), true),
            (A::FixedSizeBinary(16), true),
            (A::FixedSizeList(field(A::Int32), 3), true),
            (A::List(field(A::List(field(A::Date64)))), true),
            (A::List(field(A::FixedSizeBinary(4))), false),
            (
                A::LargeList(field(A::Dictionary(
                    polars_arrow::datatypes::IntegerType::Int8,
                    Box::new(A::Utf8),
                    false,
                ))),
                false,
            ),
            (A::Map(field(A::Struct(vec![])), false), false),
            (A::Struct(vec![]), false),
            (A::Int128, false),
            (
                A::Dictionary(
                    polars_arrow::datatypes::IntegerType::Int8,
                    Box::new(A::Utf8),
                    false,
                ),
                true,
            ),
            (
                A::Dictionary(
                    polars_arrow::datatypes::IntegerType::Int32,
                    Box::new(A::Date64),
                    false,
                ),
                false,
            ),
        ];
        for (dtype, want) in cases {
            assert_eq!(carried(&dtype, false), want, "{dtype:?}");
        }
    }
}
