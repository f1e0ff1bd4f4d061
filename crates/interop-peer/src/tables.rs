//! Arrow tables for the driver contract: a spec's list of row objects to an
//! `arrowtable` payload, and a received table to the canonical
//! `{"columns", "rows"}` value whose digest every peer computes
//! (`tests/interop/README.md`, "Spec files" and "Digests"). Cells keep their
//! column's type: a Float64 cell is a JSON float (`88.0`, canonical `8.8e1`),
//! an integer column's cell an integer.

use std::fmt;
use std::sync::Arc;

use anyhow::{Context, bail};
use natsbridge::table::arrow_array::cast::AsArray;
use natsbridge::table::arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use natsbridge::table::arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use natsbridge::table::arrow_schema::DataType;
use natsbridge::table::{Bytes, read_ipc, write_ipc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON value that keeps object keys in document order (serde_json's
/// `Map` sorts them), read only to learn a table spec's column order.
pub(crate) enum Ordered {
    Scalar,
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Ordered {
    /// The keys of the first row of item `index`'s `value`, in order.
    pub(crate) fn first_row_keys(items: &[Ordered], index: usize) -> Option<Vec<String>> {
        let Ordered::Object(fields) = items.get(index)? else { return None };
        let (_, value) = fields.iter().find(|(k, _)| k == "value")?;
        let Ordered::Array(rows) = value else { return None };
        let Ordered::Object(first) = rows.first()? else { return None };
        Some(first.iter().map(|(k, _)| k.clone()).collect())
    }
}

impl<'de> de::Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some((key, value)) = map.next_entry()? {
                    fields.push((key, value));
                }
                Ok(Ordered::Object(fields))
            }
        }
        d.deserialize_any(V)
    }
}

/// Builds the Arrow IPC stream of a spec's rows: Int64 for all-integer
/// columns, Float64 when any cell is a non-integer number, Utf8, Bool;
/// `null` cells stay null.
pub(crate) fn rows_to_ipc(columns: &[String], rows: &[Value]) -> anyhow::Result<Bytes> {
    let rows: Vec<&Map<String, Value>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| r.as_object().with_context(|| format!("row {i} is not an object")))
        .collect::<anyhow::Result<_>>()?;
    let mut arrays: Vec<(String, ArrayRef)> = Vec::with_capacity(columns.len());
    for name in columns {
        let cells: Vec<&Value> = rows.iter().map(|r| r.get(name).unwrap_or(&Value::Null)).collect();
        let present = || cells.iter().filter(|c| !c.is_null());
        let array: ArrayRef = if present().all(|c| c.is_i64() || c.is_u64()) {
            let values: Vec<Option<i64>> = cells
                .iter()
                .map(|c| match c {
                    Value::Null => Ok(None),
                    _ => c.as_i64().map(Some).with_context(|| format!("{name}: {c} overflows i64")),
                })
                .collect::<anyhow::Result<_>>()?;
            Arc::new(Int64Array::from(values))
        } else if present().all(|c| c.is_number()) {
            Arc::new(Float64Array::from(cells.iter().map(|c| c.as_f64()).collect::<Vec<_>>()))
        } else if present().all(|c| c.is_string()) {
            Arc::new(StringArray::from(cells.iter().map(|c| c.as_str()).collect::<Vec<_>>()))
        } else if present().all(|c| c.is_boolean()) {
            Arc::new(BooleanArray::from(cells.iter().map(|c| c.as_bool()).collect::<Vec<_>>()))
        } else {
            bail!("column {name} mixes cell types");
        };
        arrays.push((name.clone(), array));
    }
    let batch = RecordBatch::try_from_iter(arrays)?;
    Ok(write_ipc(&[batch])?)
}

/// The canonical `{"columns": [...], "rows": [[...], ...]}` value of Arrow
/// IPC bytes (stream or file format).
pub(crate) fn canonical_table(bytes: &Bytes) -> anyhow::Result<Value> {
    let table = read_ipc(bytes)?;
    let columns: Vec<Value> =
        table.schema.fields().iter().map(|f| Value::from(f.name().as_str())).collect();
    let mut rows = Vec::with_capacity(table.num_rows());
    for batch in &table.batches {
        let cells: Vec<Vec<Value>> =
            batch.columns().iter().map(cells).collect::<anyhow::Result<_>>()?;
        for r in 0..batch.num_rows() {
            rows.push(Value::Array(cells.iter().map(|col| col[r].clone()).collect()));
        }
    }
    Ok(serde_json::json!({"columns": columns, "rows": rows}))
}

fn float(f: f64) -> Value {
    // NaN is null in the canonical form; infinities are kept as numbers by
    // `canon` through their own spelling, so carry them as strings here.
    if f.is_nan() {
        Value::Null
    } else if f.is_infinite() {
        Value::from(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// One column's cells as JSON values (see `tests/interop/README.md`, "Table cells").
fn cells(array: &ArrayRef) -> anyhow::Result<Vec<Value>> {
    macro_rules! primitive {
        ($t:ty, $f:expr) => {{
            let a = array.as_primitive::<$t>();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { $f(a.value(i)) }).collect()
        }};
    }
    let values: Vec<Value> = match array.data_type() {
        DataType::Null => vec![Value::Null; array.len()],
        DataType::Int8 => primitive!(Int8Type, Value::from),
        DataType::Int16 => primitive!(Int16Type, Value::from),
        DataType::Int32 => primitive!(Int32Type, Value::from),
        DataType::Int64 => primitive!(Int64Type, Value::from),
        DataType::UInt8 => primitive!(UInt8Type, Value::from),
        DataType::UInt16 => primitive!(UInt16Type, Value::from),
        DataType::UInt32 => primitive!(UInt32Type, Value::from),
        DataType::UInt64 => primitive!(UInt64Type, Value::from),
        DataType::Float32 => primitive!(Float32Type, |v: f32| float(f64::from(v))),
        DataType::Float64 => primitive!(Float64Type, float),
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..a.len())
                .map(|i| if a.is_null(i) { Value::Null } else { a.value(i).into() })
                .collect()
        }
        DataType::Utf8 => strings(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => strings(array.as_string::<i64>().iter()),
        DataType::Utf8View => strings(array.as_string_view().iter()),
        DataType::Dictionary(_, value) if value.as_ref() == &DataType::Utf8 => {
            let dict = array.as_any_dictionary();
            let keys = dict.normalized_keys();
            let values = cells(dict.values())?;
            (0..array.len())
                .map(|i| if array.is_null(i) { Value::Null } else { values[keys[i]].clone() })
                .collect()
        }
        other => bail!("table cells of type {other} are not in the interop contract"),
    };
    Ok(values)
}

fn strings<'a>(cells: impl Iterator<Item = Option<&'a str>>) -> Vec<Value> {
    cells.map(|c| c.map_or(Value::Null, Value::from)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_rows_keep_the_first_rows_key_order_and_round_trip_through_arrow() {
        let spec = r#"[{"dataname": "t", "type": "arrowtable", "value": [
            {"id": 1, "name": "Alice", "score": 95.5, "active": true},
            {"id": 2, "name": null, "score": 88, "active": false}]}]"#;
        let ordered: Vec<Ordered> = serde_json::from_str(spec).unwrap();
        let columns = Ordered::first_row_keys(&ordered, 0).unwrap();
        assert_eq!(columns, ["id", "name", "score", "active"]);

        let items: Vec<Value> = serde_json::from_str(spec).unwrap();
        let rows = items[0]["value"].as_array().unwrap();
        let ipc = rows_to_ipc(&columns, rows).unwrap();
        let table = read_ipc(&ipc).unwrap();
        let types: Vec<String> =
            table.schema.fields().iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(types, ["Int64", "Utf8", "Float64", "Boolean"]);
        assert_eq!(
            canonical_table(&ipc).unwrap(),
            json!({"columns": ["id", "name", "score", "active"],
                   "rows": [[1, "Alice", 95.5, true], [2, null, 88.0, false]]})
        );
    }

    #[test]
    fn cells_follow_the_column_type_in_the_canonical_form() {
        let rows = vec![json!({"id": 1, "score": 88.0}), json!({"id": 2, "score": 95.5})];
        let ipc = rows_to_ipc(&["id".into(), "score".into()], &rows).unwrap();
        let mut s = String::new();
        crate::canonical::canon(&canonical_table(&ipc).unwrap(), &mut s);
        assert_eq!(s, r#"{"columns":["id","score"],"rows":[[1,8.8e1],[2,9.55e1]]}"#);
    }

    #[test]
    fn a_column_of_mixed_cell_types_is_refused() {
        let rows = vec![json!({"x": 1}), json!({"x": "one"})];
        let err = rows_to_ipc(&["x".into()], &rows).unwrap_err();
        assert!(err.to_string().contains("column x mixes cell types"), "{err}");
    }
}
