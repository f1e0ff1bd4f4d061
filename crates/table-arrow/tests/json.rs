//! `jsontable` conversions and the payload glue.

use natsbridge_envelope_core::{Payload, PayloadType};
use natsbridge_table_arrow::arrow_array::*;
use natsbridge_table_arrow::arrow_schema::DataType;
use natsbridge_table_arrow::*;
use serde::{Deserialize, Serialize};

use crate::util::reference_batch;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Person {
    id: i64,
    name: String,
    score: Option<f64>,
}

fn people() -> Vec<Person> {
    vec![
        Person { id: 1, name: "Alice".into(), score: Some(1.5) },
        Person { id: 2, name: "Bob".into(), score: None },
    ]
}

#[test]
fn serde_rows_round_trip_through_a_batch() {
    let batch = rows_to_batch(&people()).unwrap();
    assert_eq!(batch.schema().field(0).data_type(), &DataType::Int64);
    assert_eq!(batch.schema().field(2).data_type(), &DataType::Float64);
    assert_eq!(batches_to_rows::<Person>(&[batch]).unwrap(), people());
}

#[test]
fn spec_example_reads() {
    let batch = read_json_rows(br#"[{"id":1,"name":"Alice"},{"id":2,"name":"Bob"}]"#).unwrap();
    let names = batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(names.value(1), "Bob");
}

#[test]
fn nulls_are_written_explicitly() {
    let json = write_json_rows(&[rows_to_batch(&people()).unwrap()]).unwrap();
    assert_eq!(
        std::str::from_utf8(&json).unwrap(),
        r#"[{"id":1,"name":"Alice","score":1.5},{"id":2,"name":"Bob","score":null}]"#
    );
}

#[test]
fn mixed_rows_are_a_clear_error() {
    for json in
        [&br#"[{"a":1},{"a":"one"}]"#[..], br#"[{"a":1},{"a":{"b":1}}]"#, br#"[{"a":[1]},{"a":2}]"#]
    {
        let e = read_json_rows(json).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::MixedRows, "{}: {e}", String::from_utf8_lossy(json));
    }
    // Ints and floats share Float64, missing keys are nulls: not mixed.
    let batch = read_json_rows(br#"[{"a":1},{"a":2.5},{"b":true}]"#).unwrap();
    assert_eq!(batch.num_columns(), 2);
}

#[test]
fn wrong_row_type_is_json_error() {
    let e = rows_from_json::<Person>(br#"[{"id":"x"}]"#).unwrap_err();
    assert_eq!(*e.kind(), ErrorKind::Json);
    assert_eq!(*rows_to_json(&[1, 2]).unwrap_err().kind(), ErrorKind::Json);
}

#[test]
fn explicit_schema_reads_narrow_types() {
    use natsbridge_table_arrow::arrow_schema::{Field, Schema};
    let schema = std::sync::Arc::new(Schema::new(vec![Field::new("v", DataType::Int8, true)]));
    let batch = read_json_rows_as(br#"[{"v":1},{"v":null}]"#, schema).unwrap();
    assert_eq!(batch.column(0).null_count(), 1);
    let e = read_json_rows_as(
        br#"[{"v":"x"}]"#,
        std::sync::Arc::new(Schema::new(vec![Field::new("v", DataType::Int8, true)])),
    )
    .unwrap_err();
    assert_eq!(*e.kind(), ErrorKind::MixedRows);
}

#[test]
fn payload_glue_reads_every_table_type() {
    let batch = reference_batch();
    let payload = arrow_payload("t", std::slice::from_ref(&batch)).unwrap();
    assert_eq!(payload.payload_type, PayloadType::ArrowTable);
    assert_eq!(table_from_payload(&payload).unwrap().batches, vec![batch.clone()]);
    // The older name reads the same.
    let older = Payload::new("t", PayloadType::Table, payload.bytes.clone());
    assert_eq!(table_from_payload(&older).unwrap().batches, vec![batch.clone()]);
    assert_eq!(batches_from_payload(&payload.bytes).unwrap(), vec![batch.clone()]);

    let rows = rows_to_batch(&people()).unwrap();
    let payload = json_payload("j", std::slice::from_ref(&rows)).unwrap();
    assert_eq!(payload.payload_type, PayloadType::JsonTable);
    assert_eq!(table_from_payload(&payload).unwrap().batches, vec![rows]);
    // The envelope's own jsontable constructor reads here too.
    let payload = Payload::json_table("j", &people()).unwrap();
    assert_eq!(table_from_payload(&payload).unwrap().num_rows(), 2);

    let text = Payload::text("t", "hello");
    assert_eq!(*table_from_payload(&text).unwrap_err().kind(), ErrorKind::Unsupported);
}

#[test]
fn reference_types_write_as_json() {
    // Named zones ("UTC", what pandas writes for tz-aware columns) need
    // arrow's chrono-tz feature, which this crate turns on.
    let batch = reference_batch();
    let json = write_json_rows(&[batch]).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows[1]["i64"].is_null());
    assert_eq!(rows[0]["ts_utc"], "2023-11-14T22:13:20Z");
    assert!(rows[1]["ts_utc"].is_null());
}

#[test]
fn a_named_zone_other_than_utc_writes_local_time_with_its_offset() {
    let batch = RecordBatch::try_from_iter([(
        "t",
        std::sync::Arc::new(
            TimestampSecondArray::from(vec![1_700_000_000]).with_timezone("Europe/Paris"),
        ) as ArrayRef,
    )])
    .unwrap();
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&write_json_rows(&[batch]).unwrap()).unwrap();
    assert_eq!(rows[0]["t"], "2023-11-14T23:13:20+01:00");
}
