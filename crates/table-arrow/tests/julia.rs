//! The Arrow.jl reference stream (see `tests/fixtures/README.md`).

use natsbridge_table_arrow::arrow_array::*;
use natsbridge_table_arrow::arrow_schema::{DataType, TimeUnit};
use natsbridge_table_arrow::{Bytes, IpcFormat, read_ipc};

#[test]
fn reads_arrow_jl_reference_stream() {
    let bytes = Bytes::from_static(include_bytes!("fixtures/julia_arrow_stream.arrows"));
    assert_eq!(IpcFormat::detect(&bytes), IpcFormat::Stream);
    let table = read_ipc(&bytes).unwrap();
    assert_eq!(
        table.schema.metadata().get("JULIA_ARROW_NOTE").map(String::as_str),
        Some("written by the natsbridge fixture generator")
    );
    let sym = table.schema.field_with_name("sym").unwrap();
    assert_eq!(
        sym.metadata().get("ARROW:extension:name").map(String::as_str),
        Some("JuliaLang.Symbol")
    );
    let batch = &table.batches[0];
    assert_eq!(batch.num_rows(), 3);
    let ids = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(ids.values().to_vec(), vec![1, 2, 3]);
    let names = batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(names.iter().collect::<Vec<_>>(), vec![Some("a"), None, Some("c")]);
    let scores = batch.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(scores.iter().collect::<Vec<_>>(), vec![Some(0.5), Some(1.5), None]);
    assert_eq!(batch.column(3).data_type(), &DataType::Timestamp(TimeUnit::Millisecond, None));
    let when = batch.column(3).as_any().downcast_ref::<TimestampMillisecondArray>().unwrap();
    assert_eq!(
        when.iter().collect::<Vec<_>>(),
        vec![Some(1_700_000_000_000), None, Some(1_700_000_000_002)]
    );
    let sym = batch.column(4).as_any().downcast_ref::<DictionaryArray<types::Int32Type>>().unwrap();
    let values = sym.values().as_any().downcast_ref::<StringArray>().unwrap();
    let cells: Vec<_> = sym.keys().iter().map(|k| values.value(k.unwrap() as usize)).collect();
    assert_eq!(cells, vec!["x", "y", "x"]);
}
