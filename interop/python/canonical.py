"""Canonical value digests for the interop matrix (see interop/README.md, "Digests").

Every peer driver (Python, Node, browser, and the Rust CLI) computes the same
`value_digest` from the value it decoded, so two peers agree exactly when they
decoded the same value. This file is the Python definition; interop/node/canonical.mjs
is the JavaScript one. Keep them in step with the README.
"""

from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal
from typing import Any

BINARY_KINDS = ("image", "audio", "video", "binary")
_INT_EXACT = 2**53


def sha256_hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def canon_number(x: Any) -> str:
    """Canonical text of a JSON/table number (README: "numbers")."""
    if isinstance(x, bool):
        raise TypeError("bool is not a number here")
    if isinstance(x, int) and abs(x) <= _INT_EXACT:
        return str(x)
    f = float(x)  # beyond 2^53 every peer compares the nearest float64
    if math.isnan(f):
        return "null"
    if math.isinf(f):
        return '"Infinity"' if f > 0 else '"-Infinity"'
    if f == int(f) and abs(f) <= _INT_EXACT:
        return str(int(f))
    # shortest round-trip digits, scientific: <d>[.<digits>]e<exp>
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(str(d) for d in digits)
    e10 = exp + len(ds) - 1
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return ("-" if sign else "") + mant + "e" + str(e10)


def _canon_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def canon_json(v: Any) -> str:
    """Canonical JSON: sorted keys (code point order), no spaces, UTF-8 as is, numbers per canon_number."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    # numpy / pandas scalars
    if hasattr(v, "item") and not isinstance(v, (str, bytes, list, dict)) and type(v).__module__.startswith("numpy"):
        return canon_json(v.item())
    if isinstance(v, (int, float)):
        return canon_number(v)
    if isinstance(v, str):
        return _canon_str(v)
    if isinstance(v, dict):
        items = sorted(((str(k), val) for k, val in v.items()), key=lambda kv: kv[0])
        return "{" + ",".join(_canon_str(k) + ":" + canon_json(val) for k, val in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(canon_json(x) for x in v) + "]"
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
    return canon_json({"columns": list(columns), "rows": [[_cell(c) for c in r] for r in rows]})


def table_digest_from_rows(rows: list[dict]) -> str:
    """Expected digest of a table given as row objects (columns = keys of the first row, in order)."""
    cols = list(rows[0].keys()) if rows else []
    return sha256_hex(table_canonical(cols, [[r.get(c) for c in cols] for r in rows]).encode())


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
    # pandas DataFrame
    cols = [str(c) for c in value.columns]
    rows = [list(t) for t in value.itertuples(index=False, name=None)]
    return sha256_hex(table_canonical(cols, rows).encode())


def value_digest(payload_type: str, value: Any) -> str:
    if payload_type in BINARY_KINDS:
        return sha256_hex(bytes(value))
    if payload_type == "text":
        return sha256_hex(value.encode("utf-8"))
    if payload_type in ("dictionary", "jsontable"):
        return sha256_hex(canon_json(value).encode("utf-8"))
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
