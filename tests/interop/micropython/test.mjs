// Offline checks of the MicroPython peer, run in the real MicroPython runtime (no NATS server):
//   node --test tests/interop/micropython/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { startMicroPython } from './runtime.mjs';

let rt;
before(async () => { rt = await startMicroPython(); });
after(async () => { await rt.close(); });

/** Run MicroPython code that leaves a JSON string in `out`; return it parsed. */
function py(code) {
  rt.mp.runPython(`import json\nimport msghandler_mpy as mh\n${code}`);
  return JSON.parse(rt.mp.globals.get('out'));
}

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SCHEMA = ['correlation_id', 'msg_id', 'timestamp', 'send_to', 'msg_purpose', 'sender_name', 'sender_id',
  'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'broker_url', 'metadata', 'payloads'];
const RECORD = ['id', 'dataname', 'payload_type', 'transport', 'encoding', 'size', 'data'];

test('an envelope it builds is JSON with the schema keys, base64 ending in a newline, UUID v4 ids', () => {
  const s = py(String.raw`
data = [("message", "héllo \u0000 🚀", "text"), ("blob", bytes(range(256)) * 3, "binary"), ("empty", b"", "image"),
        ("config", {"a": 1, "f": 88.0}, "dictionary"), ("rows", [{"id": 1, "x": None}], "jsontable")]
env, s = mh.smartpack("dev.topic", data, reply_to="dev.answer")
out = json.dumps(s)`);
  const env = JSON.parse(s);
  assert.deepEqual(Object.keys(env).sort(), [...SCHEMA].sort());
  for (const k of ['correlation_id', 'msg_id', 'sender_id']) assert.match(env[k], UUID4, k);
  assert.match(env.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/); // time.localtime(), no zone
  assert.equal(env.sender_name, 'msghandler');
  assert.equal(env.msg_purpose, 'chat');
  assert.equal(env.send_to, 'dev.topic');
  assert.equal(env.reply_to, 'dev.answer');
  assert.deepEqual(env.metadata, {});
  assert.equal(new Set(env.payloads.map((p) => p.id)).size, 5);
  const want = [Buffer.from('héllo \u0000 🚀'), Buffer.from(Array.from({ length: 768 }, (_, i) => i % 256)), Buffer.alloc(0)];
  env.payloads.forEach((p, i) => {
    assert.deepEqual(Object.keys(p).sort(), [...RECORD].sort());
    assert.match(p.id, UUID4);
    assert.equal(p.transport, 'direct');
    assert.equal(p.encoding, 'base64');
    assert.ok(p.data.endsWith('\n'), `${p.dataname}: base64 keeps binascii's trailing newline`);
    assert.equal(p.data.indexOf('\n'), p.data.length - 1, 'one line, newline only at the end');
    const raw = Buffer.from(p.data, 'base64');
    assert.equal(raw.length, p.size);
    if (i < want.length) assert.deepEqual(raw, want[i]);
  });
  const dict = Buffer.from(env.payloads[3].data, 'base64').toString();
  assert.deepEqual(JSON.parse(dict), { a: 1, f: 88 });
  assert.match(dict, /"f": 88\.0/); // MicroPython's json.dumps keeps the float a float
});

test('ids are fresh UUID v4 strings', () => {
  const ids = py('out = json.dumps([mh.uuid4() for _ in range(200)])');
  for (const id of ids) assert.match(id, UUID4);
  assert.equal(new Set(ids).size, ids.length);
});

test('direct only: at or over size_threshold, and Arrow, are errors naming the payload', () => {
  const r = py(`
res = []
for data, kw in (([("big", bytes(100000), "binary")], {}), ([("ok", bytes(99999), "binary")], {}),
                 ([("small", bytes(10), "binary")], {"size_threshold": 10}),
                 ([("t", [{"a": 1}], "arrowtable")], {}), ([("t", [{"a": 1}], "table")], {})):
    try:
        env, s = mh.smartpack("x", data, **kw)
        res.append("ok %d" % env["payloads"][0]["size"])
    except mh.MsgHandlerError as e:
        res.append(str(e))
out = json.dumps(res)`);
  assert.match(r[0], /'big' is 100000 bytes, at or over size_threshold 100000.*direct transport/);
  assert.equal(r[1], 'ok 99999');
  assert.match(r[2], /'small' is 10 bytes, at or over size_threshold 10/);
  assert.match(r[3], /'arrowtable' is not supported/);
  assert.match(r[4], /'table' is not supported/);
});

test('round trip through smartunpack; received envelopes are read leniently, errors name the field', () => {
  const r = py(String.raw`
data = [("message", "héllo 日本 🚀 \u0000 \"q\" \\ / \n", "text"), ("blob", bytes(range(256)), "audio"),
        ("config", {"x": [1, 2.5, None, True], "ü": {}}, "dictionary")]
env, s = mh.smartpack("x", data)
back = mh.smartunpack(s.encode())
res = {"same": [(n, v, t) for n, v, t in back["payloads"]] == [(n, bytearray(v) if t == "audio" else v, t) for n, v, t in data],
       "types": [type(v).__name__ for _, v, _ in back["payloads"]]}
def err(env):
    try:
        mh.smartunpack(json.dumps(env))
        return "no error"
    except mh.MsgHandlerError as e:
        return str(e)
rec = {"dataname": "m", "payload_type": "text", "transport": "direct", "data": "SGVs\nbG8=\n", "size": 5}
res["mime"] = mh.smartunpack(json.dumps({"payloads": [rec]}))["payloads"][0][1]
res["missing"] = mh.smartunpack(json.dumps({"payloads": [rec]}))["reply_to"]
res["errors"] = [err({}), err({"payloads": [{"payload_type": "text", "transport": "direct", "data": ""}]}),
                 err({"payloads": [dict(rec, size=6)]}), err({"payloads": [dict(rec, data="a$b!")]}),
                 err({"payloads": [dict(rec, payload_type="arrowtable")]}), err({"payloads": [dict(rec, transport="carrier")]}),
                 err({"payloads": [dict(rec, payload_type="teleport")]})]
out = json.dumps(res)`);
  assert.equal(r.same, true);
  assert.deepEqual(r.types, ['str', 'bytearray', 'dict']);
  assert.equal(r.mime, 'Hello');
  assert.equal(r.missing, '');
  const [noPayloads, noName, size, b64, arrow, transport, unknown] = r.errors;
  assert.match(noPayloads, /payloads/);
  assert.match(noName, /dataname/);
  assert.match(size, /size/);
  assert.match(b64, /base64/);
  assert.match(arrow, /arrowtable/);
  assert.match(transport, /transport/);
  assert.match(unknown, /teleport/);
});

test('received timestamps: the seed form is checked by hand', () => {
  const r = py(`
res = []
for s in ("2024-01-15T10:30:00Z", "2024-01-15T10:30:00", "2024-01-15T10:30:00.37", "2024-01-15T10:30:00.123456789Z",
          "2024-02-29T23:59:59.999Z", "2024-01-15T10:30:00+05:30", "2024-01-15 10:30:00", "2023-02-29T00:00:00",
          "2024-01-15T24:00:00", "2024-01-15T10:30:00.Z", "", "2024-1-15T10:30:00"):
    try:
        res.append(list(mh.parse_timestamp(s)))
    except mh.MsgHandlerError as e:
        res.append(str(e))
out = json.dumps(res)`);
  assert.deepEqual(r.slice(0, 5), [[2024, 1, 15, 10, 30, 0, 0], [2024, 1, 15, 10, 30, 0, 0], [2024, 1, 15, 10, 30, 0, 370000],
    [2024, 1, 15, 10, 30, 0, 123456], [2024, 2, 29, 23, 59, 59, 999000]]);
  for (const e of r.slice(5)) assert.match(e, /^timestamp: /);
  assert.match(r[5], /\+05:30/);
  const own = py('out = json.dumps(list(mh.parse_timestamp(mh.timestamp())))');
  assert.equal(own.length, 7);
});

// A file server in another process (the GET blocks this thread): /<mode>/<n> fails n times, then 200.
async function flakyServer() {
  const src = `
    const http = require('node:http'); const hits = {};
    http.createServer((q, s) => {
      const [, mode, n] = q.url.split('/'); hits[q.url] = (hits[q.url] || 0) + 1;
      if (hits[q.url] <= Number(n)) {
        if (mode === '503') { s.writeHead(503); return s.end('busy'); }
        if (mode === 'missing') { s.writeHead(404); return s.end('file f (x) is not available : missing'); }
        if (mode === 'removed') { s.writeHead(404); return s.end('file f (x) is not available : removed'); }
        if (mode === 'redirect') { s.writeHead(301, { Location: '/?err=gone&errcode=404' }); return s.end(); }
      }
      s.writeHead(200, { 'X-Tries': String(hits[q.url]) }); s.end(Buffer.alloc(1000, 7));
    }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
  const p = spawn(process.execPath, ['-e', src]);
  const [chunk] = await once(p.stdout, 'data');
  return { url: `http://127.0.0.1:${chunk.toString().trim()}`, stop: () => p.kill() };
}

test('link download: retry profile 3 / 100 ms / 1000 ms, retrying only what can succeed', async () => {
  const srv = await flakyServer();
  try {
    const r = py(`
import time
res = {}
for path, size in (("/503/2", 1000), ("/missing/3", 1000), ("/503/4", 1000), ("/removed/1", 1000), ("/redirect/1", 1000), ("/503/0", 999)):
    t = time.ticks_ms()
    try:
        body = mh._sync_fileserver_download("${srv.url}" + path, 3, 100, 1000, size)
        res[path] = ["ok", len(body), time.ticks_diff(time.ticks_ms(), t)]
    except mh.MsgHandlerError as e:
        res[path] = [str(e), 0, time.ticks_diff(time.ticks_ms(), t)]
try:
    mh._sync_fileserver_download("http://127.0.0.1:9/x", 1, 10, 20)
except mh.MsgHandlerError as e:
    res["refused"] = [str(e), 0, 0]
out = json.dumps(res)`);
    assert.equal(r['/503/2'][0], 'ok');
    assert.ok(r['/503/2'][2] >= 100 + 200, 'two backoff sleeps (jittered halves of 200 and 400 ms)');
    assert.equal(r['/missing/3'][0], 'ok'); // 1 try + 3 retries
    assert.match(r['/503/4'][0], /download failed after 4 tries: .*HTTP 503/);
    assert.ok(r['/503/4'][2] < 1000 + 1400, 'delays capped: 200 + 400 + 800 ms at most');
    assert.match(r['/removed/1'][0], /HTTP 404: .*removed/);
    assert.ok(r['/removed/1'][2] < 100, 'a final 404 is not retried');
    assert.match(r['/redirect/1'][0], /HTTP 301 redirect to .*errcode=404/);
    assert.match(r['/503/0'][0], /got 1000 bytes, envelope says size 999/);
    assert.match(r.refused[0], /download failed after 2 tries/);
  } finally {
    srv.stop();
  }
});
