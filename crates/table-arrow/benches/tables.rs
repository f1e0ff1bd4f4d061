//! 1,000,000 rows x (int64, float64, utf8): Arrow IPC stream encode and
//! decode, against pyarrow doing the same in the same run, and the bytes
//! allocated by a decode (zero-copy: a constant, whatever the table size).
//!
//! Run: `cargo bench -p natsbridge-table-arrow --bench tables`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use natsbridge_table_arrow::arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
use natsbridge_table_arrow::{Bytes, RecordBatch, read_ipc, write_ipc};

/// Counts the bytes the process allocates, to show decoding copies nothing.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROWS: usize = 1_000_000;

/// The same data as `bench()` in interop/tables/arrow_peer.py.
fn table(rows: usize) -> RecordBatch {
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from_iter_values(0..rows as i64)) as ArrayRef),
        ("x", Arc::new(Float64Array::from_iter_values((0..rows).map(|i| i as f64 * 0.5)))),
        ("name", Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("name-{i}"))))),
    ])
    .unwrap()
}

fn decode_allocations(rows: usize) -> usize {
    let bytes = Bytes::from(write_ipc(&[table(rows)]).unwrap().to_vec());
    let before = ALLOCATED.load(Ordering::Relaxed);
    let table = read_ipc(&bytes).unwrap();
    let after = ALLOCATED.load(Ordering::Relaxed);
    black_box(table);
    after - before
}

fn pyarrow() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("interop/tables/arrow_peer.py"))
        .args(["bench", &ROWS.to_string(), "15"])
        .output()
        .expect("the venv's python (run `cargo xtask setup`)");
    assert!(out.status.success(), "pyarrow bench failed: {}", String::from_utf8_lossy(&out.stderr));
    println!("pyarrow: {}", String::from_utf8_lossy(&out.stdout).trim());
}

fn bench(c: &mut Criterion) {
    let batch = table(ROWS);
    let bytes = write_ipc(std::slice::from_ref(&batch)).unwrap();
    println!("rust ipc stream bytes: {}", bytes.len());
    for rows in [10_000, 100_000, 1_000_000] {
        println!("decode allocations, {rows} rows: {} bytes", decode_allocations(rows));
    }
    pyarrow();

    let mut group = c.benchmark_group("table_ipc_1m");
    group.sample_size(20).throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| write_ipc(black_box(std::slice::from_ref(&batch))).unwrap())
    });
    group.bench_function("decode", |b| b.iter(|| read_ipc(black_box(&bytes)).unwrap()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
