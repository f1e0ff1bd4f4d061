"""pyarrow/pandas side of natsbridge-table-arrow's live interop tests.

Usage:
  arrow_peer.py write stream|file PATH    write the reference table
  arrow_peer.py check PATH                read PATH (stream or file) and compare it
                                          cell by cell with the reference table;
                                          prints JSON, exits 1 on a mismatch
  arrow_peer.py julia PATH                write the Arrow.jl-style reference stream
  arrow_peer.py bench ROWS ROUNDS         time IPC stream write/read; prints JSON
The reference table must match `reference_batch()` in crates/table-arrow/tests/util.rs.
"""
import datetime
import decimal
import json
import sys
import time

import pandas as pd
import pyarrow as pa

N = 5


def nth(i, v):
    """Every third row (from the second) is null."""
    return None if i % 3 == 1 else v


def reference_table():
    df = pd.DataFrame({
        "i64": pd.array([nth(i, i * 1000 - 2) for i in range(N)], dtype="Int64"),
        "f64": [nth(i, i / 4) for i in range(N)],
        "utf8": [nth(i, f"row {i} é") for i in range(N)],
        "flag": pd.array([nth(i, i % 2 == 0) for i in range(N)], dtype="boolean"),
    })
    t = pa.Table.from_pandas(df, preserve_index=False)
    assert b"pandas" in t.schema.metadata
    extra = {
        "i8": pa.array([nth(i, -i) for i in range(N)], pa.int8()),
        "i16": pa.array([nth(i, -300 * i) for i in range(N)], pa.int16()),
        "i32": pa.array([nth(i, -70000 * i) for i in range(N)], pa.int32()),
        "u8": pa.array([nth(i, 250 + i) for i in range(N)], pa.uint8()),
        "u16": pa.array([nth(i, 65530 + i) for i in range(N)], pa.uint16()),
        "u32": pa.array([nth(i, 4_000_000_000 + i) for i in range(N)], pa.uint32()),
        "u64": pa.array([nth(i, 2**64 - 1 - i) for i in range(N)], pa.uint64()),
        "f32": pa.array([nth(i, i * 1.5) for i in range(N)], pa.float32()),
        "large": pa.array([nth(i, "L" * i) for i in range(N)], pa.large_string()),
        "bin": pa.array([nth(i, bytes(range(i))) for i in range(N)], pa.binary()),
        "ts": pa.array([nth(i, 1_700_000_000_000_000 + i) for i in range(N)], pa.timestamp("us")),
        "ts_utc": pa.array([nth(i, 1_700_000_000_000 + i) for i in range(N)], pa.timestamp("ms", tz="UTC")),
        "date": pa.array([nth(i, 19000 + i) for i in range(N)], pa.date32()),
        "dec": pa.array([nth(i, decimal.Decimal(f"{i * 101}.25")) for i in range(N)], pa.decimal128(10, 2)),
        "list": pa.array([nth(i, list(range(i))) for i in range(N)], pa.list_(pa.int64())),
        "struct": pa.array([nth(i, {"a": i, "b": str(i)}) for i in range(N)],
                           pa.struct([("a", pa.int64()), ("b", pa.string())])),
        "dict": pa.array([nth(i, ["red", "green"][i % 2]) for i in range(N)], pa.string()).dictionary_encode(),
    }
    for name, arr in extra.items():
        t = t.append_column(name, arr)
    return t


def write(fmt, path, table):
    with pa.OSFile(path, "wb") as sink:
        opener = pa.ipc.new_stream if fmt == "stream" else pa.ipc.new_file
        with opener(sink, table.schema) as w:
            w.write_table(table)


def read_any(path):
    data = open(path, "rb").read()
    buf = pa.py_buffer(data)
    if data[:6] == b"ARROW1":
        return pa.ipc.open_file(buf).read_all()
    return pa.ipc.open_stream(buf).read_all()


def check(path):
    got = read_any(path)
    ref = reference_table()
    mismatches = []
    if got.schema.names != ref.schema.names:
        mismatches.append(f"columns {got.schema.names} != {ref.schema.names}")
    for name in ref.schema.names:
        if name not in got.schema.names:
            continue
        g, r = got.column(name), ref.column(name)
        if g.type != r.type:
            mismatches.append(f"{name}: type {g.type} != {r.type}")
            continue
        for i, (a, b) in enumerate(zip(g.to_pylist(), r.to_pylist())):
            if a != b:
                mismatches.append(f"{name}[{i}]: {a!r} != {b!r}")
    meta = {k.decode(): v.decode() for k, v in (got.schema.metadata or {}).items()}
    print(json.dumps({"rows": got.num_rows, "mismatches": mismatches, "metadata_keys": sorted(meta)}))
    return 1 if mismatches else 0


def julia(path):
    # What Arrow.jl's `Arrow.write(io, tbl)` emits (stream format by default):
    # see crates/table-arrow/tests/fixtures/README.md.
    t = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": pa.array(["a", None, "c"], pa.string()),
        "score": pa.array([0.5, 1.5, None], pa.float64()),
        "when": pa.array([1_700_000_000_000, None, 1_700_000_000_002], pa.timestamp("ms")),
        "sym": pa.array(["x", "y", "x"], pa.string()).dictionary_encode(),
    })
    t = t.replace_schema_metadata({"JULIA_ARROW_NOTE": "written by the natsbridge fixture generator"})
    fields = []
    for f in t.schema:
        if f.name == "sym":
            f = f.with_metadata({"ARROW:extension:name": "JuliaLang.Symbol", "ARROW:extension:metadata": ""})
        fields.append(f)
    t = pa.Table.from_arrays(t.columns, schema=pa.schema(fields, metadata=t.schema.metadata))
    write("stream", path, t)


def bench(rows, rounds):
    t = pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "x": pa.array([i * 0.5 for i in range(rows)], pa.float64()),
        "name": pa.array([f"name-{i}" for i in range(rows)], pa.string()),
    })
    enc, dec, val, size = [], [], [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, t.schema) as w:
            w.write_table(t)
        buf = sink.getvalue()
        t1 = time.perf_counter()
        back = pa.ipc.open_stream(buf).read_all()
        t2 = time.perf_counter()
        # read_all() checks structure only; full validation (offsets in
        # bounds and increasing, UTF-8) is what the Rust reader always does.
        back.validate(full=True)
        t3 = time.perf_counter()
        assert back.num_rows == rows
        enc.append(t1 - t0)
        dec.append(t2 - t1)
        val.append(t3 - t1)
        size = buf.size
    enc.sort()
    dec.sort()
    val.sort()
    print(json.dumps({"rows": rows, "bytes": size, "encode_s": enc[len(enc) // 2],
                      "decode_s": dec[len(dec) // 2],
                      "decode_validated_s": val[len(val) // 2], "pyarrow": pa.__version__}))
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "write":
        write(argv[2], argv[3], reference_table())
        return 0
    if cmd == "check":
        return check(argv[2])
    if cmd == "julia":
        julia(argv[2])
        return 0
    if cmd == "bench":
        return bench(int(argv[2]), int(argv[3]))
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
