# msghandler_mpy - the MicroPython peer of the msghandler / NATSBridge bridge, transcribed from
# the seeds' MicroPython sections (shared/seeds/004 "msghandler", 000 "NATSBridge") for natsbridge's
# interop matrix. It runs inside the real MicroPython runtime (the npm WebAssembly port, driven by
# tests/interop/micropython/peer.mjs) and uses only what MicroPython ships: json, binascii, time, random
# (hashlib is not needed). No uuid, no os.urandom, no datetime, no asyncio: the API is synchronous.
#
#   env, env_json_str = smartpack(subject, data, broker_url="nats://localhost:4222", size_threshold=100000)
#   env, env_json_str = smartsend(subject, data, nats_connection=conn, ...)   # smartpack + conn.publish
#   env = smartunpack(msg, fileserver_download_handler=_sync_fileserver_download,
#                     max_retries=3, base_delay=100, max_delay=1000)         # alias smartreceive
#   data / env["payloads"]: [(dataname, value, type), ...]
#
# Choices where the seeds are vague (each one is the seed's reading, not the Rust peer's habit):
# - Transport: the seeds say "Limited to direct transport (< 100KB threshold)" for smartpack and
#   give no upload handler for MicroPython. So a payload goes direct only when its serialized size
#   is below size_threshold (default 100_000); at or over it smartpack raises MsgHandlerError naming
#   the payload, its size and the threshold. Nothing is uploaded and nothing is dropped silently.
#   The link side that exists is receive: link payloads are downloaded (the seed's
#   _sync_fileserver_download, max_retries 3, base_delay 100 ms, max_delay 1000 ms).
# - Types: text (str), dictionary (dict on send, as the seed's type table says; any JSON value is
#   taken on receive), jsontable (list of row dicts, JSON; the seed marks it "Limited": no table
#   object, just the rows), image / audio / video / binary (bytes or bytearray on send, bytearray
#   on receive, as the seed's table says). No Arrow: arrowtable / table, or any type it does not
#   know, is an error naming the type, on send and on receive.
# - base64: binascii.b2a_base64 ends every encoding with "\n"; that newline goes on the wire as a
#   device would send it. binascii is the firmware's C module (ubinascii): the PyScript build of
#   the WebAssembly port freezes micropython-lib's pure-Python binascii.py over the name, which is
#   not what a board runs and runs out of memory at a few hundred kB.
# - Envelope JSON: MicroPython's json.dumps, as is: its own key order, ", " / ": " separators,
#   non-ASCII raw. The envelope dict has the schema's keys; metadata {}.
# - Ids: UUID v4 built from random.getrandbits (version and variant bits set), lowercase.
# - timestamp: time.localtime() as YYYY-MM-DDTHH:MM:SS, no fraction, no zone designator (a board
#   keeps local time; the seeds' example shows "...Z", but a device has no zone to write).
# - Received timestamps: parse_timestamp() checks the seed's form YYYY-MM-DDTHH:MM:SS[.fff...][Z]
#   by hand (as a device would to set its clock) and returns a time tuple; anything else (an offset
#   such as +05:30 included) is a MsgHandlerError "timestamp: ...". smartunpack itself does not call
#   it; the listener does.
# - Downloads: try 1 plus up to max_retries retries, the delay before retry n being
#   min(base_delay * 2**n, max_delay) ms with jitter (half to full). Retried: connection errors,
#   5xx, 408, 429 and Plik's "not available : missing / uploading" 404; any other status is final.
#   A redirect is not followed: it is an error naming where it points. The GET sends
#   User-Agent plik_client/msghandler-mpy so Plik answers errors in plain text instead of redirecting.
#   The downloaded length must equal the record's size.
# - The HTTP GET itself is one pluggable function, http_get(url, headers) -> (status, body, location):
#   on a board it would be urequests / a socket; the driver sets it with set_http_get().

import json
import random
import time

try:
    import ubinascii as binascii  # the firmware's C binascii (see header)
except ImportError:
    import binascii

DEFAULT_SIZE_THRESHOLD = 100000
DEFAULT_BROKER_URL = "nats://localhost:4222"
USER_AGENT = "plik_client/msghandler-mpy"
BINARY_KINDS = ("image", "audio", "video", "binary")
PAYLOAD_TYPES = ("text", "dictionary", "jsontable") + BINARY_KINDS
STRING_FIELDS = ("correlation_id", "msg_id", "timestamp", "send_to", "msg_purpose", "sender_name",
                 "sender_id", "receiver_name", "receiver_id", "reply_to", "reply_to_msg_id", "broker_url")


class MsgHandlerError(Exception):
    pass


# ------------------------------------------------------------------ ids, time

_HEX = "0123456789abcdef"


def uuid4():
    b = bytearray(16)
    for i in range(4):
        w = random.getrandbits(32)
        b[4 * i] = w & 0xFF
        b[4 * i + 1] = (w >> 8) & 0xFF
        b[4 * i + 2] = (w >> 16) & 0xFF
        b[4 * i + 3] = (w >> 24) & 0xFF
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # variant 10xx
    h = "".join(_HEX[c >> 4] + _HEX[c & 15] for c in b)
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def timestamp():
    t = time.localtime()
    return "%04d-%02d-%02dT%02d:%02d:%02d" % (t[0], t[1], t[2], t[3], t[4], t[5])


def _digits(s, i, n):
    part = s[i:i + n]
    if len(part) != n:
        return None
    for c in part:
        if c < "0" or c > "9":
            return None
    return int(part)


def parse_timestamp(s):
    """YYYY-MM-DDTHH:MM:SS[.fff...][Z] -> (year, month, day, hour, minute, second, micros)."""
    if not isinstance(s, str):
        raise MsgHandlerError("timestamp: not a string: %r" % (s,))
    ok = len(s) >= 19 and s[4] == "-" and s[7] == "-" and s[10] == "T" and s[13] == ":" and s[16] == ":"
    f = (_digits(s, 0, 4), _digits(s, 5, 2), _digits(s, 8, 2), _digits(s, 11, 2), _digits(s, 14, 2), _digits(s, 17, 2)) if ok else ()
    if not ok or None in f:
        raise MsgHandlerError("timestamp: %r is not YYYY-MM-DDTHH:MM:SS[.fff][Z]" % (s,))
    i, micros = 19, 0
    if i < len(s) and s[i] == ".":
        j = i + 1
        while j < len(s) and "0" <= s[j] <= "9":
            j += 1
        if j == i + 1:
            raise MsgHandlerError("timestamp: %r has a '.' without digits" % (s,))
        micros = int((s[i + 1:j] + "000000")[:6])
        i = j
    if i < len(s) and s[i] == "Z":
        i += 1
    if i != len(s):
        raise MsgHandlerError("timestamp: %r: unexpected %r after the seconds (the form is YYYY-MM-DDTHH:MM:SS[.fff][Z])" % (s, s[i:]))
    y, mo, d, h, mi, se = f
    mdays = (31, 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (1 <= mo <= 12 and 1 <= d <= mdays[mo - 1] and h <= 23 and mi <= 59 and se <= 59):
        raise MsgHandlerError("timestamp: %r is out of range" % (s,))
    return (y, mo, d, h, mi, se, micros)


# ------------------------------------------------------------------ serialization

def _serialize(dataname, value, type_):
    if type_ == "text":
        if not isinstance(value, str):
            raise MsgHandlerError("payload %r: text must be a str" % (dataname,))
        return value.encode("utf-8")
    if type_ == "dictionary":
        if not isinstance(value, dict):
            raise MsgHandlerError("payload %r: dictionary must be a dict" % (dataname,))
        return json.dumps(value).encode("utf-8")
    if type_ == "jsontable":
        if not isinstance(value, list):
            raise MsgHandlerError("payload %r: jsontable must be a list of row dicts" % (dataname,))
        return json.dumps(value).encode("utf-8")
    if type_ in BINARY_KINDS:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, memoryview):
            return bytes(value)
        raise MsgHandlerError("payload %r: %s must be bytes or bytearray" % (dataname, type_))
    raise MsgHandlerError("payload %r: payload_type %r is not supported by the MicroPython peer (no Arrow)" % (dataname, type_))


def _deserialize(where, type_, raw):
    if type_ == "text":
        try:
            return raw.decode("utf-8")
        except UnicodeError:
            raise MsgHandlerError("%s: text is not valid UTF-8" % where)
    if type_ == "dictionary" or type_ == "jsontable":
        try:
            return json.loads(raw)
        except (ValueError, UnicodeError) as e:
            raise MsgHandlerError("%s: %s is not valid JSON: %s" % (where, type_, e))
    if type_ in BINARY_KINDS:
        return bytearray(raw)
    raise MsgHandlerError("%s: payload_type %r is not supported by the MicroPython peer (no Arrow)" % (where, type_))


# ------------------------------------------------------------------ pack / send

def smartpack(subject, data, broker_url=DEFAULT_BROKER_URL, size_threshold=DEFAULT_SIZE_THRESHOLD,
              correlation_id=None, msg_purpose="chat", sender_name="msghandler", receiver_name="",
              receiver_id="", reply_to="", reply_to_msg_id="", msg_id=None, sender_id=None):
    """[(dataname, value, type), ...] -> (env, env_json_str). Direct transport only (see header)."""
    records = []
    for item in data:
        dataname, value, type_ = item
        if type_ not in PAYLOAD_TYPES:
            raise MsgHandlerError("payload %r: payload_type %r is not supported by the MicroPython peer (no Arrow)" % (dataname, type_))
        raw = _serialize(dataname, value, type_)
        if len(raw) >= size_threshold:
            raise MsgHandlerError(
                "payload %r is %d bytes, at or over size_threshold %d: the MicroPython peer is limited to direct transport"
                % (dataname, len(raw), size_threshold))
        records.append({
            "id": uuid4(),
            "dataname": dataname,
            "payload_type": type_,
            "transport": "direct",
            "encoding": "base64",
            "size": len(raw),
            "data": binascii.b2a_base64(raw).decode(),  # ends with "\n", sent as is
        })
        raw = None
    env = {
        "correlation_id": correlation_id or uuid4(),
        "msg_id": msg_id or uuid4(),
        "timestamp": timestamp(),
        "send_to": subject,
        "msg_purpose": msg_purpose,
        "sender_name": sender_name,
        "sender_id": sender_id or uuid4(),
        "receiver_name": receiver_name,
        "receiver_id": receiver_id,
        "reply_to": reply_to,
        "reply_to_msg_id": reply_to_msg_id,
        "broker_url": broker_url,
        "metadata": {},
        "payloads": records,
    }
    return env, json.dumps(env)


def smartsend(subject, data, nats_connection=None, **kwargs):
    """smartpack, then nats_connection.publish(subject, env_json_str) when a connection is given."""
    env, s = smartpack(subject, data, **kwargs)
    if nats_connection is not None:
        nats_connection.publish(subject, s)
    return env, s


# ------------------------------------------------------------------ download

def _no_http_get(url, headers):
    try:
        import requests  # micropython-lib's requests, where the board has it
    except ImportError:
        raise MsgHandlerError("no HTTP client: set one with set_http_get()")
    r = requests.get(url, headers=headers)
    try:
        return r.status_code, r.content, r.headers.get("Location", "") if hasattr(r, "headers") else ""
    finally:
        r.close()


http_get = _no_http_get


def set_http_get(fn):
    """fn(url, headers) -> (status, body bytes, location); raises on connection errors and timeouts."""
    global http_get
    http_get = fn


def _text(body):
    try:
        return bytes(body[:200]).decode("utf-8").strip()
    except UnicodeError:
        return repr(bytes(body[:200]))


def _retryable(status, text):
    if status >= 500 or status == 408 or status == 429:
        return True
    return status == 404 and ("not available : missing" in text or "not available : uploading" in text)


def _sync_fileserver_download(url, max_retries=3, base_delay=100, max_delay=1000, expected_size=None):
    last = None
    for attempt in range(max_retries + 1):
        if attempt:
            delay = min(base_delay * (1 << attempt), max_delay)
            half = delay // 2
            time.sleep_ms(half + random.getrandbits(16) % (half + 1))
        try:
            status, body, location = http_get(url, {"User-Agent": USER_AGENT})
        except MsgHandlerError:
            raise
        except Exception as e:  # connection refused, reset, timeout: worth another try
            last = "GET %s: %s" % (url, e)
            continue
        if status == 200:
            if expected_size is not None and len(body) != expected_size:
                raise MsgHandlerError("GET %s: got %d bytes, envelope says size %d" % (url, len(body), expected_size))
            return body
        if 300 <= status < 400:
            raise MsgHandlerError("GET %s: HTTP %d redirect to %s" % (url, status, location))
        text = _text(body)
        msg = "GET %s: HTTP %d: %s" % (url, status, text)
        if not _retryable(status, text):
            raise MsgHandlerError(msg)
        last = msg
    raise MsgHandlerError("download failed after %d tries: %s" % (max_retries + 1, last))


# ------------------------------------------------------------------ unpack / receive

def _need(obj, key, where):
    if not isinstance(obj, dict):
        raise MsgHandlerError("%s is not a JSON object" % where)
    if key not in obj:
        raise MsgHandlerError("%s is missing required field %r" % (where, key))
    return obj[key]


def _body(msg):
    if isinstance(msg, (bytes, bytearray, str)):
        return msg
    data = getattr(msg, "data", None)  # a NATS message object
    if data is None:
        raise MsgHandlerError("message has no body")
    return data


def unpack_records(msg, fileserver_download_handler=_sync_fileserver_download,
                   max_retries=3, base_delay=100, max_delay=1000):
    """Lower level than smartunpack: (env, [{dataname, payload_type, transport, size, raw, value}])."""
    try:
        env = json.loads(_body(msg))
    except (ValueError, UnicodeError) as e:
        raise MsgHandlerError("envelope is not valid JSON: %s" % e)
    if not isinstance(env, dict):
        raise MsgHandlerError("envelope is not a JSON object")
    payloads = _need(env, "payloads", "envelope")
    if not isinstance(payloads, list):
        raise MsgHandlerError("envelope field 'payloads' is not a list")
    for k in STRING_FIELDS:
        if env.get(k) is None:
            env[k] = ""
    if not isinstance(env.get("metadata"), dict):
        env["metadata"] = {}
    out = []
    for n, p in enumerate(payloads):
        where = "payload #%d" % n
        dataname = _need(p, "dataname", where)
        where = "payload #%d (%s)" % (n, dataname)
        type_ = _need(p, "payload_type", where)
        transport = _need(p, "transport", where)
        data = _need(p, "data", where)
        if type_ not in PAYLOAD_TYPES:
            raise MsgHandlerError("%s: payload_type %r is not supported by the MicroPython peer (no Arrow)" % (where, type_))
        size = p.get("size")
        if size is not None and not isinstance(size, int):
            raise MsgHandlerError("%s: size %r is not an integer" % (where, size))
        if transport == "direct":
            if not isinstance(data, str):
                raise MsgHandlerError("%s: data is not a base64 string" % where)
            try:
                raw = binascii.a2b_base64(data)
            except ValueError as e:
                raise MsgHandlerError("%s: bad base64 in data: %s" % (where, e))
        elif transport == "link":
            if not isinstance(data, str) or not (data.startswith("http://") or data.startswith("https://")):
                raise MsgHandlerError("%s: link data %r is not an http(s) URL" % (where, data))
            if fileserver_download_handler is _sync_fileserver_download:
                raw = _sync_fileserver_download(data, max_retries, base_delay, max_delay, size)
            else:
                raw = fileserver_download_handler(data, max_retries, base_delay, max_delay)
        else:
            raise MsgHandlerError("%s: unknown transport %r" % (where, transport))
        if size is not None and len(raw) != size:
            raise MsgHandlerError("%s: %d bytes, envelope says size %d" % (where, len(raw), size))
        out.append({"dataname": dataname, "payload_type": type_, "transport": transport,
                    "size": len(raw), "raw": raw, "value": _deserialize(where, type_, raw)})
    return env, out


def smartunpack(msg, fileserver_download_handler=_sync_fileserver_download, max_retries=3, base_delay=100, max_delay=1000):
    """NATS message (or its body) -> env dict with env["payloads"] = [(dataname, value, type), ...]."""
    env, recs = unpack_records(msg, fileserver_download_handler, max_retries, base_delay, max_delay)
    env["payloads"] = [(r["dataname"], r["value"], r["payload_type"]) for r in recs]
    return env


smartreceive = smartunpack
