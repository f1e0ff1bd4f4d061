#!/usr/bin/env python3
"""A NATS Service API (ADR-32) client in Python, checking a `natsbridge reply` service.

  srv_client.py URL EXPECTED.json OK_ENVELOPE.json FAIL_ENVELOPE.json SEED_ENVELOPE.json

EXPECTED.json: {"name", "version", "description", "metadata", "subject", "queue_group"}.
The three envelopes are requests built by `natsbridge send --no-publish`: one the service
answers, one its --command fails on, one with `reply_to` set (sent as a seed-style requester
does: a plain publish, the answer awaited on reply_to, no NATS reply subject).

It sends the three requests, then asks $SRV.PING, $SRV.INFO and $SRV.STATS (each in its plain,
.NAME and .NAME.ID forms), parses every answer with nats-py's own `nats.micro` types and checks
each field against ADR-32. Prints one JSON line of what it saw (the three answers' raw JSON);
exits 1 with the failed check on stderr.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import datetime

import nats
from nats.micro.service import (
    INFO_RESPONSE_TYPE,
    PING_RESPONSE_TYPE,
    STATS_RESPONSE_TYPE,
    ServiceInfo,
    ServicePing,
    ServiceStats,
)

ERROR = "Nats-Service-Error"
ERROR_CODE = "Nats-Service-Error-Code"
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def check_identity(answer: dict, kind: str, expected: dict, service_id: str | None) -> None:
    check(answer["type"] == kind, f"type {answer['type']!r} != {kind!r}")
    check(answer["name"] == expected["name"], f"name {answer['name']!r}")
    check(NAME.match(answer["name"]) is not None, f"name {answer['name']!r} is not ADR-32's")
    check(isinstance(answer["id"], str) and answer["id"] != "", "id is a non-empty string")
    if service_id is not None:
        check(answer["id"] == service_id, f"id {answer['id']!r} != {service_id!r}")
    check(answer["version"] == expected["version"], f"version {answer['version']!r}")
    check(SEMVER.match(answer["version"]) is not None, "version is SemVer")
    check(answer["metadata"] == expected["metadata"], f"metadata {answer['metadata']!r}")


async def ask(nc, subject: str) -> dict:
    message = await nc.request(subject, b"", timeout=5)
    return json.loads(message.data)


async def main() -> None:
    url, expected_path, ok_path, fail_path, seed_path = sys.argv[1:6]
    expected = json.load(open(expected_path))
    ok_request, fail_request, seed_request = (open(p, "rb").read() for p in (ok_path, fail_path, seed_path))
    nc = await nats.connect(url)

    # A request it answers: an envelope, no error headers.
    answer = await nc.request(expected["subject"], ok_request, timeout=10)
    check(not (answer.headers or {}).get(ERROR), f"a good answer has no {ERROR} header")
    envelope = json.loads(answer.data)
    check(envelope["reply_to_msg_id"] == json.loads(ok_request)["msg_id"], "answers its request")

    # A request its command fails on: still an envelope, marked by the error headers.
    answer = await nc.request(expected["subject"], fail_request, timeout=10)
    headers = answer.headers or {}
    check(headers.get(ERROR, "") != "", f"{ERROR} header set: {headers!r}")
    check(headers.get(ERROR_CODE) == "500", f"{ERROR_CODE}: {headers!r}")
    int(headers[ERROR_CODE])  # ADR-32: always safe to parse as a number
    envelope = json.loads(answer.data)
    check(envelope["payloads"][0]["dataname"] == "error", "the error answer is an envelope")

    # A seed-style requester: plain publish, the answer on the envelope's reply_to.
    seed = json.loads(seed_request)
    inbox = await nc.subscribe(seed["reply_to"])
    await nc.flush()
    await nc.publish(expected["subject"], seed_request)
    answer = await inbox.next_msg(timeout=10)
    check(json.loads(answer.data)["reply_to_msg_id"] == seed["msg_id"], "seed-style answer")

    # PING, in the three forms; the id learnt from the first.
    ping = await ask(nc, "$SRV.PING")
    check(set(ping) >= {"type", "name", "id", "version", "metadata"}, f"ping fields {sorted(ping)}")
    check_identity(ping, PING_RESPONSE_TYPE, expected, None)
    service_id = ping["id"]
    ServicePing.from_dict(ping)
    for subject in (f"$SRV.PING.{expected['name']}", f"$SRV.PING.{expected['name']}.{service_id}"):
        check_identity(await ask(nc, subject), PING_RESPONSE_TYPE, expected, service_id)

    # INFO.
    for subject in ("$SRV.INFO", f"$SRV.INFO.{expected['name']}", f"$SRV.INFO.{expected['name']}.{service_id}"):
        info = await ask(nc, subject)
        check_identity(info, INFO_RESPONSE_TYPE, expected, service_id)
        check(info["description"] == expected["description"], f"description {info['description']!r}")
        parsed = ServiceInfo.from_dict(info)
        check(len(parsed.endpoints) == 1, f"one endpoint: {info['endpoints']!r}")
        endpoint = info["endpoints"][0]
        check(NAME.match(endpoint["name"]) is not None, f"endpoint name {endpoint['name']!r}")
        check(endpoint["subject"] == expected["subject"], f"endpoint subject {endpoint['subject']!r}")
        check(endpoint["queue_group"] == expected["queue_group"], f"queue_group {endpoint['queue_group']!r}")
        check(endpoint["metadata"] == {}, f"endpoint metadata {endpoint['metadata']!r}")

    # STATS: three requests, one error.
    for subject in ("$SRV.STATS", f"$SRV.STATS.{expected['name']}", f"$SRV.STATS.{expected['name']}.{service_id}"):
        stats = await ask(nc, subject)
        check_identity(stats, STATS_RESPONSE_TYPE, expected, service_id)
        parsed = ServiceStats.from_dict(stats)  # `started` as nats.py reads it
        check(parsed.started <= datetime.utcnow(), f"started {stats['started']!r} is in the past")
        check(stats["started"].endswith("Z"), "started is UTC")
        check(len(stats["endpoints"]) == 1, f"one endpoint: {stats['endpoints']!r}")
        endpoint = stats["endpoints"][0]
        check(endpoint["subject"] == expected["subject"], "stats endpoint subject")
        check(endpoint["queue_group"] == expected["queue_group"], "stats endpoint queue_group")
        check(endpoint["num_requests"] == 3, f"num_requests {endpoint['num_requests']}")
        check(endpoint["num_errors"] == 1, f"num_errors {endpoint['num_errors']}")
        check(endpoint["last_error"].startswith("500:"), f"last_error {endpoint['last_error']!r}")
        check(
            isinstance(endpoint["processing_time"], int) and endpoint["processing_time"] > 0,
            f"processing_time {endpoint['processing_time']!r} (nanoseconds)",
        )
        check(
            endpoint["average_processing_time"] == endpoint["processing_time"] // 3,
            f"average_processing_time {endpoint['average_processing_time']} of {endpoint['processing_time']}",
        )

    # Another service's name: nobody answers.
    try:
        await nc.request(f"$SRV.PING.not-{expected['name']}", b"", timeout=0.5)
        check(False, "another name is not answered")
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        pass

    await nc.close()
    print(json.dumps({"ping": ping, "info": info, "stats": stats}))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as e:
        print(f"srv_client: {e}", file=sys.stderr)
        sys.exit(1)
