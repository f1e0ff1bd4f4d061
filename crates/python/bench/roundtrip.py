#!/usr/bin/env python3
"""One side of the package's benchmark against the seed peer, for `cargo xtask bench`.

  roundtrip.py --impl package|seed --case small|big|link --count N [--fileserver URL]

Runs N rounds of ``smartpack(subject, data, is_publish=False)`` then ``smartunpack`` of the JSON it
returned (as a message with ``.data``, as nats-py hands it over), with ``--impl``'s functions:
``package`` is ``natsbridge`` (the package under test), ``seed`` the seed-transcribed Python peer
(``tests/interop/seed/python/msghandler_seed.py``). Cases: ``small``, one 128-byte text payload;
``big``, one 400,000-byte binary payload (direct: under the 500 KB threshold); ``link``, one 64 MiB
binary payload, uploaded to the Plik-compatible server at ``--fileserver`` and downloaded back.

Every round's result is checked against what was sent. A few untimed rounds first (imports, first
connections). Prints one JSON line: ``{"msgs_per_s": ..., "peak_rss_mb": ...}``, the peak RSS being
this process's (``ru_maxrss``) over the whole run, so each side runs in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
SIZES = {"small": 128, "big": 400_000, "link": 64 << 20}


class Message:
    """What a nats-py subscription hands over, as far as smartunpack reads it."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def calls(impl: str):
    if impl == "package":
        import natsbridge as m
    else:
        sys.path.insert(0, os.path.join(ROOT, "tests", "interop", "seed", "python"))
        import msghandler_seed as m
    return m.smartpack, m.smartunpack


def payload(case: str):
    size = SIZES[case]
    if case == "small":
        return [("message", "x" * size, "text")]
    # The same bytes on both sides; repeated so 64 MiB takes no time to make.
    block = bytes((i * 2654435761 >> 13) & 0xFF for i in range(65536))
    return [("blob", (block * (size // len(block) + 1))[:size], "binary")]


async def run(impl: str, case: str, count: int, fileserver: str) -> dict:
    smartpack, smartunpack = calls(impl)
    data = payload(case)
    expected = data[0][1]

    async def one_round() -> None:
        _, env_json_str = await smartpack("bench.python", data, fileserver_url=fileserver, is_publish=False)
        env = await smartunpack(Message(env_json_str.encode("utf-8")))
        (dataname, value, _), = env["payloads"]
        if dataname != data[0][0] or len(value) != len(expected) or value[:64] != expected[:64]:
            raise SystemExit(f"{impl}: the round trip changed the payload")

    for _ in range(1 if case == "link" else max(count // 20, 3)):
        await one_round()
    started = time.perf_counter()
    for _ in range(count):
        await one_round()
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"msgs_per_s": count / elapsed, "peak_rss_mb": peak / 1024}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--impl", required=True, choices=["package", "seed"])
    p.add_argument("--case", required=True, choices=sorted(SIZES))
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--fileserver", default="http://127.0.0.1:8080")
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.impl, a.case, a.count, a.fileserver))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
