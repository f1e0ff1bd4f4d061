"""natsbridge: the seeds' msghandler API on the natsbridge Rust core.

Switch from the seeds' Python peer by changing one import::

    from natsbridge import smartpack, smartunpack      # was: from msghandler import ...
    from natsbridge import msghandler                  # or the namespace: msghandler.smartpack(...)

``smartpack`` / ``smartunpack`` take the newer seed's (004) arguments and defaults
(``size_threshold=500_000``, ``sender_name="msghandler"``), ``smartsend`` / ``smartreceive`` the
older one's (000: ``1_000_000``, ``"NATSBridge"``). All four are asyncio coroutines. ``data`` is a
list of ``(dataname, value, type)`` tuples:

- ``text``: ``str``;
- ``dictionary``: ``dict`` or ``list`` (JSON); ``jsontable``: a list of dicts (JSON);
- ``arrowtable`` / ``table``: ``pandas.DataFrame``, ``pyarrow.Table`` or ``pyarrow.RecordBatch``
  (sent as an Arrow IPC stream; received as a ``pandas.DataFrame``, or a ``pyarrow.Table`` when
  pandas is not installed);
- ``image`` / ``audio`` / ``video`` / ``binary``: ``bytes``, ``bytearray`` or ``memoryview``
  (received as ``bytes``).

Payloads under ``size_threshold`` travel base64 in the envelope; larger ones are uploaded to the
file server and travel as links, with their size and SHA-256. By default the Rust core uploads
(Plik one-shot, retried with jitter) and downloads (scheme and redirect checks, size cap, retried,
size and SHA-256 verified); a ``fileserver_upload_handler`` / ``fileserver_download_handler`` of
your own replaces it, as in the seeds. Hashing and transfers run with the GIL released, and so
do building and parsing from 64 KB of payload on; a call with no I/O (nothing to publish on the
package's own connection, no link) runs right on the calling thread. Errors are :class:`natsbridge.Error` subclasses (see :mod:`natsbridge.errors`).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, Awaitable, Callable, List, Optional, Tuple

from . import _native
from .errors import (
    Error,
    IntegrityError,
    InvalidInputError,
    MalformedError,
    NatsError,
    NotFoundError,
    PayloadTooLargeError,
    TimeoutError,
    TransferError,
    _input_error,
    _payload_error,
)

__all__ = [
    "Bridge",
    "Service",
    "Subscription",
    "Request",
    "JetStreamAck",
    "smartpack",
    "smartunpack",
    "smartsend",
    "smartreceive",
    "plik_oneshot_upload",
    "fetch_with_backoff",
    "close",
    "msghandler",
    "PAYLOAD_TYPES",
    "Error",
    "InvalidInputError",
    "MalformedError",
    "IntegrityError",
    "NotFoundError",
    # Not TimeoutError: `from natsbridge import *` would shadow the built-in one (natsbridge.TimeoutError
    # is a subclass of it, so `except TimeoutError` still catches the package's).
    "PayloadTooLargeError",
    "TransferError",
    "NatsError",
]

BINARY_TYPES = ("image", "audio", "video", "binary")
#: Every payload type the package sends and receives (both seeds' lists together).
PAYLOAD_TYPES = ("text", "dictionary", "arrowtable", "table", "jsontable") + BINARY_TYPES

Payloads = List[Tuple[str, Any, str]]


# ----------------------------------------------------------------------------- file server handlers


async def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs a function of the Rust core (which releases the GIL while it works) on asyncio's default
    executor: the event loop goes on meanwhile, and only Python's own threads touch Python."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(function, *args, **kwargs))


async def plik_oneshot_upload(fileserver_url: str, dataname: str, data: bytes) -> str:
    """Uploads ``data`` to a Plik-compatible file server as a one-shot file and returns its download
    URL (the seeds' default upload handler, done by the Rust core, retried with jitter)."""
    return await _call(_native.upload, _str("fileserver_url", fileserver_url), _str("dataname", dataname),
                                _binary(dataname, data))


async def fetch_with_backoff(url: str, max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000) -> bytes:
    """Downloads ``url`` with retries and exponential backoff (delays in milliseconds): the seeds'
    default download handler, done by the Rust core (http/https only, size cap, retried with
    jitter; ``max_retries`` counts the tries after the first)."""
    return await _call(_native.download, _str("url", url), *_retry(max_retries, base_delay, max_delay))


async def close() -> None:
    """Flushes and drops the package's own NATS connections (those made for ``nats_connection=None``);
    a later call connects again."""
    await _call(_native.close)


# ----------------------------------------------------------------------------- values to bytes and back


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _input_error(f"{name} must be a str, not {type(value).__name__}")
    return value


def _retry(max_retries: Any, base_delay: Any, max_delay: Any) -> Tuple[int, int, int]:
    for name, v in (("max_retries", max_retries), ("base_delay", base_delay), ("max_delay", max_delay)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v >= 2**32:
            raise _input_error(f"{name} must be a non-negative int, not {v!r}")
    return max_retries, base_delay, max_delay


def _binary(dataname: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise _input_error(f"payload {dataname!r}: binary data must be bytes, bytearray or memoryview, "
                       f"not {type(value).__name__}")


def _table_bytes(dataname: str, value: Any) -> bytes:
    try:
        import pyarrow as pa
    except ImportError as e:
        raise _input_error(f"payload {dataname!r}: tables need pyarrow (pip install pyarrow)", e) from e
    if isinstance(value, pa.Table):
        table = value
    elif isinstance(value, pa.RecordBatch):
        table = pa.Table.from_batches([value])
    elif type(value).__name__ == "DataFrame" and hasattr(value, "to_dict"):
        try:
            table = pa.Table.from_pandas(value)
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise _input_error(f"payload {dataname!r}: the DataFrame does not convert to Arrow: {e}", e) from e
    else:
        raise _input_error(f"payload {dataname!r}: a table must be a pandas.DataFrame, pyarrow.Table or "
                           f"pyarrow.RecordBatch, not {type(value).__name__}")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _serialize(dataname: str, value: Any, payload_type: str) -> bytes:
    """A payload's bytes, as the seeds' Python writes them."""
    if payload_type == "text":
        if not isinstance(value, str):
            raise _input_error(f"payload {dataname!r}: text must be a str, not {type(value).__name__}")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise _input_error(f"payload {dataname!r}: text is not valid Unicode: {e}", e) from e
    if payload_type in ("dictionary", "jsontable"):
        if payload_type == "jsontable" and not (isinstance(value, list) and all(isinstance(r, dict) for r in value)):
            raise _input_error(f"payload {dataname!r}: a jsontable must be a list of dicts, not {type(value).__name__}")
        if payload_type == "dictionary" and not isinstance(value, (dict, list)):
            raise _input_error(f"payload {dataname!r}: a dictionary must be a dict or list, not {type(value).__name__}")
        try:
            return json.dumps(value).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise _input_error(f"payload {dataname!r}: not JSON serializable: {e}", e) from e
    if payload_type in ("arrowtable", "table"):
        return _table_bytes(dataname, value)
    if payload_type in BINARY_TYPES:
        return _binary(dataname, value)
    raise _input_error(f"payload {dataname!r}: unknown payload type {payload_type!r} "
                       f"(known: {', '.join(PAYLOAD_TYPES)})")


def _payloads(data: Any) -> List[Tuple[str, bytes, str]]:
    """Every payload serialized, or the first bad one's error before anything is sent."""
    if not isinstance(data, (list, tuple)):
        raise _input_error(f"data must be a list of (dataname, value, type) tuples, not {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise _input_error(f"data[{i}] must be a (dataname, value, type) tuple, not {item!r:.80}")
        dataname, value, payload_type = item
        _str(f"data[{i}]'s dataname", dataname)
        _str(f"payload {dataname!r}'s type", payload_type)
        out.append((dataname, _serialize(dataname, value, payload_type), payload_type))
    return out


def _deserialize(dataname: str, payload_type: str, raw: bytes) -> Any:
    """A payload's value, as the seeds' Python reads it."""
    try:
        if payload_type == "text":
            return raw.decode("utf-8")
        if payload_type in ("dictionary", "jsontable"):
            return json.loads(raw)
        if payload_type in ("arrowtable", "table"):
            return _read_table(raw)
    except Exception as e:  # noqa: BLE001 - any decoder's failure is this payload's, named
        raise _payload_error(dataname, payload_type, e) from e
    return raw  # binary kinds, and types this package does not know (never dropped)


def _read_table(raw: bytes) -> Any:
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(raw).read_all()
    except pa.ArrowInvalid:
        # Some peers write the Arrow IPC file format; the seeds never say which.
        table = pa.ipc.open_file(raw).read_all()
    try:
        import pandas  # noqa: F401
    except ImportError:
        return table
    return table.to_pandas()


def _message_bytes(msg: Any) -> bytes:
    data = getattr(msg, "data", msg)
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    raise _input_error(f"msg must be a NATS message (with .data), bytes or str, not {type(msg).__name__}")


# ----------------------------------------------------------------------------- send


def _options(broker_url: str, fileserver_url: str, size_threshold: Any, correlation_id: Optional[str],
             msg_purpose: str, sender_name: str, receiver_name: str, receiver_id: str, reply_to: str,
             reply_to_msg_id: str, msg_id: Optional[str], sender_id: Optional[str]) -> dict:
    """The envelope fields as the Rust core takes them, each checked."""
    if isinstance(size_threshold, bool) or not isinstance(size_threshold, int) or size_threshold < 0:
        raise _input_error(f"size_threshold must be a non-negative int, not {size_threshold!r}")
    options = {
        "broker_url": broker_url,
        "fileserver_url": fileserver_url,
        "size_threshold": size_threshold,
        "correlation_id": correlation_id,
        "msg_purpose": msg_purpose,
        "sender_name": sender_name,
        "receiver_name": receiver_name,
        "receiver_id": receiver_id,
        "reply_to": reply_to,
        "reply_to_msg_id": reply_to_msg_id,
        "msg_id": msg_id,
        "sender_id": sender_id,
    }
    for key in ("msg_purpose", "sender_name", "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id"):
        _str(key, options[key])
    for key in ("correlation_id", "msg_id", "sender_id"):
        if options[key] is not None:
            _str(key, options[key])
    return options


def _max_payload(nats_connection: Any) -> int:
    """The largest envelope ``nats_connection``'s server takes (the NATS default without one)."""
    if nats_connection is not None:
        server_limit = getattr(nats_connection, "max_payload", None)
        if isinstance(server_limit, int) and server_limit > 0:
            return server_limit
    return _native.DEFAULT_MAX_PAYLOAD


async def _pack(subject: str, data: Payloads, broker_url: str, fileserver_url: str,
                fileserver_upload_handler: Optional[Callable[[str, str, bytes], Awaitable[str]]],
                size_threshold: int, correlation_id: Optional[str], msg_purpose: str, sender_name: str,
                receiver_name: str, receiver_id: str, reply_to: str, reply_to_msg_id: str, is_publish: bool,
                nats_connection: Any, msg_id: Optional[str], sender_id: Optional[str]) -> Tuple[dict, str]:
    _str("subject", subject)
    options = _options(_str("broker_url", broker_url), _str("fileserver_url", fileserver_url), size_threshold,
                       correlation_id, msg_purpose, sender_name, receiver_name, receiver_id, reply_to,
                       reply_to_msg_id, msg_id, sender_id)
    items = _payloads(data)
    rust_upload = fileserver_upload_handler is None or fileserver_upload_handler is plik_oneshot_upload
    payloads = []
    for dataname, raw, payload_type in items:
        url = None
        if not rust_upload and len(raw) >= size_threshold:
            url = await fileserver_upload_handler(fileserver_url, dataname, raw)
            if not isinstance(url, str):
                raise _input_error(f"payload {dataname!r}: the upload handler returned {type(url).__name__}, not a URL str")
        payloads.append((dataname, raw, payload_type, url))
    own_connection = bool(is_publish) and nats_connection is None
    max_payload = _max_payload(nats_connection)
    # With nothing to publish here and nothing that could go by link (every payload under the
    # threshold, and the envelope surely under max_payload: base64 is 4/3), there is no I/O to wait
    # for: the call is as short as a json.dumps, and runs right here, sparing the executor's hop.
    no_io = not own_connection and sum(len(p[1]) for p in payloads) * 4 // 3 + 4096 * (len(payloads) + 1) < max_payload \
        and all(len(p[1]) < size_threshold for p in payloads)
    call = _native.pack if no_io else functools.partial(_call, _native.pack)
    env_json_str = call(subject, payloads, options, upload=rust_upload, publish=own_connection, max_payload=max_payload)
    if not no_io:
        env_json_str = await env_json_str
    if is_publish and nats_connection is not None:
        await nats_connection.publish(subject, env_json_str.encode("utf-8"))
        await nats_connection.flush()
    return json.loads(env_json_str), env_json_str


async def smartpack(
    subject: str,
    data: Payloads,
    broker_url: str = "nats://localhost:4222",
    fileserver_url: str = "http://localhost:8080",
    fileserver_upload_handler: Callable[[str, str, bytes], Awaitable[str]] = plik_oneshot_upload,
    size_threshold: int = 500_000,
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
) -> Tuple[dict, str]:
    """Builds the envelope for ``data`` (uploading payloads of ``size_threshold`` bytes or more, and
    more if the envelope would not fit the server's max_payload) and publishes it to ``subject``
    unless ``is_publish`` is false: through ``nats_connection`` (a nats-py client) when given,
    otherwise through the package's own connection to ``broker_url``, made once and reused.

    Returns ``(env, env_json_str)``: the envelope as a dict and its JSON exactly as published.
    Raises :class:`InvalidInputError` for a bad payload before anything is uploaded or published.
    """
    # With nothing to publish on the package's own connection, an envelope of direct payloads is
    # built right here (no I/O: no executor's hop); anything else takes the general path.
    if (not is_publish or nats_connection is not None) and isinstance(fileserver_url, str):
        fields = (broker_url, msg_purpose, sender_name, receiver_name, receiver_id, reply_to, reply_to_msg_id,
                  correlation_id, msg_id, sender_id)
        max_payload = _native.DEFAULT_MAX_PAYLOAD if nats_connection is None else _max_payload(nats_connection)
        packed = _native.pack_local(subject, data, size_threshold, fields, max_payload)
        if packed is not None:
            if is_publish:
                await nats_connection.publish(subject, packed[1].encode("utf-8"))
                await nats_connection.flush()
            return packed
    return await _pack(subject, data, broker_url, fileserver_url, fileserver_upload_handler, size_threshold,
                       correlation_id, msg_purpose, sender_name, receiver_name, receiver_id, reply_to,
                       reply_to_msg_id, is_publish, nats_connection, msg_id, sender_id)


async def smartsend(
    subject: str,
    data: Payloads,
    broker_url: str = "nats://localhost:4222",
    fileserver_url: str = "http://localhost:8080",
    fileserver_upload_handler: Callable[[str, str, bytes], Awaitable[str]] = plik_oneshot_upload,
    size_threshold: int = 1_000_000,
    correlation_id: Optional[str] = None,
    msg_purpose: str = "chat",
    sender_name: str = "NATSBridge",
    receiver_name: str = "",
    receiver_id: str = "",
    reply_to: str = "",
    reply_to_msg_id: str = "",
    is_publish: bool = True,
    nats_connection: Any = None,
    msg_id: Optional[str] = None,
    sender_id: Optional[str] = None,
) -> Tuple[dict, str]:
    """The older seed's name and defaults for :func:`smartpack` (1 MB threshold, ``"NATSBridge"``)."""
    return await smartpack(subject, data, broker_url, fileserver_url, fileserver_upload_handler, size_threshold,
                           correlation_id, msg_purpose, sender_name, receiver_name, receiver_id, reply_to,
                           reply_to_msg_id, is_publish, nats_connection, msg_id, sender_id)


# ----------------------------------------------------------------------------- receive


async def _records(msg: Any, fileserver_download_handler: Optional[Callable[..., Awaitable[bytes]]] = None,
                   max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000) -> Tuple[dict, list]:
    """The envelope (without ``payloads``) and per payload ``(dataname, value, type, transport, raw)``,
    raw being the serialized bytes as received: what ``smartunpack`` returns, and the bytes beside
    (for the interop matrix's driver, which reports their SHA-256). Private to the package."""
    body = _message_bytes(msg)
    retry = _retry(max_retries, base_delay, max_delay)
    rust_download = fileserver_download_handler is None or fileserver_download_handler is fetch_with_backoff
    # Parsed here first (no I/O: links come back as URLs); only an envelope with links the Rust core
    # downloads goes to the executor.
    header_json, records = _native.unpack(body, download=False, max_retries=retry[0], base_delay=retry[1],
                                          max_delay=retry[2])
    if rust_download and any(r[3] is None for r in records):
        header_json, records = await _call(_native.unpack, body, download=True, max_retries=retry[0],
                                           base_delay=retry[1], max_delay=retry[2])
    fetched = []
    for dataname, payload_type, transport, raw, url, size, sha256 in records:
        if raw is None:
            raw = _binary(dataname, await fileserver_download_handler(url, max_retries, base_delay, max_delay))
            await _call(_native.verify, dataname, raw, size, sha256)
        fetched.append((dataname, payload_type, transport, raw))
    return _decoded(header_json, fetched)


def _decoded(header_json: str, records: list) -> Tuple[dict, list]:
    """The envelope (without ``payloads``) and per payload ``(dataname, value, type, transport, raw)``
    from the header's JSON and ``(dataname, type, transport, raw)`` per payload, every one fetched.
    Raises :class:`MalformedError` (with ``envelope``: the others decoded) when a payload does not
    decode as its type."""
    env = json.loads(header_json)
    out = []
    errors = []
    for dataname, payload_type, transport, raw in records:
        try:
            value = _deserialize(dataname, payload_type, raw)
        except MalformedError as e:
            errors.append(e)
            value = raw
        out.append((dataname, value, payload_type, transport, raw))
    if errors:
        env["payloads"] = [r[:3] for r in out]
        e = MalformedError("; ".join(str(x) for x in errors), kind="decode", layer="payload")
        e.envelope, e.errors = env, errors
        raise e
    return env, out


async def _unpack(msg: Any, fileserver_download_handler: Optional[Callable[..., Awaitable[bytes]]],
                  max_retries: int, base_delay: int, max_delay: int) -> dict:
    env, records = await _records(msg, fileserver_download_handler, max_retries, base_delay, max_delay)
    env["payloads"] = [r[:3] for r in records]
    return env


async def smartunpack(msg: Any, fileserver_download_handler: Callable[..., Awaitable[bytes]] = fetch_with_backoff,
                      max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000) -> dict:
    """Reads a received envelope: ``msg`` is a nats-py message (anything with ``.data``), ``bytes`` or
    ``str``. Link payloads are downloaded (by default by the Rust core, retried, size and SHA-256
    checked; otherwise by ``fileserver_download_handler(url, max_retries, base_delay, max_delay)``,
    whose bytes are checked the same way).

    Returns the envelope dict with ``payloads`` as ``(dataname, value, type)`` tuples. A payload
    whose bytes do not decode as its type raises :class:`MalformedError` whose ``envelope`` still
    holds every other payload decoded.
    """
    # An envelope with no links is read right here (no I/O: no executor's hop; with the default
    # retries, which it does not use, unchecked); the general path reads the rest, and raises the
    # named errors.
    if max_retries == 5 and base_delay == 100 and max_delay == 5000:
        env = _native.unpack_local(msg)
        if env is not None:
            return env
    return await _unpack(msg, fileserver_download_handler, max_retries, base_delay, max_delay)


async def smartreceive(msg: Any, fileserver_download_handler: Callable[..., Awaitable[bytes]] = fetch_with_backoff,
                       max_retries: int = 5, base_delay: int = 100, max_delay: int = 5000) -> dict:
    """The older seed's name for :func:`smartunpack`."""
    return await smartunpack(msg, fileserver_download_handler, max_retries, base_delay, max_delay)


def _envelope(unpacked: Tuple[str, list]) -> dict:
    """The seeds' envelope dict from what the Rust core's ``unpack`` (and the bridge's calls) return,
    every link already fetched."""
    header_json, records = unpacked
    env, out = _decoded(header_json, [(r[0], r[1], r[2], r[3]) for r in records])
    env["payloads"] = [r[:3] for r in out]
    return env


from . import msghandler  # noqa: E402  (the namespace re-exports the functions above)
from .bridge import Bridge, JetStreamAck, Request, Service, Subscription  # noqa: E402
