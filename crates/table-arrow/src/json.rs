//! `jsontable`: a JSON array of row objects to and from record batches and
//! serde types.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::writer::{JsonArray, WriterBuilder};
use arrow_schema::{ArrowError, Schema};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

fn json_error(context: &str, e: serde_json::Error) -> Error {
    Error::with_source(ErrorKind::Json, context, e)
}

fn mixed(context: &str, e: ArrowError) -> Error {
    Error::with_source(ErrorKind::MixedRows, context, e)
}

/// Parses `jsontable` bytes into rows, checking each is a JSON object.
fn parse_rows(json: &[u8]) -> Result<Vec<Value>> {
    let value: Value = serde_json::from_slice(json).map_err(|e| json_error("jsontable", e))?;
    let Value::Array(rows) = value else {
        return Err(Error::new(ErrorKind::Json, "jsontable: not a JSON array of row objects"));
    };
    if let Some(i) = rows.iter().position(|row| !row.is_object()) {
        return Err(Error::new(
            ErrorKind::Json,
            format!("jsontable: row {i} is not an object but {}", rows[i]),
        ));
    }
    Ok(rows)
}

/// Reads `jsontable` bytes into one record batch, inferring the schema.
///
/// Types are inferred as Arrow's JSON reader does: integers as `Int64`,
/// numbers with a fraction (or mixed with integers) as `Float64`, `true` and
/// `false` as `Boolean`, strings as `Utf8`, arrays as lists and objects as
/// structs; a key missing from a row, or `null`, is a null. Columns come in
/// order of first appearance.
///
/// Errors: [`ErrorKind::Json`] if the bytes are not a JSON array of objects;
/// [`ErrorKind::MixedRows`] if a key holds values no one type can hold
/// (a number in one row and a string or an object in another).
///
/// ```
/// let batch = natsbridge_table_arrow::read_json_rows(br#"[{"id":1,"name":"Alice"},{"id":2}]"#)?;
/// assert_eq!((batch.num_rows(), batch.num_columns()), (2, 2));
/// assert_eq!(batch.column(1).null_count(), 1);
/// # Ok::<(), natsbridge_table_arrow::Error>(())
/// ```
pub fn read_json_rows(json: &[u8]) -> Result<RecordBatch> {
    let rows = parse_rows(json)?;
    let schema = arrow_json::reader::infer_json_schema_from_iterator(rows.iter().map(Ok))
        .map_err(|e| mixed("jsontable rows cannot share one schema", e))?;
    read_json_rows_with(&rows, Arc::new(schema))
}

/// Reads `jsontable` rows into one record batch of a schema the caller
/// gives (for types JSON cannot name: timestamps, decimals, narrower
/// integers, dictionaries).
///
/// A value that does not fit its column's type is [`ErrorKind::MixedRows`];
/// keys not in the schema are ignored.
pub fn read_json_rows_as(json: &[u8], schema: Arc<Schema>) -> Result<RecordBatch> {
    let rows = parse_rows(json)?;
    read_json_rows_with(&rows, schema)
}

fn read_json_rows_with(rows: &[Value], schema: Arc<Schema>) -> Result<RecordBatch> {
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()
        .map_err(|e| mixed("jsontable", e))?;
    decoder.serialize(rows).map_err(|e| mixed("jsontable rows do not fit one schema", e))?;
    Ok(decoder
        .flush()
        .map_err(|e| mixed("jsontable rows do not fit one schema", e))?
        .unwrap_or_else(|| RecordBatch::new_empty(schema)))
}

/// Writes batches as `jsontable` bytes: one JSON array of row objects,
/// with nulls written as `null` (as pandas' `to_json(orient="records")`
/// does) rather than left out.
///
/// A column type JSON cannot express (such as a map with non-string keys)
/// is [`ErrorKind::Unsupported`].
pub fn write_json_rows(batches: &[RecordBatch]) -> Result<Bytes> {
    let mut writer =
        WriterBuilder::new().with_explicit_nulls(true).build::<_, JsonArray>(Vec::new());
    let unsupported =
        |e: ArrowError| Error::with_source(ErrorKind::Unsupported, "cannot write jsontable", e);
    for batch in batches {
        writer.write(batch).map_err(unsupported)?;
    }
    writer.finish().map_err(unsupported)?;
    let mut out = writer.into_inner();
    // The array writer writes nothing at all for no rows.
    if out.is_empty() {
        out.extend_from_slice(b"[]");
    }
    Ok(Bytes::from(out))
}

/// Writes serde rows as `jsontable` bytes.
///
/// Each `T` should serialize to a JSON object (a struct or a map);
/// anything else is [`ErrorKind::Json`].
pub fn rows_to_json<T: Serialize>(rows: &[T]) -> Result<Bytes> {
    let out = serde_json::to_vec(rows).map_err(|e| json_error("jsontable", e))?;
    // Checking the first row is enough: all rows share one type.
    if let Some(first) = rows.first() {
        let value = serde_json::to_value(first).map_err(|e| json_error("jsontable", e))?;
        if !value.is_object() {
            return Err(Error::new(ErrorKind::Json, "jsontable rows must serialize to objects"));
        }
    }
    Ok(Bytes::from(out))
}

/// Reads `jsontable` bytes into serde rows.
///
/// A row that does not deserialize to `T` is [`ErrorKind::Json`], naming
/// serde's reason and position.
pub fn rows_from_json<T: DeserializeOwned>(json: &[u8]) -> Result<Vec<T>> {
    serde_json::from_slice(json).map_err(|e| json_error("jsontable rows", e))
}

/// Builds one record batch from serde rows, inferring the schema as
/// [`read_json_rows`] does.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Reading { sensor: String, value: f64 }
/// let rows = [Reading { sensor: "a".into(), value: 1.5 }];
/// let batch = natsbridge_table_arrow::rows_to_batch(&rows)?;
/// assert_eq!(batch.schema().field(1).name(), "value");
/// # Ok::<(), natsbridge_table_arrow::Error>(())
/// ```
pub fn rows_to_batch<T: Serialize>(rows: &[T]) -> Result<RecordBatch> {
    read_json_rows(&rows_to_json(rows)?)
}

/// Reads serde rows out of record batches (through their JSON row form).
pub fn batches_to_rows<T: DeserializeOwned>(batches: &[RecordBatch]) -> Result<Vec<T>> {
    rows_from_json(&write_json_rows(batches)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_and_string_in_one_column_is_mixed_rows() {
        let e = read_json_rows(br#"[{"a":1},{"a":"x"}]"#).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::MixedRows, "{e}");
    }

    #[test]
    fn not_an_array_is_json_error() {
        assert_eq!(*read_json_rows(br#"{"a":1}"#).unwrap_err().kind(), ErrorKind::Json);
        assert_eq!(*read_json_rows(br#"[1,2]"#).unwrap_err().kind(), ErrorKind::Json);
        assert_eq!(*read_json_rows(b"[{").unwrap_err().kind(), ErrorKind::Json);
    }

    #[test]
    fn empty_array_is_empty_batch() {
        let batch = read_json_rows(b"[]").unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(&write_json_rows(&[batch]).unwrap()[..], b"[]");
    }
}
