#!/usr/bin/env python3
"""Writes tests/interop/julia/reference/*.json: envelopes byte-for-byte as the Julia peer of the seeds
(NATSBridge.jl / msghandler.jl, JSON3 + Arrow.jl + Dates) would emit them. Julia cannot be
installed here, so this script imitates it; see README.md for what is imitated and how.

    python3 make_reference.py          # rewrites reference/ from ../cases/*.json

Deterministic: fixed ids and timestamps, so the committed files only change when this script does.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import sys
import uuid
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from canonical import xorshift_bytes  # noqa: E402

CASES = os.path.join(HERE, "..", "cases")
OUT = os.path.join(HERE, "reference")
BINARY = ("image", "audio", "video", "binary")
THRESHOLD = 500_000  # msghandler.jl default
OLDER_THRESHOLD = 1_000_000  # NATSBridge.jl default
OLDER_KINDS = ("table", "binary_near_max")  # written in the older seed's form (NATSBridge)
LINK_PLACEHOLDER = "http://localhost:8080/file/JULIAUPLOADID0001/JULIAFILEID00001/{name}"

# ----------------------------------------------------------------------------- JSON3.write imitation


def _julia_float(f: float) -> str:
    """Base.string(::Float64) / Ryu.writeshortest as JSON3 uses it: 42.5, 88.0, 1.0e20, 1.5e-7, -0.001."""
    if f == 0:
        return "-0.0" if math.copysign(1, f) < 0 else "0.0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e10 = exp + len(ds) - 1  # decimal exponent of the first digit
    s = "-" if sign else ""
    if -5 < e10 < 6:  # plain decimal, always with a fraction part
        if e10 >= 0:
            ip = ds[: e10 + 1].ljust(e10 + 1, "0")
            fp = ds[e10 + 1 :] or "0"
        else:
            ip, fp = "0", "0" * (-e10 - 1) + ds
        return f"{s}{ip}.{fp}"
    mant = ds[0] + "." + (ds[1:] or "0")
    return f"{s}{mant}e{e10}"


def _json3_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif o <= 0x1F or o == 0x7F:
            out.append("\\u" + format(o, "04x"))
        else:
            out.append(ch)  # '/' and all non-ASCII stay as they are (UTF-8)
    out.append('"')
    return "".join(out)


def json3_write(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _julia_float(v)
    if isinstance(v, str):
        return _json3_str(v)
    if isinstance(v, dict):
        return "{" + ",".join(_json3_str(str(k)) + ":" + json3_write(x) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(json3_write(x) for x in v) + "]"
    raise TypeError(type(v))


# ----------------------------------------------------------------------------- payload bytes


def julia_dict_order(d: dict) -> dict:
    """A Julia Dict iterates in hash order, not insertion order: imitate with a fixed shuffle."""
    items = list(d.items())
    items = items[1::2] + items[0::2]
    return {k: (julia_dict_order(v) if isinstance(v, dict) else v) for k, v in items}


def arrow_stream_like_arrow_jl(rows: list[dict], file_format: bool = False) -> bytes:
    """Arrow IPC stream of a DataFrame as Arrow.write(io, df) makes it: Int64, Float64, Utf8 (not large),
    Bool; a column with `missing` is nullable; no pandas schema metadata. Made with pyarrow."""
    import pyarrow as pa

    cols = list(rows[0].keys())
    fields, arrays = [], []
    for c in cols:
        vals = [r.get(c) for r in rows]
        present = [v for v in vals if v is not None]
        if all(isinstance(v, bool) for v in present):
            t = pa.bool_()
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            t = pa.int64()
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            t = pa.float64()
            vals = [None if v is None else float(v) for v in vals]
        else:
            t = pa.string()
        fields.append(pa.field(c, t, nullable=any(v is None for v in vals)))
        arrays.append(pa.array(vals, type=t))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    sink = io.BytesIO()
    # Arrow.write(io, df) writes the stream format; Arrow.write("x.arrow", df) the file format (ARROW1...)
    with (pa.ipc.new_file if file_format else pa.ipc.new_stream)(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def payload_bytes(entry: dict) -> bytes:
    t = entry["type"]
    if "generated" in entry:
        g = entry["generated"]
        return xorshift_bytes(int(g["n"]), int(g.get("seed", 1)))
    v = entry["value"]
    if t in BINARY:
        return base64.b64decode(v)
    if t == "text":
        return v.encode("utf-8")
    if t == "dictionary":
        return json3_write(julia_dict_order(v)).encode("utf-8")
    if t == "jsontable":
        return json3_write(v).encode("utf-8")  # Vector{NamedTuple}: fields in order
    if t in ("arrowtable", "table"):
        return arrow_stream_like_arrow_jl(v, entry.get("arrow_ipc_format") == "file")
    raise ValueError(t)


# ----------------------------------------------------------------------------- envelopes

# Milliseconds of each file's Dates.now() (one per kind, in sorted kind order): every form
# string(::DateTime) writes, none / one / two / three digits, and leading zeros kept.
MILLIS = (0, 500, 370, 96, 123, 5, 40, 999, 0, 250, 7, 680, 100, 1, 548)


def julia_datetime_string(seconds: str, ms: int) -> str:
    """string(::DateTime), as Dates.now() gives it: local time, no zone designator; the milliseconds
    with their trailing zeros dropped (.37 not .370, .5), and no fraction at all when they are 0."""
    return seconds + ("." + f"{ms:03d}".rstrip("0") if ms else "")



def fixed_uuid(kind: str, what: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"natsbridge-interop-julia/{kind}/{what}"))


def envelope(kind: str, entries: list, older: bool, timestamp: str) -> tuple[str, dict]:
    payloads, replay = [], {}
    for i, e in enumerate(entries):
        raw = payload_bytes(e)
        t = e["type"]
        if older and t == "arrowtable":
            t = "table"
        if len(raw) < (OLDER_THRESHOLD if older else THRESHOLD):
            transport, encoding, data = "direct", "base64", base64.b64encode(raw).decode()
        else:
            transport, encoding, data = "link", "none", LINK_PLACEHOLDER.format(name=e["dataname"])
            replay[data] = {k: e[k] for k in ("generated", "value") if k in e} | {"type": e["type"]}
        payloads.append(
            {
                "id": fixed_uuid(kind, f"payload{i}"),
                "dataname": e["dataname"],
                "payload_type": t,
                "transport": transport,
                "encoding": encoding,
                "size": len(raw),
                "data": data,
            }
        )
    env = {
        "correlation_id": fixed_uuid(kind, "correlation"),
        "msg_id": fixed_uuid(kind, "msg"),
        "timestamp": timestamp,
        "send_to": f"/julia/{kind}",
        "msg_purpose": "chat",
        "sender_name": "NATSBridge" if older else "msghandler",
        "sender_id": fixed_uuid(kind, "sender"),
        "receiver_name": "",
        "receiver_id": "",
        "reply_to": "",
        "reply_to_msg_id": "",
        "broker_url": "nats://localhost:4222",
        "metadata": {},
        "payloads": payloads,
    }
    return json3_write(env), replay


def main():
    os.makedirs(OUT, exist_ok=True)
    kinds = sorted(f[:-5] for f in os.listdir(CASES) if f.endswith(".json"))
    for n, kind in enumerate(kinds):
        with open(os.path.join(CASES, f"{kind}.json"), encoding="utf-8") as f:
            entries = json.load(f)
        older = kind in OLDER_KINDS  # the older seed's type name, sender_name and 1 MB threshold
        ts = julia_datetime_string(f"2024-01-15T10:30:{n:02d}", MILLIS[n % len(MILLIS)])
        text, replay = envelope(kind, entries, older, ts)
        with open(os.path.join(OUT, f"{kind}.json"), "w", encoding="utf-8", newline="") as f:
            f.write(text)  # JSON3.write output, no trailing newline
        rp = os.path.join(OUT, f"{kind}.replay.json")
        if replay:
            with open(rp, "w", encoding="utf-8") as f:
                json.dump({"links": replay}, f, indent=1)
                f.write("\n")
        elif os.path.exists(rp):
            os.remove(rp)
        print(f"reference/{kind}.json  {len(text)} bytes{'  (+ replay sidecar)' if replay else ''}")


if __name__ == "__main__":
    main()
