//! The added columns of one frame as Arrow arrays, ready for the Parquet encoder.
//!
//! Contract: [`added_arrays`] turns a frame's [`Enrichment`]s into one array per entry of
//! [`ENRICHMENT_COLUMNS`](super::ENRICHMENT_COLUMNS), typed as [`enrichment_dtype`] says. The columns that take few values
//! (`status` and the operator's fields) come out as dictionary arrays holding exactly the values
//! the frame uses, so the encoder writes them as dictionary pages without hashing every cell to
//! find the dictionary (and their statistics, taken from the dictionary, are those of the
//! values). `e164` and `checked_at` too, unless more than three cells in four are distinct
//! (polars' rule), then they come out plain. An operator's fields are looked up once per
//! distinct answer of the frame, not once per cell; a number's text is written once per frame.

use std::hash::Hash;

use polars::prelude::{CompatLevel, PlHashMap};
use polars_arrow::array::{
    new_null_array, Array, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray,
};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_arrow::types::NativeType;
use polars_compute::gather::take_unchecked;

use super::{enrichment_dtype, Enrichment, Status};
use crate::normalize::E164;
use crate::provider::OperatorInfo;

/// A null cell's key while a column is built.
const NULL: u32 = u32::MAX;

/// Up to this many values, a value's key is found by comparing, not hashing (a status, a
/// frame's operators or time zones).
const FEW: usize = 8;

/// One column's cells as keys into the distinct values they hold, in order of first use.
struct Dictionary<V> {
    /// A key per cell, [`NULL`] for a null one.
    keys: Vec<u32>,
    values: Vec<V>,
    index: PlHashMap<V, u32>,
}

impl<V: Hash + Eq + Copy> Dictionary<V> {
    /// A column of `rows` cells, holding about `distinct` values.
    fn with_capacity(rows: usize, distinct: usize) -> Self {
        Dictionary {
            keys: Vec::with_capacity(rows),
            values: Vec::with_capacity(distinct),
            index: PlHashMap::with_capacity_and_hasher(distinct, Default::default()),
        }
    }

    /// The key of `value`, added to the dictionary on first use.
    fn key(&mut self, value: V) -> u32 {
        let next = self.values.len() as u32;
        if self.values.len() <= FEW {
            if let Some(key) = self.values.iter().position(|v| *v == value) {
                return key as u32;
            }
            self.index.insert(value, next);
        } else {
            let key = *self.index.entry(value).or_insert(next);
            if key != next {
                return key;
            }
        }
        self.values.push(value);
        next
    }

    /// Appends a cell holding `value`, or null.
    fn push_value(&mut self, value: Option<V>) {
        let key = value.map_or(NULL, |v| self.key(v));
        self.keys.push(key);
    }

    /// As [`Dictionary::finish`], but the values in row order when more than three cells in
    /// four hold distinct values, where polars writes plain pages (a dictionary would not pay).
    fn finish_unless_distinct(
        self,
        values: impl FnOnce(Vec<V>) -> Box<dyn Array>,
    ) -> Box<dyn Array> {
        let plain = self.keys.len() > 128 && 4 * self.values.len() > 3 * self.keys.len();
        let array = self.finish(values);
        if plain {
            undictionary(array)
        } else {
            array
        }
    }

    /// The column, its distinct values made into an array by `values`.
    fn finish(mut self, values: impl FnOnce(Vec<V>) -> Box<dyn Array>) -> Box<dyn Array> {
        let values = values(self.values);
        let validity = self
            .keys
            .contains(&NULL)
            .then(|| Bitmap::from_iter(self.keys.iter().map(|&k| k != NULL)));
        // A null cell's key must still index the values.
        for key in &mut self.keys {
            if *key == NULL {
                *key = 0;
            }
        }
        let keys = PrimitiveArray::new(ArrowDataType::UInt32, self.keys.into(), validity);
        let dtype =
            ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(values.dtype().clone()), false);
        Box::new(
            DictionaryArray::<u32>::try_new(dtype, keys, values)
                .expect("every key indexes the values it was made for"),
        )
    }
}

/// `array` with each dictionary key replaced by its value (any other array as it is).
pub(super) fn undictionary(array: Box<dyn Array>) -> Box<dyn Array> {
    let Some(dictionary) = array.as_any().downcast_ref::<DictionaryArray<u32>>() else {
        return array;
    };
    let values = dictionary.values();
    if values.is_empty() {
        return new_null_array(values.dtype().clone(), dictionary.len());
    }
    // SAFETY: every key indexes the values (checked when the array was made), a null one too.
    unsafe { take_unchecked(values.as_ref(), dictionary.keys()) }
}

fn strings(values: Vec<&str>) -> Box<dyn Array> {
    Box::new(Utf8ViewArray::from_slice_values(values))
}

fn primitives<T: NativeType>(values: Vec<T>) -> Box<dyn Array> {
    Box::new(PrimitiveArray::from_vec(values))
}

/// A text field, null when empty.
fn text(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The operator's fields of a frame, each a dictionary; an answer's keys are found once.
struct OperatorColumns<'a> {
    country: Dictionary<&'a str>,
    operator: Dictionary<&'a str>,
    region: Dictionary<&'a str>,
    mcc: Dictionary<u16>,
    mnc: Dictionary<&'a str>,
    tz: Dictionary<i8>,
    /// The keys of each answer met, by its address (answers are shared, not copied, per cell).
    answers: PlHashMap<*const OperatorInfo, [u32; 6]>,
}

impl<'a> OperatorColumns<'a> {
    fn with_capacity(rows: usize) -> Self {
        OperatorColumns {
            country: Dictionary::with_capacity(rows, 0),
            operator: Dictionary::with_capacity(rows, 0),
            region: Dictionary::with_capacity(rows, 0),
            mcc: Dictionary::with_capacity(rows, 0),
            mnc: Dictionary::with_capacity(rows, 0),
            tz: Dictionary::with_capacity(rows, 0),
            answers: PlHashMap::default(),
        }
    }

    fn push(&mut self, info: Option<&'a OperatorInfo>) {
        let keys = match info {
            None => [NULL; 6],
            Some(i) => *self.answers.entry(i as *const _).or_insert_with(|| {
                [
                    text(&i.country).map_or(NULL, |v| self.country.key(v)),
                    text(&i.operator).map_or(NULL, |v| self.operator.key(v)),
                    text(&i.region).map_or(NULL, |v| self.region.key(v)),
                    i.mcc.map_or(NULL, |v| self.mcc.key(v)),
                    text(&i.mnc).map_or(NULL, |v| self.mnc.key(v)),
                    i.tz.map_or(NULL, |v| self.tz.key(v)),
                ]
            }),
        };
        self.country.keys.push(keys[0]);
        self.operator.keys.push(keys[1]);
        self.region.keys.push(keys[2]);
        self.mcc.keys.push(keys[3]);
        self.mnc.keys.push(keys[4]);
        self.tz.keys.push(keys[5]);
    }

    /// The columns in [`ENRICHMENT_COLUMNS`](super::ENRICHMENT_COLUMNS)' order.
    fn finish(self) -> [Box<dyn Array>; 6] {
        [
            self.country.finish(strings),
            self.operator.finish(strings),
            self.region.finish(strings),
            self.mcc.finish(primitives),
            self.mnc.finish(strings),
            self.tz.finish(primitives),
        ]
    }
}

/// The added columns for a frame, one `Enrichment` per row, in
/// [`ENRICHMENT_COLUMNS`](super::ENRICHMENT_COLUMNS)' order.
pub fn added_arrays<'a>(
    rows: impl ExactSizeIterator<Item = Enrichment<'a>>,
) -> Vec<Box<dyn Array>> {
    let n = rows.len();
    // Numbers and times are mostly distinct within a frame: sized once, not grown.
    let mut e164 = Dictionary::<u64>::with_capacity(n, n);
    let mut status = Dictionary::<Status>::with_capacity(n, 0);
    let mut operators = OperatorColumns::with_capacity(n);
    let mut checked = Dictionary::<i64>::with_capacity(n, n);
    for row in rows {
        e164.push_value(row.e164);
        status.push_value(row.status);
        operators.push(row.info);
        checked.push_value(row.checked_at_ms);
    }
    let mut arrays = vec![
        e164.finish_unless_distinct(|numbers| {
            let mut digits = [0u8; 21];
            let mut texts = MutableBinaryViewArray::<str>::with_capacity(numbers.len());
            for n in numbers {
                texts.push_value(E164(n).plus_text(&mut digits));
            }
            Box::new(Utf8ViewArray::from(texts))
        }),
        status.finish(|v| strings(v.into_iter().map(Status::as_str).collect())),
    ];
    arrays.extend(operators.finish());
    arrays.push(checked.finish_unless_distinct(|ms| {
        let dtype = enrichment_dtype("checked_at").to_arrow(CompatLevel::newest());
        let micros: Vec<i64> = ms.into_iter().map(|ms| ms * 1000).collect();
        Box::new(PrimitiveArray::new(dtype, micros.into(), None))
    }));
    arrays
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use polars::prelude::*;
    use polars_arrow::array::DictionaryArray;

    use super::super::{enrichment_columns, enrichment_dtype, ENRICHMENT_COLUMNS};
    use super::added_arrays;
    use crate::output::{Enrichment, Status};
    use crate::provider::OperatorInfo;

    /// A cell's expected output: e164, status, country, operator, region, mcc, mnc, tz and
    /// checked_at (µs) as text, `|` between, an empty field for null.
    type Row = &'static str;

    fn found<'a>(info: &'a OperatorInfo) -> Enrichment<'a> {
        Enrichment {
            e164: Some(79161234567),
            status: Some(Status::Ok),
            info: Some(info),
            checked_at_ms: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn every_cell_gets_its_answers_fields_typed_as_documented() {
        let mts = OperatorInfo::example();
        let mts_elsewhere = OperatorInfo::example();
        let tele2 = OperatorInfo {
            operator: "Tele2".into(),
            mnc: "20".into(),
            tz: Some(-1),
            ..OperatorInfo::example()
        };
        let partial = OperatorInfo {
            region: String::new(),
            mcc: None,
            tz: None,
            ..OperatorInfo::example()
        };
        const MTS: Row = "+79161234567|ok|Россия|МТС|Москва|250|01|3|1700000000000000";
        let table: Vec<(Enrichment, Row)> = vec![
            (found(&mts), MTS),
            (Enrichment::EMPTY, "||||||||"),
            (
                Enrichment {
                    status: Some(Status::InvalidNumber),
                    ..Enrichment::EMPTY
                },
                "|invalid_number|||||||",
            ),
            (
                found(&tele2),
                "+79161234567|ok|Россия|Tele2|Москва|250|20|-1|1700000000000000",
            ),
            (
                found(&partial),
                "+79161234567|ok|Россия|МТС|||01||1700000000000000",
            ),
            (found(&mts_elsewhere), MTS),
            (
                Enrichment {
                    status: Some(Status::NotFound),
                    info: None,
                    ..found(&mts)
                },
                "+79161234567|not_found|||||||1700000000000000",
            ),
            (found(&mts), MTS),
        ];
        // The whole table as one frame, then each row as a frame of its own.
        let frames = std::iter::once(table.clone()).chain(table.iter().map(|r| vec![*r]));
        for frame in frames {
            let rows = frame.iter().map(|(e, _)| *e);
            for array in added_arrays(rows.clone()) {
                if let Some(d) = array.as_any().downcast_ref::<DictionaryArray<u32>>() {
                    let used: HashSet<u32> = d.keys().iter().flatten().copied().collect();
                    assert_eq!(
                        used.len(),
                        d.values().len(),
                        "the values the frame uses, once"
                    );
                }
            }
            let columns = enrichment_columns("p_", rows);
            for (c, (column, suffix)) in columns.iter().zip(ENRICHMENT_COLUMNS).enumerate() {
                assert_eq!(column.name().as_str(), format!("p_{suffix}"));
                assert_eq!(column.dtype(), &enrichment_dtype(suffix), "{suffix}");
                let text = match column.dtype() {
                    DataType::Datetime(..) => column.cast(&DataType::Int64).unwrap(),
                    _ => column.clone(),
                }
                .cast(&DataType::String)
                .unwrap();
                let got: Vec<Option<String>> = text
                    .str()
                    .unwrap()
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect();
                let want: Vec<Option<String>> = frame
                    .iter()
                    .map(|(_, row)| row.split('|').nth(c).filter(|v| !v.is_empty()))
                    .map(|v| v.map(str::to_string))
                    .collect();
                assert_eq!(got, want, "{suffix}");
            }
        }
    }

    #[test]
    fn numbers_and_times_are_dictionaries_unless_three_cells_in_four_differ() {
        let mts = OperatorInfo::example();
        // (cells, distinct numbers and times among them, written as a dictionary)
        let table = [
            (200, 200, false),
            (200, 151, false),
            (200, 150, true),
            (200, 1, true),
            (128, 128, true),
        ];
        for (cells, distinct, dictionary) in table {
            let rows = (0..cells).map(|i: u32| Enrichment {
                e164: Some(79160000000 + u64::from(i % distinct)),
                checked_at_ms: Some(i64::from(i % distinct)),
                ..found(&mts)
            });
            let arrays = added_arrays(rows);
            for (array, name) in [(&arrays[0], "e164"), (&arrays[8], "checked_at")] {
                let is_dictionary = matches!(array.dtype(), ArrowDataType::Dictionary(..));
                assert_eq!(
                    is_dictionary, dictionary,
                    "{name}, {cells} cells, {distinct} distinct"
                );
            }
        }
    }
}
