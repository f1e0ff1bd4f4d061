#!/usr/bin/env python3
"""Command-line driver of the Python peer (the contract every interop driver follows: tests/interop/README.md).

  peer.py send    --server URL --subject S --fileserver URL --spec FILE [options]
  peer.py listen  --server URL --subject S --count N --timeout SECS
  peer.py reply   --server URL --subject S --fileserver URL --count N --timeout SECS --echo
  peer.py request --server URL --subject S --fileserver URL --spec FILE --timeout SECS [--mode inbox|reply-to]

request --mode inbox publishes with a NATS reply inbox and names that inbox in reply_to as well.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nats  # noqa: E402

import msghandler  # noqa: E402
from canonical import sha256_hex, value_digest, xorshift_bytes  # noqa: E402

BINARY_KINDS = msghandler.BINARY_KINDS


def load_spec(path: str) -> list:
    """Spec file -> [(dataname, value, type)] in this peer's native value types."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for e in spec:
        t = e["type"]
        if "generated" in e:
            g = e["generated"]
            raw = xorshift_bytes(int(g["n"]), int(g.get("seed", 1)))
            v = raw if t in BINARY_KINDS else raw.decode("latin-1")
        elif "value_file" in e:
            p = e["value_file"] if os.path.isabs(e["value_file"]) else os.path.join(base, e["value_file"])
            with open(p, "rb") as f:
                raw = f.read()
            v = raw if t in BINARY_KINDS else (json.loads(raw) if t != "text" else raw.decode("utf-8"))
        else:
            v = e["value"]
            if t in BINARY_KINDS:
                v = base64.b64decode(v)
        if t in ("arrowtable", "table"):
            import pandas as pd

            v = pd.DataFrame(v)  # rows -> DataFrame, as the seed's Python examples send tables
        out.append((e["dataname"], v, t))
    return out


def summary_line(env: dict, recs: list, subject: str) -> dict:
    line = {k: env.get(k, "") for k in ("msg_id", "correlation_id", "reply_to_msg_id", "reply_to", "send_to", "msg_purpose", "sender_name", "timestamp")}
    line["subject"] = subject
    line["payloads"] = [
        {
            "dataname": r["dataname"],
            "payload_type": r["payload_type"],
            "transport": r["transport"],
            "size": len(r["raw"]),
            "sha256": sha256_hex(r["raw"]),
            "value_digest": value_digest(r["payload_type"], r["value"]),
        }
        for r in recs
    ]
    return line


def emit(obj: dict):
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def ready():
    sys.stderr.write("READY\n")
    sys.stderr.flush()


def pack_kwargs(a) -> dict:
    kw = dict(broker_url=a.server, fileserver_url=a.fileserver)
    for name in ("correlation_id", "msg_purpose", "sender_name", "receiver_name", "reply_to"):
        v = getattr(a, name, None)
        if v is not None:
            kw[name] = v
    if getattr(a, "size_threshold", None) is not None:
        kw["size_threshold"] = a.size_threshold
    return kw


async def cmd_send(a) -> int:
    data = load_spec(a.spec)
    nc = await nats.connect(a.server)
    try:
        for subject in a.subjects:  # one fresh envelope (and upload) per subject
            env, s = await msghandler.smartsend(subject, data, nats_connection=nc, **pack_kwargs(a))
            sys.stdout.write(s + "\n")
    finally:
        await nc.drain()
    return 0


async def cmd_listen(a) -> int:
    nc = await nats.connect(a.server)
    q: asyncio.Queue = asyncio.Queue()

    async def cb(msg):
        await q.put(msg)

    await nc.subscribe(a.subject, cb=cb)
    await nc.flush()
    ready()
    got = 0
    deadline = time.monotonic() + a.timeout
    rc = 0
    try:
        while got < a.count:
            left = deadline - time.monotonic()
            if left <= 0:
                rc = 2
                break
            try:
                msg = await asyncio.wait_for(q.get(), left)
            except asyncio.TimeoutError:
                rc = 2
                break
            got += 1
            try:
                env, recs = await msghandler.unpack_records(msg)
                emit(summary_line(env, recs, msg.subject))
            except Exception as e:  # report, keep listening
                emit({"subject": msg.subject, "error": f"{type(e).__name__}: {e}"})
    finally:
        await nc.drain()
    return rc


async def cmd_reply(a) -> int:
    nc = await nats.connect(a.server)
    q: asyncio.Queue = asyncio.Queue()

    async def cb(msg):
        await q.put(msg)

    await nc.subscribe(a.subject, cb=cb)
    await nc.flush()
    ready()
    got, rc = 0, 0
    deadline = time.monotonic() + a.timeout
    try:
        while got < a.count:
            left = deadline - time.monotonic()
            if left <= 0:
                rc = 2
                break
            try:
                msg = await asyncio.wait_for(q.get(), left)
            except asyncio.TimeoutError:
                rc = 2
                break
            got += 1
            try:
                env, recs = await msghandler.unpack_records(msg)
                dest = msg.reply or env.get("reply_to", "")
                if not dest:
                    emit({"subject": msg.subject, "error": "request has neither a NATS reply inbox nor reply_to"})
                    continue
                data = [(r["dataname"], r["value"], r["payload_type"]) for r in recs] if a.echo else [("ack", "ok", "text")]
                renv, _ = await msghandler.smartsend(
                    dest,
                    data,
                    broker_url=a.server,
                    fileserver_url=a.fileserver,
                    correlation_id=env["correlation_id"] or None,
                    reply_to_msg_id=env["msg_id"],
                    nats_connection=nc,
                )
                line = summary_line(env, recs, msg.subject)
                line["answered_to"] = dest
                line["answer_msg_id"] = renv["msg_id"]
                emit(line)
            except Exception as e:
                emit({"subject": msg.subject, "error": f"{type(e).__name__}: {e}"})
    finally:
        await nc.drain()
    return rc


async def cmd_request(a) -> int:
    data = load_spec(a.spec)
    nc = await nats.connect(a.server)
    try:
        if a.mode == "inbox":
            # A NATS request whose inbox is also named in reply_to (SPEC.md "Request and reply"),
            # so responders that read only env["reply_to"] (the seeds') answer there too.
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox, max_msgs=1)
            await nc.flush()
            a.reply_to = inbox
            env, s = await msghandler.smartsend(a.subject, data, is_publish=False, nats_connection=nc, **pack_kwargs(a))
            await nc.publish(a.subject, s.encode("utf-8"), reply=inbox)
            try:
                msg = await sub.next_msg(timeout=a.timeout)
            except Exception as e:
                emit({"error": f"request: no answer on {inbox}: {type(e).__name__}: {e}", "request_msg_id": env["msg_id"]})
                return 2
        else:
            reply_subject = a.reply_to or f"interop.reply.{uuid.uuid4().hex}"
            sub = await nc.subscribe(reply_subject)
            await nc.flush()
            a.reply_to = reply_subject
            env, s = await msghandler.smartsend(a.subject, data, nats_connection=nc, **pack_kwargs(a))
            try:
                msg = await sub.next_msg(timeout=a.timeout)
            except Exception as e:
                emit({"error": f"no reply on {reply_subject}: {type(e).__name__}: {e}", "request_msg_id": env["msg_id"]})
                return 2
        renv, recs = await msghandler.unpack_records(msg)
        line = summary_line(renv, recs, msg.subject)
        line["request_msg_id"] = env["msg_id"]
        line["request_correlation_id"] = env["correlation_id"]
        line["matched"] = renv["reply_to_msg_id"] == env["msg_id"] and renv["correlation_id"] == env["correlation_id"]
        emit(line)
        return 0 if line["matched"] else 3
    finally:
        await nc.drain()


def main() -> int:
    ap = argparse.ArgumentParser(prog="peer.py", description="Python peer driver for the interop matrix")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, spec=False, fs=False, subject=True):
        p.add_argument("--server", required=True)
        if subject:
            p.add_argument("--subject", required=True)
        if fs:
            p.add_argument("--fileserver", default="http://127.0.0.1:8080")
        if spec:
            p.add_argument("--spec", required=True)
            p.add_argument("--correlation-id", dest="correlation_id")
            p.add_argument("--msg-purpose", dest="msg_purpose")
            p.add_argument("--sender-name", dest="sender_name")
            p.add_argument("--receiver-name", dest="receiver_name")
            p.add_argument("--reply-to", dest="reply_to")
            p.add_argument("--size-threshold", dest="size_threshold", type=int)

    p = sub.add_parser("send")
    common(p, spec=True, fs=True, subject=False)
    p.add_argument("--subject", dest="subjects", action="append", required=True, help="repeatable: one envelope per subject")
    p = sub.add_parser("listen")
    common(p)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("reply")
    common(p, fs=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--echo", action="store_true")
    p = sub.add_parser("request")
    common(p, spec=True, fs=True)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--mode", choices=("inbox", "reply-to"), default="inbox")
    a = ap.parse_args()
    fn = {"send": cmd_send, "listen": cmd_listen, "reply": cmd_reply, "request": cmd_request}[a.cmd]
    return asyncio.run(fn(a))


if __name__ == "__main__":
    sys.exit(main())
