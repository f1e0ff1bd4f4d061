#!/usr/bin/env python3
"""Writes the crafted envelopes (tests/interop/crafted/*.json) that test receive leniency and errors.

Each is published byte for byte (by julia/replay.py, which also swaps the token http://FILESERVER for
the live file server) to every receiver. expect.json says what each receiver must report: the same
value as a case of ../cases (lenient input), or an error whose text names the given word.
"""
import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from canonical import xorshift_bytes  # noqa: E402

raw = xorshift_bytes(1000, 14)  # = cases/binary_direct.json
b64 = base64.b64encode(raw).decode()
mime = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76)) + "\n"  # MIME / MicroPython binascii style


def base(**over):
    env = {
        "correlation_id": "6d3c1b9e-2a4f-4c1e-9d2b-7e5f0a1b2c3d",
        "msg_id": "0b9f8e7d-6c5b-4a39-8281-706f5e4d3c2b",
        "timestamp": "2024-01-15T10:30:00.123456789+05:30",
        "send_to": "crafted",
        "msg_purpose": "updateStatus",
        "sender_name": "crafted",
        "sender_id": "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
        "broker_url": "nats://localhost:4222",
        "payloads": [],
    }
    env.update(over)
    return env


files = {}
# lenient: MIME line breaks + trailing newline in base64, no metadata, missing optional strings, unknown keys
files["lenient_mime_base64"] = base(
    schema_version=1,
    payloads=[{"id": "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a", "dataname": "blob", "payload_type": "binary", "transport": "direct",
               "encoding": "base64", "size": 1000, "data": mime, "checksum": {"sha256": "x"}}],
)
# lenient: a device clock far off, no zone, no fraction; metadata holding an extension; payload without id/encoding
files["lenient_minimal_record"] = base(
    timestamp="1970-01-01T00:00:07", metadata={"natsbridge": {"ext": True}},
    payloads=[{"dataname": "message", "payload_type": "text", "transport": "direct", "size": 11, "data": base64.b64encode(b"Hello World").decode()}],
)
files["err_size_mismatch"] = base(payloads=[{"id": "x", "dataname": "message", "payload_type": "text", "transport": "direct", "encoding": "base64", "size": 12,
                                             "data": base64.b64encode(b"Hello World").decode()}])
files["err_missing_payloads"] = {k: v for k, v in base().items() if k != "payloads"}
files["err_missing_dataname"] = base(payloads=[{"id": "x", "payload_type": "text", "transport": "direct", "encoding": "base64", "size": 2, "data": "aGk="}])
files["err_bad_base64"] = base(payloads=[{"id": "x", "dataname": "m", "payload_type": "binary", "transport": "direct", "encoding": "base64", "size": 3, "data": "a$b!"}])
files["err_dead_link"] = base(payloads=[{"id": "x", "dataname": "gone", "payload_type": "binary", "transport": "link", "encoding": "none", "size": 10,
                                         "data": "http://FILESERVER/file/AAAAAAAAAAAAAAAA/BBBBBBBBBBBBBBBB/gone"}])

expect = {
    "lenient_mime_base64": {"case": "binary_direct"},
    "lenient_minimal_record": {"case": "text"},
    "err_size_mismatch": {"error_contains": "size"},
    "err_missing_payloads": {"error_contains": "payloads"},
    "err_missing_dataname": {"error_contains": "dataname"},
    "err_bad_base64": {"error_contains": "base64"},
    # a browser cannot send a known-client User-Agent, so Plik (and the stub) answer it with a redirect
    "err_dead_link": {"error_contains": ["404", "redirect"]},
}
for name, env in files.items():
    with open(os.path.join(HERE, f"{name}.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(env, ensure_ascii=False, separators=(",", ":")))
with open(os.path.join(HERE, "expect.json"), "w") as f:
    json.dump(expect, f, indent=1)
    f.write("\n")
print("\n".join(sorted(files)))
