# The MicroPython half of the interop driver (peer.mjs is the Node half). Node owns the NATS socket
# and the HTTP socket; every envelope is built and read here, by msghandler_mpy. Bulk bytes come
# and go as files under /xfer (see runtime.mjs); every function returns a JSON string.
import json
import struct

import mpyhost  # registered by runtime.mjs
import msghandler_mpy as mh

XFER = "/xfer/"
binascii = mh.binascii


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _http_get(url, headers):
    body_path = XFER + "http_body"
    r = mpyhost.http_get(url, headers.get("User-Agent", ""), body_path)
    if r.error:
        raise OSError(r.error)
    return r.status, _read(body_path), r.location


mh.set_http_get(_http_get)


class _Connection:
    """Node's NATS connection as msghandler_mpy sees it: publish() raises when Node could not publish
    (e.g. MAX_PAYLOAD_EXCEEDED, checked by the client against the server's max_payload)."""

    def __init__(self, js):
        self.js = js

    def publish(self, subject, payload):
        err = self.js.publish(subject, payload)
        if err:
            raise OSError("publish to %s: %s" % (subject, err))


def _error(e):
    if isinstance(e, mh.MsgHandlerError):
        return str(e)  # already names the field ("timestamp: ...", "payload #0 (m): ...")
    return "%s: %s" % (type(e).__name__, e)


def _load_data(manifest):
    """[[dataname, type, form, path, index]] -> [(dataname, value, type)]. form "spec": the value is
    entry `index` of the spec file itself, parsed here so that 88.0 stays a float and 60 an int."""
    data, specs = [], {}
    for dataname, type_, form, path, index in json.loads(manifest):
        if form == "spec":
            if path not in specs:
                specs[path] = json.loads(_read(path))
            value = specs[path][index]["value"]
        else:
            raw = _read(path)
            if form == "bytes":
                value = raw
            elif form == "text":
                value = raw.decode("utf-8")
            else:
                value = json.loads(raw)
        data.append((dataname, value, type_))
    return data


def _pack_kwargs(opts):
    kw = {}
    for k, v in json.loads(opts).items():
        if v is not None:
            kw[k] = v
    return kw


def send(subject, manifest, opts, publisher):
    """Pack the spec's payloads and publish them through publisher (Node's NATS connection)."""
    try:
        env, s = mh.smartsend(subject, _load_data(manifest), nats_connection=_Connection(publisher), **_pack_kwargs(opts))
    except Exception as e:
        return json.dumps({"error": _error(e)})
    return json.dumps({"msg_id": env["msg_id"], "correlation_id": env["correlation_id"], "envelope": s})


def _export(v):
    # floats cross to Node bit for bit (its value digest must see the double MicroPython decoded)
    if isinstance(v, float):
        return {"$mpy_float": binascii.hexlify(struct.pack("<d", v)).decode()}
    if isinstance(v, dict):
        return {k: _export(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_export(x) for x in v]
    return v


def _summary(env, recs, subject):
    line = {}
    for k in ("msg_id", "correlation_id", "reply_to_msg_id", "reply_to", "send_to", "msg_purpose", "sender_name", "timestamp"):
        line[k] = env.get(k, "")
    line["subject"] = subject
    payloads = []
    for n, r in enumerate(recs):
        _write(XFER + "raw_%d" % n, r["raw"])
        t = r["payload_type"]
        if t == "text":
            _write(XFER + "val_%d" % n, r["value"].encode("utf-8"))
        elif t in ("dictionary", "jsontable"):
            _write(XFER + "val_%d" % n, json.dumps(_export(r["value"])).encode("utf-8"))
        else:
            _write(XFER + "val_%d" % n, r["value"])
        payloads.append({"dataname": r["dataname"], "payload_type": t, "transport": r["transport"], "size": r["size"]})
    line["payloads"] = payloads
    return line


def _unpack(path):
    env, recs = mh.unpack_records(_read(path))
    mh.parse_timestamp(env["timestamp"])  # the seed's form, checked by hand; raises "timestamp: ..."
    return env, recs


def receive(subject, path):
    """One received message (its body in the file at path) -> the listener's summary line."""
    try:
        env, recs = _unpack(path)
        return json.dumps(_summary(env, recs, subject))
    except Exception as e:
        return json.dumps({"subject": subject, "error": _error(e)})


def reply(subject, path, publisher, broker_url, echo):
    """The seeds' Example 4 responder: answer env["reply_to"] (only if set) with a fresh envelope."""
    try:
        env, recs = _unpack(path)
        line = _summary(env, recs, subject)
        reply_to = env["reply_to"]
        line["answered_to"] = ""
        line["answer_msg_id"] = ""
        if reply_to:
            if echo:
                data = [(r["dataname"], r["value"], r["payload_type"]) for r in recs]
            else:
                data = [("ack", "ok", "text")]
            renv, _ = mh.smartsend(reply_to, data, nats_connection=_Connection(publisher), broker_url=broker_url)
            line["answered_to"] = reply_to
            line["answer_msg_id"] = renv["msg_id"]
        return json.dumps(line)
    except Exception as e:
        return json.dumps({"subject": subject, "error": _error(e)})
