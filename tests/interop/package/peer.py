#!/usr/bin/env python3
"""Driver of the natsbridge Python package (crates/python) in the interop matrix.

It is this project's Python peer driver (tests/interop/python/peer.py, same contract, same code)
with its `msghandler` module replaced by the package before the driver imports it: the one-import
switch the package promises. The driver also reads `unpack_records` (each payload's bytes as
received, for the sha256 column), which the package has privately as `natsbridge._records`.

    python3 tests/interop/package/peer.py send|listen|reply|request ...   (the driver contract)
"""

from __future__ import annotations

import os
import runpy
import sys
import types

import natsbridge

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "..", "python", "peer.py")


async def unpack_records(msg):
    env, records = await natsbridge._records(msg)
    return env, [{"dataname": n, "value": v, "payload_type": t, "transport": tr, "raw": raw}
                 for n, v, t, tr, raw in records]


msghandler = types.ModuleType("msghandler")
# The driver's `smartsend` is its module's alias of `smartpack` (the newer seed's 500 kB threshold,
# the matrix's expectation for this project's peers); the package's own `smartsend` keeps the first
# seed's 1 MB.
msghandler.smartsend = natsbridge.smartpack
msghandler.smartpack = natsbridge.smartpack
msghandler.smartreceive = natsbridge.smartreceive
msghandler.smartunpack = natsbridge.smartunpack
msghandler.unpack_records = unpack_records
msghandler.BINARY_KINDS = ("image", "audio", "video", "binary")
sys.modules["msghandler"] = msghandler

sys.argv[0] = DRIVER
runpy.run_path(DRIVER, run_name="__main__")
