//! Arrow IPC round trips, zero-copy reading and malformed input.

use std::sync::Arc;

use natsbridge_table_arrow::arrow_array::*;
use natsbridge_table_arrow::{
    Bytes, Compression, ErrorKind, IpcFormat, RecordBatch, WriteOptions, read_ipc, write_ipc,
    write_ipc_with,
};
use proptest::prelude::*;

use crate::util::{assert_same_cells, reference_batch};

fn with(format: IpcFormat, compression: Option<Compression>) -> WriteOptions {
    WriteOptions::new().with_format(format).with_compression(compression)
}

#[test]
fn every_type_round_trips_in_both_formats_and_compressed() {
    let batch = reference_batch();
    for options in [
        with(IpcFormat::Stream, None),
        with(IpcFormat::File, None),
        with(IpcFormat::Stream, Some(Compression::Lz4)),
        with(IpcFormat::File, Some(Compression::Lz4)),
    ] {
        let bytes =
            write_ipc_with(batch.schema_ref(), &[batch.clone(), batch.slice(1, 3)], &options)
                .unwrap();
        assert_eq!(IpcFormat::detect(&bytes), options.format);
        let table = read_ipc(&bytes).unwrap();
        assert_eq!(table.batches.len(), 2, "{options:?}");
        assert_eq!(table.num_rows(), 8);
        assert_same_cells(&table.batches[0], &batch);
        assert_same_cells(&table.batches[1], &batch.slice(1, 3));
    }
}

#[test]
fn zstd_without_its_feature_is_unsupported() {
    let batch = reference_batch();
    let result = write_ipc_with(
        batch.schema_ref(),
        std::slice::from_ref(&batch),
        &with(IpcFormat::Stream, Some(Compression::Zstd)),
    );
    if cfg!(feature = "zstd") {
        assert!(read_ipc(&result.unwrap()).is_ok());
    } else {
        assert_eq!(*result.unwrap_err().kind(), ErrorKind::Unsupported);
    }
}

#[test]
fn schema_metadata_is_kept() {
    let batch = reference_batch();
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("pandas".to_string(), r#"{"index_columns": []}"#.to_string());
    let schema = batch.schema().as_ref().clone().with_metadata(metadata.clone());
    let batch = batch.with_schema(Arc::new(schema)).unwrap();
    for format in [IpcFormat::Stream, IpcFormat::File] {
        let bytes =
            write_ipc_with(batch.schema_ref(), std::slice::from_ref(&batch), &with(format, None))
                .unwrap();
        let table = read_ipc(&bytes).unwrap();
        assert_eq!(table.schema.metadata(), &metadata);
        assert_eq!(table.batches[0].schema().metadata(), &metadata);
    }
}

#[test]
fn no_batches_needs_a_schema() {
    assert_eq!(*write_ipc(&[]).unwrap_err().kind(), ErrorKind::Schema);
    let batch = reference_batch();
    let bytes = write_ipc_with(batch.schema_ref(), &[], &WriteOptions::default()).unwrap();
    let table = read_ipc(&bytes).unwrap();
    assert!(table.batches.is_empty());
    assert_eq!(table.schema.fields(), batch.schema().fields());
}

#[test]
fn batches_of_different_fields_are_a_schema_error() {
    let a = RecordBatch::try_from_iter([("a", Arc::new(Int32Array::from(vec![1])) as ArrayRef)])
        .unwrap();
    let b = RecordBatch::try_from_iter([("b", Arc::new(Int32Array::from(vec![1])) as ArrayRef)])
        .unwrap();
    assert_eq!(*write_ipc(&[a, b]).unwrap_err().kind(), ErrorKind::Schema);
}

/// The arrays point into the received allocation: nothing was copied.
#[test]
fn reading_is_zero_copy() {
    let n = 100_000;
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef),
        ("name", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("n{i}"))))),
    ])
    .unwrap();
    for format in [IpcFormat::Stream, IpcFormat::File] {
        let sent =
            write_ipc_with(batch.schema_ref(), std::slice::from_ref(&batch), &with(format, None))
                .unwrap();
        // A fresh allocation, as a received message would be.
        let received = Bytes::from(sent.to_vec());
        let range = received.as_ptr() as usize..received.as_ptr() as usize + received.len();
        let table = read_ipc(&received).unwrap();
        let ids = table.batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let names = table.batches[0].column(1).as_any().downcast_ref::<StringArray>().unwrap();
        for ptr in [
            ids.values().as_ptr() as usize,
            names.values().as_ptr() as usize,
            names.value_offsets().as_ptr() as usize,
        ] {
            assert!(
                range.contains(&ptr),
                "{format:?}: buffer at {ptr:#x} is outside the received {range:x?}"
            );
        }
        assert_eq!(ids.value(n as usize - 1), n - 1);
    }
}

fn stream_bytes() -> Bytes {
    write_ipc(&[reference_batch()]).unwrap()
}

fn file_bytes() -> Bytes {
    let batch = reference_batch();
    write_ipc_with(batch.schema_ref(), std::slice::from_ref(&batch), &with(IpcFormat::File, None))
        .unwrap()
}

fn malformed(bytes: impl Into<Bytes>) -> String {
    let e = read_ipc(&bytes.into()).unwrap_err();
    assert_eq!(*e.kind(), ErrorKind::Malformed, "{e}");
    e.to_string()
}

#[test]
fn garbage_is_malformed() {
    malformed(&b"hello, this is not arrow at all"[..]);
    malformed(vec![0xffu8; 64]);
    malformed(vec![0u8; 3]);
}

#[test]
fn truncated_input_is_an_error_or_fewer_rows_never_a_panic() {
    for bytes in [stream_bytes(), file_bytes()] {
        for len in 0..bytes.len() {
            match read_ipc(&bytes.slice(..len)) {
                Ok(table) => assert!(table.num_rows() <= 5),
                Err(e) => assert_eq!(*e.kind(), ErrorKind::Malformed, "at {len}: {e}"),
            }
        }
        // Cut in the middle of the record batch body.
        let message = malformed(bytes.slice(..bytes.len() * 3 / 4));
        assert!(!message.is_empty());
    }
}

#[test]
fn wrong_file_magic_is_malformed() {
    let mut bytes = file_bytes().to_vec();
    let n = bytes.len();
    bytes[n - 1] = b'2';
    let message = malformed(bytes.clone());
    assert!(message.contains("file"), "{message}");
    bytes[0] = b'X';
    malformed(bytes);
}

#[test]
fn lying_lengths_are_malformed() {
    // The stream's first message length, made huge.
    let mut bytes = stream_bytes().to_vec();
    assert_eq!(&bytes[..4], &[0xff; 4]);
    bytes[4..8].copy_from_slice(&0x7fff_fff0_i32.to_le_bytes());
    malformed(bytes);
    // The file's footer length, made larger than the file.
    let mut bytes = file_bytes().to_vec();
    let n = bytes.len();
    bytes[n - 10..n - 6].copy_from_slice(&(n as i32).to_le_bytes());
    let message = malformed(bytes);
    assert!(message.contains("footer"), "{message}");
}

/// The first crash the `arrow_ipc` fuzz target found: a stream whose
/// buffer descriptor claims 2^56 bytes makes Arrow's reader panic
/// (`Buffer::slice_with_length`); `read_ipc` contains it as `Malformed`.
#[test]
fn fuzz_crash_lying_buffer_length_is_malformed() {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz_buffer_offset.arrows"),
    )
    .unwrap();
    let message = malformed(bytes);
    assert!(message.contains("cannot exceed the existing length"), "{message}");
}

/// The second: an LZ4 buffer declaring ~2^62 uncompressed bytes, which
/// Arrow's reader would reserve up front (an allocation failure aborts the
/// process; it cannot be caught). `read_ipc` refuses it before reading.
#[test]
fn fuzz_crash_huge_declared_lz4_length_is_malformed() {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz_lz4_declared_length.arrows"),
    )
    .unwrap();
    let message = malformed(bytes);
    assert!(message.contains("declares"), "{message}");
}

#[test]
fn lying_string_offsets_fail_validation() {
    // Offsets past the end of the values must be caught by Arrow's
    // validation, not read out of bounds.
    let batch = RecordBatch::try_from_iter([(
        "s",
        Arc::new(StringArray::from(vec!["abcd", "efgh"])) as ArrayRef,
    )])
    .unwrap();
    let bytes = write_ipc(&[batch]).unwrap().to_vec();
    // The body holds the offsets [0, 4, 8] as little-endian i32.
    let offsets: Vec<u8> = [0_i32, 4, 8].iter().flat_map(|o| o.to_le_bytes()).collect();
    let at = bytes.windows(12).position(|w| w == offsets.as_slice()).unwrap();
    let mut lying = bytes.clone();
    lying[at + 8..at + 12].copy_from_slice(&1000_i32.to_le_bytes());
    malformed(lying);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ints_floats_utf8_with_nulls_round_trip(
        rows in prop::collection::vec(
            (any::<Option<i64>>(), prop::option::of(-1e300..1e300f64), any::<Option<String>>(), any::<Option<i8>>()),
            0..200,
        ),
        format in prop_oneof![Just(IpcFormat::Stream), Just(IpcFormat::File)],
    ) {
        let batch = RecordBatch::try_from_iter([
            ("i", Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()) as ArrayRef),
            ("f", Arc::new(rows.iter().map(|r| r.1).collect::<Float64Array>())),
            ("s", Arc::new(rows.iter().map(|r| r.2.clone()).collect::<StringArray>())),
            ("b", Arc::new(rows.iter().map(|r| r.3).collect::<Int8Array>())),
        ])
        .unwrap();
        let bytes = write_ipc_with(batch.schema_ref(), std::slice::from_ref(&batch), &with(format, None)).unwrap();
        let table = read_ipc(&bytes).unwrap();
        prop_assert_eq!(table.batches, vec![batch]);
    }

    #[test]
    fn flipped_bytes_never_panic(at in any::<prop::sample::Index>(), value in any::<u8>()) {
        let mut bytes = stream_bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = value;
        // An error or a (possibly different) table: both are fine, a panic is not.
        let _ = read_ipc(&Bytes::from(bytes));
    }
}
