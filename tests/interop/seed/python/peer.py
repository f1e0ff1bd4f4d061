#!/usr/bin/env python3
"""Driver of the seed-transcribed Python peer (contract: tests/interop/README.md, helper-notes contract).

  peer.py [--generation 1|2] send    --server URL --subject S [--subject S2 ...] --fileserver URL --spec FILE [options]
  peer.py [--generation 1|2] listen  --server URL --subject S --count N --timeout SECS
  peer.py [--generation 1|2] reply   --server URL --subject S --fileserver URL --count N --timeout SECS [--echo]
  peer.py [--generation 1|2] request --server URL --subject S --fileserver URL --spec FILE --timeout SECS [--mode reply-to] [--reply-to S]

--generation 2 (default) is 004's msghandler peer (smartpack/smartunpack); --generation 1 is 000's
NATSBridge peer (smartsend/smartreceive). Behaviour kept from the seeds:
- Every received envelope's timestamp goes through the stock `datetime.fromisoformat` (Python 3.11:
  takes "Z", offsets, no zone, any fraction length); a failure, or no timestamp at all, is reported
  as {"subject", "error": "timestamp: ..."} and that message is not answered.
- reply is the seeds' Python responder (000 lines 571-589): `env = smartreceive(msg)`,
  `reply_to = env["reply_to"]` (a KeyError when the field is absent: reported as an error line),
  and only if it is non-empty a fresh `smartsend(reply_to, payloads)` with the seed's arguments
  (broker and file server URLs only, so a connection of its own per answer, as the seed's call
  with no connection makes): no correlation_id, reply_to_msg_id or msg_id copied, msg.reply never
  read. --echo re-packs the request's decoded payloads; without it, the seed's own handler: each
  payload named "command" whose data["action"] is "read_sensor" gets
  [("data", {"sensor_id": "sensor-001", "value": 42.5}, "dictionary")].
- request is the seeds' requester (000 lines 560-566, 004 lines 524-531): a plain publish with
  reply_to set to a subject it subscribed to first; `matched` is true when the answer's
  reply_to_msg_id is empty or the request's msg_id. --mode inbox is refused (exit 4).
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
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))  # tests/interop/python/canonical.py
sys.path.insert(0, HERE)  # first: tests/interop/python has a peer.py of its own

import nats  # noqa: E402

import msghandler_seed as mh  # noqa: E402
from canonical import sha256_hex, value_digest, xorshift_bytes  # noqa: E402

class TimestampError(Exception):
    """The envelope's timestamp did not parse (reported as "timestamp: ...")."""


class Timeout(Exception):
    """--timeout passed before --count messages arrived (exit 2)."""


SUMMARY_KEYS = ("msg_id", "correlation_id", "reply_to_msg_id", "reply_to", "send_to", "msg_purpose", "sender_name", "timestamp")


def send_function(generation: int):
    return mh.smartsend if generation == 1 else mh.smartpack


def load_spec(path: str) -> list:
    """Spec file -> [(dataname, data, type)] in the seeds' Python types (DataFrame for tables)."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for e in spec:
        t = e["type"]
        if "generated" in e:
            raw = xorshift_bytes(int(e["generated"]["n"]), int(e["generated"].get("seed", 1)))
            v = raw if t in mh.BINARY_TYPES else raw.decode("latin-1")
        elif "value_file" in e:
            with open(os.path.join(base, e["value_file"]), "rb") as f:
                raw = f.read()
            v = raw if t in mh.BINARY_TYPES else raw.decode("utf-8") if t == "text" else json.loads(raw)
        else:
            v = base64.b64decode(e["value"]) if t in mh.BINARY_TYPES else e["value"]
        if t in ("arrowtable", "table"):
            import pandas as pd

            v = pd.DataFrame(v)
        out.append((e["dataname"], v, t))
    return out


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error_line(subject: str, e: Exception) -> dict:
    return {"subject": subject, "error": str(e) if isinstance(e, TimestampError) else f"{type(e).__name__}: {e}"}


async def receive(msg, generation: int) -> tuple[dict, dict]:
    """Decode one message as the seed peer does, check its timestamp; -> (env, summary line)."""
    env, received = await mh.unpack_detailed(msg, generation)
    try:
        datetime.fromisoformat(env["timestamp"])
    except Exception as e:
        raise TimestampError(f"timestamp: {type(e).__name__}: {e}") from e
    line = {k: env.get(k, "") for k in SUMMARY_KEYS}
    line["subject"] = msg.subject
    line["payloads"] = [
        {"dataname": dataname, "payload_type": payload_type, "transport": p.get("transport"), "size": len(raw),
         "sha256": sha256_hex(raw), "value_digest": value_digest(payload_type, value)}
        for (p, raw), (dataname, value, payload_type) in zip(received, env["payloads"])
    ]
    return env, line


async def receive_line(msg, generation: int) -> dict:
    try:
        return (await receive(msg, generation))[1]
    except Exception as e:
        return error_line(msg.subject, e)


async def subscribe_ready(nc, subject: str) -> asyncio.Queue:
    q: asyncio.Queue = asyncio.Queue()

    async def cb(msg):
        await q.put(msg)

    await nc.subscribe(subject, cb=cb)
    await nc.flush()
    sys.stderr.write("READY\n")
    sys.stderr.flush()
    return q


async def each_message(q: asyncio.Queue, count: int, timeout: float):
    """Yield up to `count` messages, raising Timeout if the deadline comes first."""
    deadline = time.monotonic() + timeout
    for _ in range(count):
        try:
            yield await asyncio.wait_for(q.get(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise Timeout from None


def spec_kwargs(a) -> dict:
    kw = {"broker_url": a.server, "fileserver_url": a.fileserver}
    for name in ("correlation_id", "msg_purpose", "sender_name", "receiver_name", "reply_to", "size_threshold"):
        if getattr(a, name, None) is not None:
            kw[name] = getattr(a, name)
    return kw


async def cmd_send(a) -> int:
    data = load_spec(a.spec)
    nc = await nats.connect(a.server)
    try:
        for subject in a.subjects:  # a fresh envelope (and upload) per subject
            _, env_json_str = await send_function(a.generation)(subject, data, nats_connection=nc, **spec_kwargs(a))
            sys.stdout.write(env_json_str + "\n")
            sys.stdout.flush()
    except Exception as e:
        sys.stderr.write(f"send failed: {type(e).__name__}: {e}\n")
        return 1
    finally:
        await nc.drain()
    return 0


async def cmd_listen(a) -> int:
    nc = await nats.connect(a.server)
    q = await subscribe_ready(nc, a.subject)
    try:
        async for msg in each_message(q, a.count, a.timeout):
            emit(await receive_line(msg, a.generation))
    except Timeout:
        return 2
    finally:
        await nc.drain()
    return 0


def seed_handler_answer(payloads: list) -> list:
    """The seeds' responder body (000 lines 579-586): one answer per read_sensor command."""
    return [[("data", {"sensor_id": "sensor-001", "value": 42.5}, "dictionary")]
            for dataname, data, _ in payloads if dataname == "command" and data["action"] == "read_sensor"]


async def cmd_reply(a) -> int:
    nc = await nats.connect(a.server)
    q = await subscribe_ready(nc, a.subject)
    try:
        async for msg in each_message(q, a.count, a.timeout):
            try:
                env, line = await receive(msg, a.generation)
                reply_to = env["reply_to"]
                line["answered_to"], line["answer_msg_id"] = "", ""
                answers = [env["payloads"]] if a.echo else seed_handler_answer(env["payloads"])
                for payloads in answers:
                    if reply_to:
                        answer, _ = await send_function(a.generation)(reply_to, payloads, broker_url=a.server, fileserver_url=a.fileserver)
                        line["answered_to"], line["answer_msg_id"] = reply_to, answer["msg_id"]
                emit(line)
            except Exception as e:
                emit(error_line(msg.subject, e))
    except Timeout:
        return 2
    finally:
        await nc.drain()
    return 0


async def cmd_request(a) -> int:
    if a.mode == "inbox":
        emit({"error": "inbox mode: not a seed behaviour"})
        return 4
    data = load_spec(a.spec)
    nc = await nats.connect(a.server)
    try:
        a.reply_to = a.reply_to or f"seed.reply.{uuid.uuid4().hex}"
        sub = await nc.subscribe(a.reply_to)
        await nc.flush()
        try:
            env, _ = await send_function(a.generation)(a.subject, data, nats_connection=nc, **spec_kwargs(a))
        except Exception as e:
            emit({"error": f"send failed: {type(e).__name__}: {e}"})
            return 1
        try:
            msg = await sub.next_msg(timeout=a.timeout)
        except Exception as e:
            emit({"error": f"no answer on {a.reply_to}: {type(e).__name__}: {e}", "request_msg_id": env["msg_id"]})
            return 2
        try:
            answer, line = await receive(msg, a.generation)
        except Exception as e:
            emit({**error_line(msg.subject, e), "request_msg_id": env["msg_id"]})
            return 1
        line["request_msg_id"] = env["msg_id"]
        line["request_correlation_id"] = env["correlation_id"]
        line["matched"] = answer.get("reply_to_msg_id", "") in ("", env["msg_id"])
        emit(line)
        return 0 if line["matched"] else 3
    finally:
        await nc.drain()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="peer.py", description="seed-transcribed Python peer (interop driver contract)")
    ap.add_argument("--generation", type=int, choices=(1, 2), default=2, help="1: NATSBridge (seed 000); 2: msghandler (seed 004)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name, spec=False, fileserver=False, many_subjects=False, counted=False):
        p = sub.add_parser(name)
        p.add_argument("--server", required=True)
        if many_subjects:
            p.add_argument("--subject", dest="subjects", action="append", required=True)
        else:
            p.add_argument("--subject", required=True)
        if fileserver:
            p.add_argument("--fileserver", default="http://localhost:8080")
        if spec:
            p.add_argument("--spec", required=True)
            p.add_argument("--reply-to", dest="reply_to")
            p.add_argument("--correlation-id", dest="correlation_id")
            p.add_argument("--msg-purpose", dest="msg_purpose")
            p.add_argument("--sender-name", dest="sender_name")
            p.add_argument("--receiver-name", dest="receiver_name")
            p.add_argument("--size-threshold", dest="size_threshold", type=int)
        if counted:
            p.add_argument("--count", type=int, default=1)
        p.add_argument("--timeout", type=float, default=30)
        return p

    add("send", spec=True, fileserver=True, many_subjects=True)
    add("listen", counted=True)
    add("reply", fileserver=True, counted=True).add_argument("--echo", action="store_true")
    add("request", spec=True, fileserver=True).add_argument("--mode", choices=("inbox", "reply-to"), default="reply-to")
    a = ap.parse_args(argv)
    return asyncio.run({"send": cmd_send, "listen": cmd_listen, "reply": cmd_reply, "request": cmd_request}[a.cmd](a))


if __name__ == "__main__":
    sys.exit(main())
