"""msghandler_seed - the Python peer as the seeds' own Python API text describes it.

Transcribed from the two seeds' Python sections, not from this project's habits:
  000 = shared/seeds/000_a148576457fb2b6c.txt (NATSBridge, older, "generation 1")
  004 = shared/seeds/004_4ca69314bd61731a.txt (msghandler, newer, "generation 2")

    env, env_json_str = await smartpack(subject, data, ...)   # 004 lines 224-245, its defaults
    env, env_json_str = await smartsend(subject, data, ...)   # 000 lines 254-275, its defaults
    env = await smartunpack(msg, ...)                         # 004 lines 292-301
    env = await smartreceive(msg, ...)                        # 000 lines 309-317
    url = await plik_oneshot_upload(fileserver_url, dataname, data_bytes)
    data_bytes = await fetch_with_backoff(url, max_retries, base_delay, max_delay)

`data` is a list of (dataname, data, type) tuples; the returned env is the envelope dict with
"payloads" replaced by (dataname, data, type) tuples (000 lines 186-205, 004 lines 131-151).

Where each behaviour comes from (kept even where it is odd):
- The older names carry the older seed: smartsend/smartreceive use 000's defaults (sender_name
  "NATSBridge", size_threshold 1_000_000, lines 216-219) and know only 000's payload types
  (text, dictionary, table, image, audio, video, binary; lines 327-370). smartpack/smartunpack use
  004's (sender_name "msghandler", size_threshold 500_000, lines 232-235) and know only 004's
  types (text, dictionary, arrowtable, jsontable, image, audio, video, binary; lines 312-359).
  So 000 refuses to send `arrowtable`/`jsontable` and 004 refuses `table`; a received payload of
  a type the generation does not list is an error for the whole envelope, naming the type.
- Direct when the serialized size is below the threshold, link otherwise (000 lines 19-22,
  004 lines 16-19). No check against the server's max_payload and no moving of payloads to link:
  the seeds say nothing of it; nats-py refuses an oversized publish (MaxPayloadError).
- Tables are pandas DataFrames (000 line 345, 004 line 329), written as an Arrow IPC stream with
  pyarrow's stock `Table.from_pandas` (pandas metadata and all) and read back with
  `ipc.open_stream(...).to_pandas()`; the seeds never say stream or file, and this peer reads
  stream only. jsontable is a list of dicts (004 line 334); dictionary is dict or list (line 324).
- JSON is Python's stock `json.dumps` (ASCII escapes, ", " and ": " separators) for the envelope
  and for dictionary/jsontable payloads; the envelope's fields are in the schema's order
  (000 lines 113-148); metadata is always {} (the seeds' smartsend takes none).
- timestamp: `datetime.now(timezone.utc).isoformat()`, the stock call (microseconds and "+00:00",
  e.g. 2024-01-15T10:30:00.123456+00:00, not the schema example's "...:00Z", line 117).
- Receive reads what is there: `json.loads`, then per payload `p["dataname"]` etc. (a missing key
  is a KeyError naming it), stock `base64.b64decode` (non-alphabet characters such as line
  breaks are skipped, bad padding fails), and no check of `size` (the seeds never define it).
  Missing envelope fields stay missing, so a seed responder's `env["reply_to"]` can KeyError.
- plik_oneshot_upload "uploads payload bytes to file server, returns URL" (000 lines 103-111):
  Plik's one-shot protocol (shared/SPEC.md), file name = dataname, User-Agent `plik_client/...`
  so Plik answers errors plainly instead of redirecting.
- fetch_with_backoff: "downloads data from URL with exponential backoff retry" with defaults 5,
  100 ms, 5000 ms (000 lines 309-316, 004 lines 292-300). Read naively: max_retries tries in all,
  any failure (connection error, any non-200 status, a one-shot link already consumed) is retried
  after min(base_delay * 2^attempt, max_delay) ms, no jitter.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, List, Tuple
from urllib.parse import quote

import aiohttp

USER_AGENT = "plik_client/msghandler-seed-py"
BINARY_TYPES = ("image", "audio", "video", "binary")
TYPES_000 = ("text", "dictionary", "table") + BINARY_TYPES
TYPES_004 = ("text", "dictionary", "arrowtable", "jsontable") + BINARY_TYPES
GENERATIONS = {1: ("NATSBridge", TYPES_000), 2: ("msghandler", TYPES_004)}


# ----------------------------------------------------------------------------- payload bytes


def _known(generation: int, payload_type: str, dataname: str) -> None:
    name, types = GENERATIONS[generation]
    if payload_type not in types:
        raise ValueError(f"unknown payload type {payload_type!r} (payload {dataname!r}): {name} knows {', '.join(types)}")


def serialize(payload_type: str, data: Any) -> bytes:
    if payload_type == "text":
        return data.encode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.dumps(data).encode("utf-8")
    if payload_type in ("arrowtable", "table"):
        import pyarrow as pa

        table = pa.Table.from_pandas(data)
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()
    return bytes(data)  # image, audio, video, binary


def deserialize(payload_type: str, raw: bytes) -> Any:
    if payload_type == "text":
        return raw.decode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.loads(raw.decode("utf-8"))
    if payload_type in ("arrowtable", "table"):
        import pyarrow as pa

        return pa.ipc.open_stream(raw).read_all().to_pandas()
    return raw


# ----------------------------------------------------------------------------- file server handlers


async def plik_oneshot_upload(fileserver_url: str, dataname: str, data: bytes) -> str:
    """Upload `data` to a Plik server as a one-shot file; return its download URL."""
    base = fileserver_url.rstrip("/")
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
        async with session.post(f"{base}/upload", json={"oneShot": True}) as r:
            if r.status != 200:
                raise RuntimeError(f"plik POST /upload: HTTP {r.status}: {(await r.text()).strip()}")
            upload = json.loads(await r.text())
        form = aiohttp.FormData()
        form.add_field("file", data, filename=dataname, content_type="application/octet-stream")
        async with session.post(f"{base}/file/{upload['id']}", data=form, headers={"X-UploadToken": upload["uploadToken"]}) as r:
            if r.status != 200:
                raise RuntimeError(f"plik POST /file/{upload['id']}: HTTP {r.status}: {(await r.text()).strip()}")
            f = json.loads(await r.text())
    return f"{base}/file/{upload['id']}/{f['id']}/{quote(f['fileName'])}"


async def fetch_with_backoff(url: str, max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000) -> bytes:
    """GET `url`; on any failure wait min(base_delay * 2^attempt, max_delay) ms and try again."""
    last = "no try made"
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
        for attempt in range(max_retries):
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return await r.read()
                    last = f"HTTP {r.status}: {(await r.text(errors='replace')).strip()[:200]}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                last = f"{type(e).__name__}: {e}"
            if attempt + 1 < max_retries:
                await asyncio.sleep(min(base_delay * 2**attempt, max_delay) / 1000)
    raise ConnectionError(f"GET {url} failed after {max_retries} tries: {last}")


# ----------------------------------------------------------------------------- envelope


def now_timestamp() -> str:
    return datetime.now(timezone.utc).isoformat()


def payload_record(dataname: str, payload_type: str, transport: str, size: int, data: str) -> dict:
    return {"id": str(uuid.uuid4()), "dataname": dataname, "payload_type": payload_type, "transport": transport,
            "encoding": "base64" if transport == "direct" else "none", "size": size, "data": data}


def build_envelope(subject: str, records: list, broker_url: str, correlation_id, msg_purpose: str, sender_name: str,
                   receiver_name: str, receiver_id: str, reply_to: str, reply_to_msg_id: str, msg_id, sender_id) -> dict:
    return {
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "msg_id": msg_id or str(uuid.uuid4()),
        "timestamp": now_timestamp(),
        "send_to": subject,
        "msg_purpose": msg_purpose,
        "sender_name": sender_name,
        "sender_id": sender_id or str(uuid.uuid4()),
        "receiver_name": receiver_name,
        "receiver_id": receiver_id,
        "reply_to": reply_to,
        "reply_to_msg_id": reply_to_msg_id,
        "broker_url": broker_url,
        "metadata": {},
        "payloads": records,
    }


async def _pack(generation, subject, data, broker_url, fileserver_url, fileserver_upload_handler, size_threshold,
                correlation_id, msg_purpose, sender_name, receiver_name, receiver_id, reply_to, reply_to_msg_id,
                is_publish, nats_connection, msg_id, sender_id) -> Tuple[dict, str]:
    for dataname, _, payload_type in data:
        _known(generation, payload_type, dataname)
    records = []
    for dataname, value, payload_type in data:
        raw = serialize(payload_type, value)
        if len(raw) < size_threshold:
            records.append(payload_record(dataname, payload_type, "direct", len(raw), base64.b64encode(raw).decode("ascii")))
        else:
            url = await fileserver_upload_handler(fileserver_url, dataname, raw)
            records.append(payload_record(dataname, payload_type, "link", len(raw), url))
    env = build_envelope(subject, records, broker_url, correlation_id, msg_purpose, sender_name, receiver_name,
                         receiver_id, reply_to, reply_to_msg_id, msg_id, sender_id)
    env_json_str = json.dumps(env)
    if is_publish:
        if nats_connection is None:
            import nats

            nc = await nats.connect(broker_url)
            await nc.publish(subject, env_json_str.encode("utf-8"))
            await nc.drain()
        else:
            await nats_connection.publish(subject, env_json_str.encode("utf-8"))
            await nats_connection.flush()
    return env, env_json_str


async def smartpack(
    subject: str,
    data: List[Tuple[str, Any, str]],
    broker_url: str = "nats://localhost:4222",
    fileserver_url: str = "http://localhost:8080",
    fileserver_upload_handler: Callable = plik_oneshot_upload,
    size_threshold: int = 500_000,
    correlation_id: str = None,
    msg_purpose: str = "chat",
    sender_name: str = "msghandler",
    receiver_name: str = "",
    receiver_id: str = "",
    reply_to: str = "",
    reply_to_msg_id: str = "",
    is_publish: bool = True,
    nats_connection: Any = None,
    msg_id: str = None,
    sender_id: str = None,
) -> Tuple[dict, str]:
    """004's smartpack: build the envelope (uploading large payloads) and publish it to `subject`."""
    return await _pack(2, **locals())


async def smartsend(
    subject: str,
    data: List[Tuple[str, Any, str]],
    broker_url: str = "nats://localhost:4222",
    fileserver_url: str = "http://localhost:8080",
    fileserver_upload_handler: Callable = plik_oneshot_upload,
    size_threshold: int = 1_000_000,
    correlation_id: str = None,
    msg_purpose: str = "chat",
    sender_name: str = "NATSBridge",
    receiver_name: str = "",
    receiver_id: str = "",
    reply_to: str = "",
    reply_to_msg_id: str = "",
    is_publish: bool = True,
    nats_connection: Any = None,
    msg_id: str = None,
    sender_id: str = None,
) -> Tuple[dict, str]:
    """000's smartsend: the same with NATSBridge's defaults and payload types."""
    return await _pack(1, **locals())


async def unpack_detailed(msg: Any, generation: int = 2, fileserver_download_handler: Callable = fetch_with_backoff,
                          max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000) -> Tuple[dict, list]:
    """smartunpack/smartreceive, also returning [(payload record, bytes as received)] for the driver."""
    env = json.loads(msg.data)
    received = []
    for p in env["payloads"]:
        dataname, payload_type, transport, data = p["dataname"], p["payload_type"], p["transport"], p["data"]
        if transport == "direct":
            try:
                raw = base64.b64decode(data)
            except ValueError as e:  # binascii.Error: say where it came from
                raise ValueError(f"payload {dataname!r}: bad base64: {e}") from e
        elif transport == "link":
            raw = await fileserver_download_handler(data, max_retries, base_delay, max_delay)
        else:
            raise ValueError(f"unknown transport {transport!r} (payload {dataname!r})")
        _known(generation, payload_type, dataname)
        received.append((p, raw, (dataname, deserialize(payload_type, raw), payload_type)))
    env["payloads"] = [t for _, _, t in received]
    return env, [(p, raw) for p, raw, _ in received]


async def smartunpack(msg: Any, fileserver_download_handler: Callable = fetch_with_backoff,
                      max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000) -> dict:
    """004's smartunpack: the envelope with payloads as (dataname, data, type) tuples."""
    return (await unpack_detailed(msg, 2, fileserver_download_handler, max_retries, base_delay, max_delay))[0]


async def smartreceive(msg: Any, fileserver_download_handler: Callable = fetch_with_backoff,
                       max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000) -> dict:
    """000's smartreceive: the same, knowing NATSBridge's payload types."""
    return (await unpack_detailed(msg, 1, fileserver_download_handler, max_retries, base_delay, max_delay))[0]
