"""msghandler - the Python peer of the NATS message bridge, for natsbridge's interop matrix.

Written from the seeds' Python API text (NATSBridge README and msghandler README) and the
settled wire contract in shared/SPEC.md. Public API, as the seeds name it:

    env, env_json_str = await smartpack(subject, data, ...)   # alias: smartsend
    env = await smartunpack(msg, ...)                         # alias: smartreceive
    url = await plik_oneshot_upload(fileserver_url, dataname, data_bytes)
    data_bytes = await fetch_with_backoff(url, max_retries, base_delay, max_delay, ...)

`data` is a list of (dataname, value, payload_type) tuples; the returned env has
`payloads` as a list of (dataname, value, payload_type) tuples.

Dependencies: nats-py, aiohttp, pyarrow, pandas.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import random
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, List, Optional, Tuple

import aiohttp

DEFAULT_SIZE_THRESHOLD = 500_000
DEFAULT_MAX_PAYLOAD = 1_048_576
USER_AGENT = "plik_client/msghandler-py"  # Plik answers errors with a redirect unless the UA is a known client
BINARY_KINDS = ("image", "audio", "video", "binary")
PAYLOAD_TYPES = ("text", "dictionary", "arrowtable", "table", "jsontable") + BINARY_KINDS
ENVELOPE_STRING_FIELDS = (
    "correlation_id",
    "msg_id",
    "timestamp",
    "send_to",
    "msg_purpose",
    "sender_name",
    "sender_id",
    "receiver_name",
    "receiver_id",
    "reply_to",
    "reply_to_msg_id",
    "broker_url",
)


class MsgHandlerError(Exception):
    """Any failure to pack, publish, unpack or fetch an envelope."""


class DownloadError(MsgHandlerError):
    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


# --------------------------------------------------------------------------- serialization


def utc_timestamp() -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2024-01-15T10:30:00.123Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _to_arrow_table(data: Any):
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, list):  # list of row dicts
        return pa.Table.from_pylist(data)
    if isinstance(data, dict):  # column name -> values
        return pa.Table.from_pydict(data)
    # pandas DataFrame
    return pa.Table.from_pandas(data, preserve_index=False)


def serialize(payload_type: str, data: Any) -> bytes:
    """The serialized bytes of one payload (SPEC.md 'Payload types and their bytes')."""
    if payload_type == "text":
        if not isinstance(data, str):
            raise MsgHandlerError(f"text payload must be str, got {type(data).__name__}")
        return data.encode("utf-8")
    if payload_type == "dictionary":
        return _json_bytes(data)
    if payload_type in ("arrowtable", "table"):
        import pyarrow as pa

        table = _to_arrow_table(data)
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()
    if payload_type == "jsontable":
        if hasattr(data, "to_dict"):  # DataFrame
            data = json.loads(data.to_json(orient="records"))
        return _json_bytes(list(data))
    if payload_type in BINARY_KINDS:
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data)
        if hasattr(data, "getvalue"):  # BytesIO
            return data.getvalue()
        raise MsgHandlerError(f"{payload_type} payload must be bytes, got {type(data).__name__}")
    raise MsgHandlerError(f"unknown payload_type {payload_type!r}")


def deserialize(payload_type: str, raw: bytes) -> Any:
    if payload_type == "text":
        return raw.decode("utf-8")
    if payload_type in ("dictionary", "jsontable"):
        return json.loads(raw.decode("utf-8"))
    if payload_type in ("arrowtable", "table"):
        return read_arrow(raw).to_pandas()
    if payload_type in BINARY_KINDS:
        return raw
    raise MsgHandlerError(f"unknown payload_type {payload_type!r}")


def read_arrow(raw: bytes):
    """Arrow IPC bytes -> pyarrow.Table; stream or file format (file starts with ARROW1)."""
    import pyarrow as pa

    buf = pa.py_buffer(raw)
    if raw[:6] == b"ARROW1":
        return pa.ipc.open_file(buf).read_all()
    return pa.ipc.open_stream(buf).read_all()


# --------------------------------------------------------------------------- file server handlers


async def plik_oneshot_upload(fileserver_url: str, dataname: str, data: bytes, session: Optional[aiohttp.ClientSession] = None) -> dict:
    """Upload to a Plik server as a one-shot file. Returns {status, uploadid, fileid, url}."""
    base = fileserver_url.rstrip("/")
    own = session is None
    session = session or aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
    try:
        async with session.post(f"{base}/upload", json={"oneShot": True}) as r:
            text = await r.text()
            if r.status != 200:
                raise MsgHandlerError(f"plik POST /upload: HTTP {r.status}: {text.strip()}")
            upload = json.loads(text)
        upload_id, token = upload["id"], upload["uploadToken"]
        form = aiohttp.FormData()
        form.add_field("file", data, filename=dataname or "data", content_type="application/octet-stream")
        async with session.post(f"{base}/file/{upload_id}", data=form, headers={"X-UploadToken": token}) as r:
            text = await r.text()
            if r.status != 200:
                raise MsgHandlerError(f"plik POST /file/{upload_id}: HTTP {r.status}: {text.strip()}")
            f = json.loads(text)
        from urllib.parse import quote

        url = f"{base}/file/{upload_id}/{f['id']}/{quote(f['fileName'])}"
        return {"status": 200, "uploadid": upload_id, "fileid": f["id"], "url": url}
    finally:
        if own:
            await session.close()


def _retryable_status(status: int, body: str) -> bool:
    if status >= 500 or status == 429 or status == 408:
        return True
    if status == 404 and ("not available : missing" in body or "not available : uploading" in body):
        return True
    return False


async def fetch_with_backoff(url: str, max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000, expected_size: Optional[int] = None) -> bytes:
    """GET url with exponential backoff (delays in ms: min(base*2^n, max), with jitter).

    Retries connection errors, timeouts, 5xx, 429 and Plik's missing/uploading 404; fails at
    once on any other 4xx and on a redirect to Plik's error page."""
    last: Optional[Exception] = None
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, timeout=timeout) as session:
        for attempt in range(max_retries + 1):
            if attempt > 0:
                delay = min(base_delay * (2**attempt), max_delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0) / 1000.0)
            try:
                async with session.get(url, allow_redirects=False) as r:
                    if r.status == 200:
                        body = await r.read()
                        if expected_size is not None and len(body) != expected_size:
                            raise DownloadError(f"GET {url}: got {len(body)} bytes, envelope says size {expected_size}", retryable=False)
                        return body
                    text = await r.text(errors="replace")
                    if 300 <= r.status < 400:
                        loc = r.headers.get("Location", "")
                        raise DownloadError(f"GET {url}: HTTP {r.status} redirect to {loc}", retryable=False)
                    err = DownloadError(f"GET {url}: HTTP {r.status}: {text.strip()[:200]}", _retryable_status(r.status, text))
                    if not err.retryable:
                        raise err
                    last = err
            except DownloadError:
                raise
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                last = DownloadError(f"GET {url}: {type(e).__name__}: {e}", retryable=True)
    raise MsgHandlerError(f"download failed after {max_retries + 1} tries: {last}")


# --------------------------------------------------------------------------- pack / send


def _payload_record(dataname: str, payload_type: str, transport: str, size: int, data: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "dataname": dataname,
        "payload_type": payload_type,
        "transport": transport,
        "encoding": "base64" if transport == "direct" else "none",
        "size": size,
        "data": data,
    }


async def _upload(handler, fileserver_url, dataname, raw) -> str:
    res = handler(fileserver_url, dataname, raw)
    if asyncio.iscoroutine(res) or isinstance(res, Awaitable):
        res = await res
    if isinstance(res, str):
        return res
    return res["url"]


async def smartpack(
    subject: str,
    data: List[Tuple[str, Any, str]],
    broker_url: str = "nats://localhost:4222",
    fileserver_url: str = "http://localhost:8080",
    fileserver_upload_handler: Callable = plik_oneshot_upload,
    size_threshold: int = DEFAULT_SIZE_THRESHOLD,
    correlation_id: Optional[str] = None,
    msg_purpose: str = "chat",
    sender_name: str = "msghandler",
    receiver_name: str = "",
    receiver_id: str = "",
    reply_to: str = "",
    reply_to_msg_id: str = "",
    is_publish: bool = True,
    nats_connection: Any = None,
    msg_id: Optional[str] = None,
    sender_id: Optional[str] = None,
    metadata: Optional[dict] = None,
    max_payload: Optional[int] = None,
) -> Tuple[dict, str]:
    """Build the envelope (uploading large payloads) and, if is_publish, publish it to `subject`."""
    serialized = []
    for item in data:
        dataname, value, payload_type = item
        if payload_type not in PAYLOAD_TYPES:
            raise MsgHandlerError(f"unknown payload_type {payload_type!r} for {dataname!r}")
        serialized.append((dataname, payload_type, serialize(payload_type, value)))

    records = []
    for dataname, payload_type, raw in serialized:
        if len(raw) < size_threshold:
            rec = _payload_record(dataname, payload_type, "direct", len(raw), base64.b64encode(raw).decode("ascii"))
        else:
            url = await _upload(fileserver_upload_handler, fileserver_url, dataname, raw)
            rec = _payload_record(dataname, payload_type, "link", len(raw), url)
        records.append(rec)

    env = {
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "msg_id": msg_id or str(uuid.uuid4()),
        "timestamp": utc_timestamp(),
        "send_to": subject,
        "msg_purpose": msg_purpose,
        "sender_name": sender_name,
        "sender_id": sender_id or str(uuid.uuid4()),
        "receiver_name": receiver_name,
        "receiver_id": receiver_id,
        "reply_to": reply_to,
        "reply_to_msg_id": reply_to_msg_id,
        "broker_url": broker_url,
        "metadata": metadata if metadata is not None else {},
        "payloads": records,
    }

    # The whole envelope must fit the server's max_payload: move direct payloads to link, largest first.
    own_nc = None
    if is_publish and nats_connection is None:
        import nats

        own_nc = nats_connection = await nats.connect(broker_url)
    try:
        limit = max_payload or (getattr(nats_connection, "max_payload", None) if nats_connection is not None else None) or DEFAULT_MAX_PAYLOAD
        env_json_str = json.dumps(env, ensure_ascii=False, separators=(",", ":"))
        while len(env_json_str.encode("utf-8")) > limit:
            direct = [(i, r) for i, r in enumerate(records) if r["transport"] == "direct" and r["size"] > 0]
            if not direct:
                raise MsgHandlerError(f"envelope is {len(env_json_str.encode())} bytes, over the server's max_payload {limit}, and no payload is left to move to link transport")
            i, r = max(direct, key=lambda ir: ir[1]["size"])
            dataname, payload_type, raw = serialized[i]
            url = await _upload(fileserver_upload_handler, fileserver_url, dataname, raw)
            records[i] = {**r, "transport": "link", "encoding": "none", "data": url}
            env["payloads"] = records
            env_json_str = json.dumps(env, ensure_ascii=False, separators=(",", ":"))
        if is_publish:
            await nats_connection.publish(subject, env_json_str.encode("utf-8"))
            await nats_connection.flush()
    finally:
        if own_nc is not None:
            await own_nc.drain()
    return env, env_json_str


smartsend = smartpack


# --------------------------------------------------------------------------- unpack / receive


def _require(obj: dict, key: str, where: str):
    if key not in obj:
        raise MsgHandlerError(f"{where} is missing required field {key!r}")
    return obj[key]


def _b64decode(s: str) -> bytes:
    cleaned = "".join(s.split())  # MicroPython / MIME encoders add line breaks
    try:
        return base64.b64decode(cleaned, validate=True)
    except binascii.Error as e:
        raise MsgHandlerError(f"bad base64: {e}") from e


async def unpack_records(
    msg: Any,
    fileserver_download_handler: Callable = fetch_with_backoff,
    max_retries: int = 5,
    base_delay: int = 100,
    max_delay: int = 5000,
) -> Tuple[dict, List[dict]]:
    """Lower level than smartunpack: returns (env, [{record fields..., 'raw': bytes, 'value': decoded}])."""
    body = msg.data if hasattr(msg, "data") else msg
    if isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body).decode("utf-8")
    env_in = json.loads(body) if isinstance(body, str) else dict(body)
    if not isinstance(env_in, dict):
        raise MsgHandlerError("envelope is not a JSON object")
    payloads = _require(env_in, "payloads", "envelope")
    env = dict(env_in)
    for k in ENVELOPE_STRING_FIELDS:
        if env.get(k) is None:
            env[k] = ""
    if not isinstance(env.get("metadata"), dict):
        env["metadata"] = {}
    out = []
    for n, p in enumerate(payloads):
        where = f"payload #{n}"
        dataname = _require(p, "dataname", where)
        payload_type = _require(p, "payload_type", where)
        transport = _require(p, "transport", where)
        data = _require(p, "data", where)
        size = p.get("size")
        if transport == "direct":
            raw = _b64decode(data)
        elif transport == "link":
            if fileserver_download_handler is fetch_with_backoff:
                raw = await fetch_with_backoff(data, max_retries, base_delay, max_delay, expected_size=size)
            else:
                raw = await fileserver_download_handler(data, max_retries, base_delay, max_delay)
        else:
            raise MsgHandlerError(f"{where} ({dataname}): unknown transport {transport!r}")
        if size is not None and len(raw) != int(size):
            raise MsgHandlerError(f"{where} ({dataname}): {len(raw)} bytes, envelope says size {size}")
        value = deserialize(payload_type, raw)
        out.append({**p, "raw": raw, "value": value})
    return env, out


async def smartunpack(
    msg: Any,
    fileserver_download_handler: Callable = fetch_with_backoff,
    max_retries: int = 5,
    base_delay: int = 100,
    max_delay: int = 5000,
) -> dict:
    """Decode an envelope (a NATS message, bytes or str); payloads become (dataname, value, type)."""
    env, recs = await unpack_records(msg, fileserver_download_handler, max_retries, base_delay, max_delay)
    env["payloads"] = [(r["dataname"], r["value"], r["payload_type"]) for r in recs]
    return env


smartreceive = smartunpack


# The seeds import the API both ways: `from msghandler import smartpack` and
# `from msghandler import msghandler; msghandler.smartpack(...)` (older: `NATSBridge.smartsend`).
import sys as _sys  # noqa: E402

msghandler = NATSBridge = _sys.modules[__name__]
