//! Any bytes as an `arrowtable` payload: `read_ipc` (stream or file format,
//! full validation) returns a table or an error; no panic escapes it.
//!
//! Arrow's IPC reader itself can panic on lying buffer descriptors (the
//! first crash this target found: `Buffer::slice_with_length` asserting on
//! a length of 2^56, `crates/table-arrow/tests/fixtures/fuzz_buffer_offset.arrows`).
//! `read_ipc` contains such panics and returns `Malformed`, which is the
//! promise under test here, so the hook that libfuzzer-sys installs (abort
//! on any panic, even a caught one) is replaced by a silent one. A panic
//! that escapes `read_ipc` still reaches libfuzzer-sys's `catch_unwind`
//! around the target and aborts: that is still a crash.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| {
        // A copy, so the buffer is 8-aligned as a received payload's is.
        let bytes = Bytes::copy_from_slice(data);
        if let Ok(table) = natsbridge_table_arrow::read_ipc(&bytes) {
            let _ = table.num_rows();
        }
    }
);
