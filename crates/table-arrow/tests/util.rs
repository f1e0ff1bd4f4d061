//! Shared helpers: the reference tables the peers' scripts also build, and
//! running those scripts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use natsbridge_table_arrow::RecordBatch;
use natsbridge_table_arrow::arrow_array::builder::{Int64Builder, ListBuilder};
use natsbridge_table_arrow::arrow_array::types::Int32Type;
use natsbridge_table_arrow::arrow_array::*;
use natsbridge_table_arrow::arrow_schema::{DataType, Field, Fields};

pub(crate) const N: usize = 5;

/// Every third row (from the second) is null, as in the scripts.
pub(crate) fn nth<T>(i: usize, v: T) -> Option<T> {
    if i % 3 == 1 { None } else { Some(v) }
}

fn col<T>(f: impl Fn(usize) -> T) -> Vec<Option<T>> {
    (0..N).map(|i| nth(i, f(i))).collect()
}

/// `reference_table()` of `tests/interop/tables/arrow_peer.py`, without its
/// pandas metadata.
pub(crate) fn reference_batch() -> RecordBatch {
    let mut list = ListBuilder::new(Int64Builder::new());
    for i in 0..N {
        match nth(i, ()) {
            Some(()) => {
                list.values().extend((0..i as i64).map(Some));
                list.append(true);
            }
            None => list.append(false),
        }
    }
    let valid: Vec<bool> = (0..N).map(|i| nth(i, ()).is_some()).collect();
    let strukt = StructArray::try_new(
        Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]),
        vec![
            Arc::new(Int64Array::from(col(|i| i as i64))) as ArrayRef,
            Arc::new(StringArray::from(col(|i| i.to_string()))),
        ],
        Some(valid.into()),
    )
    .unwrap();
    let dict: DictionaryArray<Int32Type> = col(|i| ["red", "green"][i % 2]).into_iter().collect();
    RecordBatch::try_from_iter([
        ("i64", Arc::new(Int64Array::from(col(|i| i as i64 * 1000 - 2))) as ArrayRef),
        ("f64", Arc::new(Float64Array::from(col(|i| i as f64 / 4.0)))),
        // pandas 3 stores strings as Arrow large_string.
        ("utf8", Arc::new(LargeStringArray::from(col(|i| format!("row {i} é"))))),
        ("flag", Arc::new(BooleanArray::from(col(|i| i % 2 == 0)))),
        ("i8", Arc::new(Int8Array::from(col(|i| -(i as i8))))),
        ("i16", Arc::new(Int16Array::from(col(|i| -300 * i as i16)))),
        ("i32", Arc::new(Int32Array::from(col(|i| -70000 * i as i32)))),
        ("u8", Arc::new(UInt8Array::from(col(|i| 250 + i as u8)))),
        ("u16", Arc::new(UInt16Array::from(col(|i| 65530 + i as u16)))),
        ("u32", Arc::new(UInt32Array::from(col(|i| 4_000_000_000 + i as u32)))),
        ("u64", Arc::new(UInt64Array::from(col(|i| u64::MAX - i as u64)))),
        ("f32", Arc::new(Float32Array::from(col(|i| i as f32 * 1.5)))),
        ("large", Arc::new(LargeStringArray::from(col(|i| "L".repeat(i))))),
        ("bin", Arc::new(BinaryArray::from_iter(col(|i| (0..i as u8).collect::<Vec<u8>>())))),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(col(|i| 1_700_000_000_000_000 + i as i64))),
        ),
        (
            "ts_utc",
            Arc::new(
                TimestampMillisecondArray::from(col(|i| 1_700_000_000_000 + i as i64))
                    .with_timezone("UTC"),
            ),
        ),
        ("date", Arc::new(Date32Array::from(col(|i| 19000 + i as i32)))),
        (
            "dec",
            Arc::new(
                Decimal128Array::from(col(|i| i as i128 * 10100 + 25))
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        ("list", Arc::new(list.finish())),
        ("struct", Arc::new(strukt)),
        ("dict", Arc::new(dict)),
    ])
    .unwrap()
}

/// `reference()` of `tests/interop/tables/arrow_peer.mjs`.
pub(crate) fn node_reference_batch() -> RecordBatch {
    let dict: DictionaryArray<Int32Type> = col(|i| ["red", "green"][i % 2]).into_iter().collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int32Array::from(col(|i| i as i32 * 7 - 3))) as ArrayRef),
        ("big", Arc::new(Int64Array::from(col(|i| i as i64 * 10_000_000_000)))),
        ("x", Arc::new(Float64Array::from(col(|i| i as f64 / 8.0)))),
        ("name", Arc::new(StringArray::from(col(|i| format!("node {i} ü"))))),
        ("flag", Arc::new(BooleanArray::from(col(|i| i % 2 == 0)))),
        ("tag", Arc::new(dict)),
    ])
    .unwrap()
}

/// Compares `got` with `want` column by column (by name), cell by cell.
pub(crate) fn assert_same_cells(got: &RecordBatch, want: &RecordBatch) {
    assert_eq!(got.num_rows(), want.num_rows(), "row count");
    for (field, want_col) in want.schema().fields().iter().zip(want.columns()) {
        let got_col = got
            .column_by_name(field.name())
            .unwrap_or_else(|| panic!("column {} missing", field.name()));
        assert_eq!(got_col.data_type(), want_col.data_type(), "type of column {}", field.name());
        for row in 0..want.num_rows() {
            assert_eq!(
                got_col.slice(row, 1).as_ref(),
                want_col.slice(row, 1).as_ref(),
                "column {} row {row}",
                field.name()
            );
        }
    }
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const SETUP: &str = "run `cargo xtask setup` to install the interop tools";

/// The venv's Python, or a failure saying how to get it.
pub(crate) fn python() -> Command {
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: {SETUP}", python.display());
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/interop/tables/arrow_peer.py"));
    cmd
}

/// Node with the apache-arrow package of `tests/interop/tables`.
pub(crate) fn node() -> Command {
    let modules = root().join("tests/interop/tables/node_modules/apache-arrow");
    assert!(
        modules.is_dir(),
        "{} is missing: {SETUP} (npm ci --prefix tests/interop/tables)",
        modules.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/interop/tables/arrow_peer.mjs"));
    cmd
}

/// Runs a peer script, failing with its output unless it exits 0;
/// returns its standard output.
pub(crate) fn run(mut cmd: Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}: {SETUP}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
