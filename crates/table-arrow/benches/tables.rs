//! 1,000,000 rows x (int64, float64, utf8): Arrow IPC stream encode and
//! decode, against pyarrow doing the same in the same run, and the bytes
//! allocated by a decode (zero-copy: a constant, whatever the table size).
//!
//! Run: `cargo bench -p natsbridge-table-arrow --bench tables [-- --quick]`.
//! Rounds alternate: this process encodes and decodes the table several
//! times, then `tests/interop/tables/arrow_peer.py bench` does the same with
//! pyarrow; each round gives a ratio (pyarrow's median time over ours).
//! Prints a markdown section, also written to `$NATSBRIDGE_BENCH_OUT` (and
//! ratio lines to `$NATSBRIDGE_BENCH_RATIOS`) when set, as `cargo xtask
//! bench` does. Without `--bench` (as `cargo test --benches` runs it) it
//! does one small round and leaves pyarrow out.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Instant;

use natsbridge_bench_stats::{Stats, median, stats};
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

/// The same data as `bench()` in tests/interop/tables/arrow_peer.py.
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

/// pyarrow's median encode, decode and decode-plus-full-validation seconds
/// over `iterations`.
fn pyarrow(rows: usize, iterations: usize) -> (f64, f64, f64, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/interop/tables/arrow_peer.py"))
        .args(["bench", &rows.to_string(), &iterations.to_string()])
        .output()
        .expect("the venv's python (run `cargo xtask setup`)");
    assert!(out.status.success(), "pyarrow bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = line["pyarrow"].as_str().unwrap_or("?").to_owned();
    let seconds = |key: &str| line[key].as_f64().unwrap();
    (seconds("encode_s"), seconds("decode_s"), seconds("decode_validated_s"), version)
}

/// Our median encode and decode seconds over `iterations`.
fn ours(batch: &RecordBatch, iterations: usize) -> (f64, f64) {
    let (mut enc, mut dec) = (vec![], vec![]);
    for _ in 0..iterations {
        let t = Instant::now();
        let bytes = write_ipc(black_box(std::slice::from_ref(batch))).unwrap();
        enc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let table = read_ipc(black_box(&bytes)).unwrap();
        dec.push(t.elapsed().as_secs_f64());
        black_box(table);
    }
    (median(&mut enc), median(&mut dec))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let (rows, rounds, iterations) = match (smoke, quick) {
        (true, _) => (10_000, 1, 2),
        (false, true) => (ROWS, 3, 7),
        (false, false) => (ROWS, 7, 15),
    };
    let batch = table(rows);
    let bytes = write_ipc(std::slice::from_ref(&batch)).unwrap();
    let allocations: Vec<(usize, usize)> =
        [10_000, 100_000, 1_000_000].into_iter().map(|r| (r, decode_allocations(r))).collect();
    if smoke {
        black_box(ours(&batch, iterations));
        println!("smoke run: {} bytes, decode allocations {allocations:?}", bytes.len());
        return;
    }
    let (mut enc, mut dec, mut py_enc, mut py_dec) = (vec![], vec![], vec![], vec![]);
    let (mut r_enc, mut r_dec, mut r_both) = (vec![], vec![], vec![]);
    let (mut py_val, mut r_val, mut r_both_val) = (vec![], vec![], vec![]);
    let mut version = String::new();
    for _ in 0..rounds {
        let (e, d) = ours(&batch, iterations);
        let (pe, pd, pv, v) = pyarrow(rows, iterations);
        version = v;
        r_enc.push(pe / e);
        r_dec.push(pd / d);
        r_both.push((pe + pd) / (e + d));
        r_val.push(pv / d);
        r_both_val.push((pe + pv) / (e + d));
        py_val.push(pv * 1e3);
        enc.push(e * 1e3);
        dec.push(d * 1e3);
        py_enc.push(pe * 1e3);
        py_dec.push(pd * 1e3);
    }
    let ms = |s: &Stats| format!("{:.2} ({:.2}-{:.2})", s.median, s.min, s.max);
    let x = |s: &Stats| format!("{:.2}x ({:.2}-{:.2})", s.median, s.min, s.max);
    let (r_enc, r_dec, r_both) = (stats(r_enc), stats(r_dec), stats(r_both));
    let (r_val, r_both_val) = (stats(r_val), stats(r_both_val));
    let mut md = format!(
        "## Arrow tables: 1M rows, against pyarrow\n\n\
         `cargo bench -p natsbridge-table-arrow --bench tables`: {rows} rows of (int64, float64,\n\
         utf8), {} bytes as an Arrow IPC stream; `write_ipc` and `read_ipc` (validation on)\n\
         against pyarrow {version} (`ipc.new_stream` / `open_stream().read_all()`), {rounds}\n\
         rounds alternating, each the median of {iterations} runs; the ratio is pyarrow's time over\n\
         ours (above 1: faster than pyarrow).\n\n\
         | step | natsbridge ms | pyarrow ms | speed vs pyarrow | target |\n|---|---|---|---|---|\n\
         | encode | {} | {} | {} | - |\n\
         | decode | {} | {} | {} | - |\n\
         | encode + decode | - | - | {} | >= 1x |\n\
         | decode, both validating fully | {} | {} | {} | - |\n\
         | encode + decode, both validating fully | - | - | {} | >= 1x |\n\n\
         `read_all()` checks the structure only; `read_ipc` always runs Arrow's full\n\
         validation (offsets in bounds and increasing, UTF-8), because the bytes come\n\
         from the network. The last two rows time pyarrow doing the same work\n\
         (`read_all()` then `validate(full=True)`).\n\n\
         Bytes allocated by one `read_ipc` (zero-copy: constant in the row count):",
        bytes.len(),
        ms(&stats(enc)),
        ms(&stats(py_enc)),
        x(&r_enc),
        ms(&stats(dec.clone())),
        ms(&stats(py_dec)),
        x(&r_dec),
        x(&r_both),
        ms(&stats(dec.clone())),
        ms(&stats(py_val)),
        x(&r_val),
        x(&r_both_val),
    );
    for (r, a) in allocations {
        md += &format!(" {r} rows, {a} B;");
    }
    md.pop();
    md += ".\n";
    println!("{md}");
    let ratios = format!(
        "1M-row Arrow encode + decode vs pyarrow\t{}\t{}\t{}\t1\t>=\n\
         1M-row Arrow encode + decode vs pyarrow, both validating\t{}\t{}\t{}\t1\t>=\n",
        r_both.median, r_both.min, r_both.max, r_both_val.median, r_both_val.min, r_both_val.max
    );
    if let Some(path) = std::env::var_os("NATSBRIDGE_BENCH_OUT") {
        std::fs::write(path, md).unwrap();
    }
    if let Some(path) = std::env::var_os("NATSBRIDGE_BENCH_RATIOS") {
        std::fs::write(path, ratios).unwrap();
    }
}
