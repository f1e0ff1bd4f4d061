#!/usr/bin/env python3
"""Replays Julia reference envelopes over NATS, byte for byte.

    python3 replay.py --server nats://127.0.0.1:4222 --subject S [--subject S2 ...] \
        --fileserver http://127.0.0.1:8080 reference/text.json [more files ...]

Each file's bytes are published unchanged to every subject. A file with a `<kind>.replay.json`
sidecar has link payloads: the placeholder URL in it is replaced, for each publish, by a fresh
one-shot upload of the payload's bytes (regenerated from the case), so every receiver gets a live
link; nothing else in the file changes. The token http://FILESERVER (used by ../crafted) becomes the
file server's URL. Prints, per publish, the envelope text it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import nats  # noqa: E402

import msghandler  # noqa: E402
from canonical import xorshift_bytes  # noqa: E402


def link_bytes(spec: dict) -> bytes:
    if "generated" in spec:
        g = spec["generated"]
        return xorshift_bytes(int(g["n"]), int(g.get("seed", 1)))
    return base64.b64decode(spec["value"])


async def run(a) -> int:
    nc = await nats.connect(a.server)
    try:
        for path in a.files:
            with open(path, "rb") as f:
                body = f.read()
            side = path[: -len(".json")] + ".replay.json"
            links = {}
            if os.path.exists(side):
                with open(side, encoding="utf-8") as f:
                    links = json.load(f)["links"]
            for subject in a.subjects:
                out = body.replace(b"http://FILESERVER", a.fileserver.rstrip("/").encode())  # token used by ../crafted
                for placeholder, spec in links.items():
                    name = placeholder.rsplit("/", 1)[-1]
                    res = await msghandler.plik_oneshot_upload(a.fileserver, name, link_bytes(spec))
                    out = out.replace(placeholder.encode(), res["url"].encode())
                await nc.publish(subject, out)
                await nc.flush()
                sys.stdout.write(out.decode("utf-8") + "\n")
    finally:
        await nc.drain()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description="replay Julia reference envelopes over NATS")
    ap.add_argument("--server", required=True)
    ap.add_argument("--subject", dest="subjects", action="append", required=True)
    ap.add_argument("--fileserver", default="http://127.0.0.1:8080")
    ap.add_argument("files", nargs="+")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
