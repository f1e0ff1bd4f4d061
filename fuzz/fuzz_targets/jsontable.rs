//! Any bytes as a `jsontable` payload: `read_json_rows` infers a schema and
//! builds a batch, or returns an error, never panics; an accepted batch
//! writes back to rows that read again with the same shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natsbridge_table_arrow::{read_json_rows, write_json_rows};

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = read_json_rows(data) else { return };
    let Ok(json) = write_json_rows(std::slice::from_ref(&batch)) else { return };
    if let Ok(again) = read_json_rows(&json) {
        assert_eq!(again.num_rows(), batch.num_rows());
    }
});
