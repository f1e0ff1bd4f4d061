"""Canonical value digests for the interop matrix (see tests/interop/README.md, "Digests").

Every peer driver (Python, Node, browser, and the Rust CLI) computes the same
`value_digest` from the value it decoded, so two peers agree exactly when they
decoded the same value. This file is the Python definition; tests/interop/node/canonical.mjs
is the JavaScript one. Keep them in step with the README.

Numbers have two models: "typed" (an int is digits, a float always the float form, so 88 and
88.0 differ: Python, Rust, MicroPython and every Arrow cell) and "js" (every integral number up to
2^53 is digits: what JSON.parse leaves a JavaScript peer). A peer computes its own digests in its
own model; the runner expects "js" for a dictionary/jsontable cell when either end is a JS peer.
"""

from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal
from typing import Any

BINARY_KINDS = ("image", "audio", "video", "binary")
_INT_EXACT = 2**53
MODELS = ("typed", "js")  # README "Digests": which peers can tell 88 from 88.0


def sha256_hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def canon_float(f: float) -> str:
    """The float form: shortest round-trip digits, scientific `D[.DDD]e[-]X` (88.0 -> 8.8e1, 1.0 -> 1e0).

    NaN -> null, infinities -> the strings "Infinity"/"-Infinity", either zero -> 0e0."""
    f = float(f)
    if math.isnan(f):
        return "null"
    if math.isinf(f):
        return '"Infinity"' if f > 0 else '"-Infinity"'
    if f == 0:
        return "0e0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(str(d) for d in digits)
    e10 = exp + len(ds) - 1
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return ("-" if sign else "") + mant + "e" + str(e10)


def canon_number(x: Any, model: str = "typed") -> str:
    """Canonical text of a JSON/table number (README: "Digests", numbers).

    model "typed" (Python, Rust, Arrow cells): an int is digits (|x| <= 2^53), a float is always the
    float form, integral or not (88.0 -> 8.8e1). model "js" (JSON.parse cannot tell 88 from 88.0):
    every integral number with |x| <= 2^53 is digits, whatever its type (88.0 -> 88).
    Beyond 2^53 both take the nearest float64's float form."""
    if isinstance(x, bool):
        raise TypeError("bool is not a number here")
    if model not in MODELS:
        raise ValueError(f"unknown number model {model!r}")
    if isinstance(x, int) and abs(x) <= _INT_EXACT:
        return str(x)
    f = float(x)  # beyond 2^53 every peer compares the nearest float64
    if model == "js" and math.isfinite(f) and f == int(f) and abs(f) <= _INT_EXACT:
        return str(int(f))
    return canon_float(f)


def _canon_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def canon_json(v: Any, model: str = "typed") -> str:
    """Canonical JSON: sorted keys (code point order), no spaces, UTF-8 as is, numbers per canon_number(model)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    # numpy / pandas scalars
    if hasattr(v, "item") and not isinstance(v, (str, bytes, list, dict)) and type(v).__module__.startswith("numpy"):
        return canon_json(v.item(), model)
    if isinstance(v, (int, float)):
        return canon_number(v, model)
    if isinstance(v, str):
        return _canon_str(v)
    if isinstance(v, dict):
        items = sorted(((str(k), val) for k, val in v.items()), key=lambda kv: kv[0])
        return "{" + ",".join(_canon_str(k) + ":" + canon_json(val, model) for k, val in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(canon_json(x, model) for x in v) + "]"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _canon_str(bytes(v).hex())
    try:
        import pandas as pd  # noqa: F401

        if v is pd.NA or v is pd.NaT:
            return "null"
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"no canonical JSON for {type(v).__name__}")


def _cell(v: Any) -> Any:
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    if hasattr(v, "item") and type(v).__module__.startswith("numpy"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def table_canonical(columns: list[str], rows: list[list[Any]]) -> str:
    """Table cells follow their column's type (typed model): a Float64 cell is a Python float here."""
    return canon_json({"columns": list(columns), "rows": [[_cell(c) for c in r] for r in rows]}, "typed")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def table_digest_from_rows(rows: list[dict]) -> str:
    """Expected digest of a table given as row objects (columns = keys of the first row, in order).

    Column types as a sender builds them (README "Spec files"): a column of numbers with any float
    among them (88.0 counts) is Float64, so all its cells take the float form; all-int is Int64."""
    cols = list(rows[0].keys()) if rows else []
    grid = [[r.get(c) for c in cols] for r in rows]
    for j in range(len(cols)):
        present = [row[j] for row in grid if row[j] is not None]
        if present and all(_is_num(v) for v in present) and any(isinstance(v, float) for v in present):
            for row in grid:
                if row[j] is not None:
                    row[j] = float(row[j])
    return sha256_hex(table_canonical(cols, grid).encode())


def table_digest(value: Any) -> str:
    """Digest of a decoded table: pandas.DataFrame, pyarrow.Table or list of row dicts."""
    try:
        import pyarrow as pa

        if isinstance(value, pa.Table):
            cols = value.column_names
            data = [value.column(i).to_pylist() for i in range(len(cols))]
            rows = [[data[c][r] for c in range(len(cols))] for r in range(value.num_rows)]
            return sha256_hex(table_canonical(cols, rows).encode())
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, list):
        return table_digest_from_rows(value)
    # pandas DataFrame (an Int64 column with nulls arrives as float64 + NaN: its cells digest as floats)
    cols = [str(c) for c in value.columns]
    rows = [list(t) for t in value.itertuples(index=False, name=None)]
    return sha256_hex(table_canonical(cols, rows).encode())


def value_digest(payload_type: str, value: Any, model: str = "typed") -> str:
    """`value_digest` of a decoded value. `model` applies to dictionary/jsontable numbers only
    ("typed": this Python peer's own; "js": what a JavaScript peer computes); tables are always typed."""
    if payload_type in BINARY_KINDS:
        return sha256_hex(bytes(value))
    if payload_type == "text":
        return sha256_hex(value.encode("utf-8"))
    if payload_type in ("dictionary", "jsontable"):
        return sha256_hex(canon_json(value, model).encode("utf-8"))
    if payload_type in ("arrowtable", "table"):
        return table_digest(value)
    raise ValueError(f"unknown payload_type {payload_type!r}")


def xorshift_bytes(n: int, seed: int) -> bytes:
    """The deterministic generator of the spec files' `generated: {n, seed}` (README)."""
    x = seed & 0xFFFFFFFF or 0x9E3779B9
    out = bytearray()
    words = (n + 3) // 4
    import struct

    pack = struct.Struct("<I").pack
    for _ in range(words):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += pack(x)
    return bytes(out[:n])
