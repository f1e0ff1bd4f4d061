#!/usr/bin/env python3
"""Send + receive throughput of the Python peer, for `cargo xtask bench`.

  bench.py --server URL --size BYTES --count N [--type text|binary]

One connection publishes N envelopes built by the peer's own `smartpack` (is_publish=False, then
one `publish` each: smartpack's own publish flushes, a round trip per message, which would measure
the flush and not the peer); another connection subscribes and runs `smartunpack` on every
message. Prints one JSON line: {"msgs_per_s": ..., "payload_mb_per_s": ..., "received": ...},
timed from the first publish to the last message decoded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nats  # noqa: E402

import msghandler  # noqa: E402


async def run(server: str, size: int, count: int, kind: str) -> dict:
    subject = "bench.python"
    if kind == "text":
        value = "x" * size
    else:
        value = bytes((i * 2654435761 >> 13) & 0xFF for i in range(size))
    data = [("message" if kind == "text" else "blob", value, kind)]
    # Large queues: the subscriber may fall behind the publisher; the bench counts what arrives.
    rx = await nats.connect(server, pending_size=1 << 30)
    tx = await nats.connect(server)
    got = 0
    done = asyncio.get_running_loop().create_future()

    async def on_message(msg):
        nonlocal got
        env = await msghandler.smartunpack(msg)
        assert env["payloads"][0][0] == data[0][0]
        got += 1
        if got == count and not done.done():
            done.set_result(None)

    await rx.subscribe(subject, cb=on_message, pending_msgs_limit=-1, pending_bytes_limit=-1)
    await rx.flush()
    started = time.perf_counter()
    for _ in range(count):
        _, envelope = await msghandler.smartpack(subject, data, is_publish=False, broker_url=server)
        await tx.publish(subject, envelope.encode("utf-8"))
    await tx.flush()
    try:
        await asyncio.wait_for(done, timeout=60)
    except asyncio.TimeoutError:
        pass
    elapsed = time.perf_counter() - started
    await tx.close()
    await rx.close()
    return {
        "msgs_per_s": got / elapsed,
        "payload_mb_per_s": got * size / elapsed / 1e6,
        "received": got,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--type", default="text", choices=["text", "binary"])
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.server, a.size, a.count, a.type))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
