// Unit checks of the seed-transcribed Node peer, offline (no NATS server, no file server; fetch is
// replaced by a fake where the file-server handlers are tested):  node --test tests/interop/seed/node/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromIPC, tableToIPC } from 'apache-arrow';
import msghandler, * as mh from './msghandler_seed.mjs';
import { loadSpec, timestampError } from './peer.mjs';
import { xorshiftBytes } from '../../node/canonical.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const cases = join(here, '..', '..', 'cases');
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ROWS = [
  { id: 1, name: 'Alice', score: 95.5, active: true },
  { id: 2, name: null, score: 88, active: false },
];

/** Replace globalThis.fetch for the duration of fn; answers come from respond(url, init, n). */
async function withFakeFetch(respond, fn) {
  const real = globalThis.fetch;
  const calls = [];
  globalThis.fetch = async (url, init = {}) => {
    calls.push({ url: String(url), init });
    return respond(String(url), init, calls.length);
  };
  try { return await fn(calls); } finally { globalThis.fetch = real; }
}

test('smartpack: the seed defaults and the envelope in schema order', async () => {
  const [env, json] = await msghandler.smartpack('a.b', [['m', 'hi', 'text']], { is_publish: false });
  assert.deepEqual(Object.keys(JSON.parse(json)), ['correlation_id', 'msg_id', 'timestamp', 'send_to', 'msg_purpose',
    'sender_name', 'sender_id', 'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'broker_url', 'metadata', 'payloads']);
  assert.deepEqual(Object.keys(env.payloads[0]), ['id', 'dataname', 'payload_type', 'transport', 'encoding', 'size', 'data']);
  assert.equal(env.msg_purpose, 'chat');
  assert.equal(env.sender_name, 'msghandler');
  assert.equal(env.broker_url, 'nats://localhost:4222');
  for (const k of ['receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id']) assert.equal(env[k], '');
  for (const k of ['correlation_id', 'msg_id', 'sender_id']) assert.match(env[k], UUID4);
  assert.deepEqual(env.metadata, {});
  assert.match(env.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/); // new Date().toISOString()
  assert.deepEqual(env.payloads[0], { ...env.payloads[0], dataname: 'm', payload_type: 'text', transport: 'direct', encoding: 'base64', size: 2, data: 'aGk=' });
  const [env2] = await msghandler.smartpack('a.b', [], { is_publish: false, msg_id: 'M', correlation_id: 'C', reply_to: 'r', sender_name: 's' });
  assert.deepEqual([env2.msg_id, env2.correlation_id, env2.reply_to, env2.sender_name], ['M', 'C', 'r', 's']);
  assert.notEqual(env.correlation_id, (await msghandler.smartpack('a', [], { is_publish: false }))[0].correlation_id);
});

test('transport: direct below size_threshold (500_000), link at it, through the upload handler', async () => {
  assert.equal(mh.chooseTransport(499_999, 500_000), 'direct');
  assert.equal(mh.chooseTransport(500_000, 500_000), 'link');
  const uploads = [];
  const handler = async (fileserver_url, dataname, bytes) => {
    uploads.push([fileserver_url, dataname, bytes.length]);
    return uploads.length === 1 ? { url: 'http://fs/one' } : 'http://fs/two'; // an object with url, or the URL
  };
  const data = [['small', new Uint8Array(499_999), 'binary'], ['big', new Uint8Array(500_000), 'binary'], ['t', 'x'.repeat(10), 'text']];
  const [env] = await msghandler.smartpack('s', data, { is_publish: false, fileserver_upload_handler: handler, fileserver_url: 'http://fs' });
  assert.deepEqual(env.payloads.map((p) => p.transport), ['direct', 'link', 'direct']);
  assert.deepEqual(uploads, [['http://fs', 'big', 500_000]]);
  assert.deepEqual(env.payloads[1], { ...env.payloads[1], encoding: 'none', size: 500_000, data: 'http://fs/one' });
  const [env2] = await msghandler.smartpack('s', data, { is_publish: false, fileserver_upload_handler: handler, size_threshold: 5 });
  assert.deepEqual(env2.payloads.map((p) => [p.transport, p.data]), [['link', 'http://fs/two'], ['link', 'http://fs/two'], ['link', 'http://fs/two']]);
});

test('every 004 payload type round-trips through smartunpack', async () => {
  const bytes = Uint8Array.from([0, 1, 2, 255]);
  const data = [['t', 'héllo 🚀\u0000', 'text'], ['d', { a: [1, 2.5, null, true], 'ü': {} }, 'dictionary'],
    ['j', [{ id: 1, v: null }], 'jsontable'], ['a', ROWS, 'arrowtable'],
    ['i', bytes, 'image'], ['au', bytes, 'audio'], ['v', bytes, 'video'], ['b', new Uint8Array(0), 'binary']];
  const [, json] = await msghandler.smartpack('s', data, { is_publish: false });
  const env = await msghandler.smartunpack(json);
  assert.deepEqual(env.payloads.map(([n, , t]) => [n, t]), data.map(([n, , t]) => [n, t]));
  const got = Object.fromEntries(env.payloads.map(([n, v]) => [n, v]));
  assert.equal(got.t, 'héllo 🚀\u0000');
  assert.deepEqual(got.d, data[1][1]);
  assert.deepEqual(got.j, data[2][1]);
  assert.deepEqual(got.a, [{ id: 1n, name: 'Alice', score: 95.5, active: true }, { id: 2n, name: null, score: 88, active: false }]);
  for (const k of ['i', 'au', 'v']) assert.deepEqual(new Uint8Array(got[k]), bytes);
  assert.equal(got.b.length, 0);
  assert.equal(typeof got.i.readUInt8, 'function'); // binary kinds come back as Buffers
});

test('arrowtable: IPC stream from rows (Int64 for all-integer columns), file format read too', () => {
  const ipc = mh.serializePayload('arrowtable', ROWS);
  assert.notEqual(Buffer.from(ipc.subarray(0, 6)).toString('latin1'), 'ARROW1');
  const t = tableFromIPC(ipc);
  assert.deepEqual(t.schema.fields.map((f) => [f.name, String(f.type)]), [['id', 'Int64'], ['name', 'Utf8'], ['score', 'Float64'], ['active', 'Bool']]);
  const file = tableToIPC(mh.rowsToTable(ROWS), 'file');
  assert.equal(Buffer.from(file.subarray(0, 6)).toString('latin1'), 'ARROW1');
  assert.deepEqual(mh.deserializePayload('arrowtable', file), mh.deserializePayload('arrowtable', ipc));
  assert.equal(mh.rowsToTable(t), t); // an apache-arrow Table passes through
  assert.throws(() => mh.serializePayload('arrowtable', { not: 'rows' }), /arrowtable/);
});

test('`table` (the 000 name) and other unknown types are errors both ways, naming payload_type', async () => {
  await assert.rejects(msghandler.smartpack('s', [['x', ROWS, 'table']], { is_publish: false }), /payload_type: unknown payload type "table"/);
  const env = { timestamp: '2024-01-15T10:30:00Z', payloads: [{ dataname: 'x', payload_type: 'table', transport: 'direct', size: 2, data: 'aGk=' }] };
  await assert.rejects(msghandler.smartunpack(JSON.stringify(env)), /payload_type: unknown payload type "table"/);
  env.payloads[0].payload_type = 'sensor';
  await assert.rejects(msghandler.smartunpack(JSON.stringify(env)), /payload_type/);
});

test('smartunpack: errors that name the field, and what the seed leaves unchecked', async () => {
  await assert.rejects(msghandler.smartunpack('{}'), /^Error: payloads/);
  await assert.rejects(msghandler.smartunpack('not json'), /envelope: not JSON/);
  await assert.rejects(msghandler.smartunpack({ data: Buffer.from('[1]') }), /payloads/);
  const rec = { dataname: 'm', payload_type: 'text', transport: 'carrier-pigeon', data: 'aGk=' };
  await assert.rejects(msghandler.smartunpack(JSON.stringify({ payloads: [rec] })), /transport: unknown transport "carrier-pigeon"/);
  await assert.rejects(msghandler.smartunpack(JSON.stringify({ payloads: [{ ...rec, transport: 'direct', data: 5 }] })), /^Error: data/);
  // Node's base64 decoder: line breaks are fine, junk is skipped; `size` is not checked; fields stay as sent.
  const lenient = { msg_id: 'X', extra: 1, payloads: [{ payload_type: 'text', transport: 'direct', size: 99, data: 'SGVs\nbG8=\n' }] };
  const env = await msghandler.smartunpack(JSON.stringify(lenient));
  assert.deepEqual(env.payloads, [[undefined, 'Hello', 'text']]);
  assert.equal(env.extra, 1);
  assert.equal(env.timestamp, undefined);
  const junk = await msghandler.smartunpack(JSON.stringify({ payloads: [{ ...lenient.payloads[0], payload_type: 'binary', data: 'a$b!' }] }));
  assert.equal(junk.payloads[0][1].length, 1);
});

test('smartunpack calls the download handler with (url, max_retries, base_delay, max_delay)', async () => {
  const seen = [];
  const handler = async (...args) => { seen.push(args); return Buffer.from('{"k":1}'); };
  const env = { payloads: [{ dataname: 'd', payload_type: 'dictionary', transport: 'link', encoding: 'none', size: 7, data: 'http://fs/x' }] };
  const back = await msghandler.smartunpack(JSON.stringify(env), { fileserver_download_handler: handler });
  assert.deepEqual(seen, [['http://fs/x', 5, 100, 5000]]);
  assert.deepEqual(back.payloads, [['d', { k: 1 }, 'dictionary']]);
  await msghandler.smartunpack(JSON.stringify(env), { fileserver_download_handler: handler, max_retries: 3, base_delay: 10, max_delay: 1000 });
  assert.deepEqual(seen[1], ['http://fs/x', 3, 10, 1000]);
});

test('backoff: max_retries tries in all, waits min(base_delay * 2^(n-2), max_delay), no jitter', () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => mh.backoffDelay(n)), [0, 100, 200, 400, 800]);
  assert.equal(mh.backoffDelay(9, 100, 5000), 5000);
  assert.equal(mh.backoffDelay(3, 100, 150), 150);
});

test('fetchWithBackoff retries every failure, then gives up naming the link', async () => {
  await withFakeFetch((url, init, n) => (n < 3 ? new Response('busy', { status: 503 }) : new Response(Uint8Array.from([7, 8]))), async (calls) => {
    const got = await msghandler.fetchWithBackoff('http://fs/f', 5, 1, 5);
    assert.deepEqual([...got], [7, 8]);
    assert.equal(calls.length, 3);
    assert.match(calls[0].init.headers['User-Agent'], /^plik_client\//);
  });
  await withFakeFetch(() => new Response('file x (y) is not available : removed', { status: 404 }), async (calls) => {
    await assert.rejects(msghandler.fetchWithBackoff('http://fs/gone', 4, 1, 2), /link: GET http:\/\/fs\/gone failed after 4 tries: HTTP 404/);
    assert.equal(calls.length, 4); // even a final 404 is retried: the seed names no exception
  });
  await withFakeFetch(() => { throw new TypeError('fetch failed'); }, async () => {
    await assert.rejects(msghandler.fetchWithBackoff('http://fs/down', 2, 1, 1), /failed after 2 tries: fetch failed/);
  });
});

test('plikOneshotUpload speaks Plik: POST /upload {oneShot}, POST /file/{id} multipart with the token', async () => {
  const respond = (url) => (url.endsWith('/upload')
    ? Response.json({ id: 'U'.repeat(16), uploadToken: 'TOK' })
    : Response.json({ id: 'F'.repeat(16), fileName: 'my file', fileSize: 3, status: 'uploaded' }));
  await withFakeFetch(respond, async (calls) => {
    const res = await msghandler.plikOneshotUpload('http://fs:8080/', 'my file', Uint8Array.from([1, 2, 3]));
    assert.deepEqual(res, { status: 200, uploadid: 'U'.repeat(16), fileid: 'F'.repeat(16), url: `http://fs:8080/file/${'U'.repeat(16)}/${'F'.repeat(16)}/my%20file` });
    assert.equal(calls[0].url, 'http://fs:8080/upload');
    assert.deepEqual(JSON.parse(calls[0].init.body), { oneShot: true });
    assert.equal(calls[1].url, `http://fs:8080/file/${'U'.repeat(16)}`);
    assert.equal(calls[1].init.headers['X-UploadToken'], 'TOK');
    const part = calls[1].init.body.get('file');
    assert.equal(part.name, 'my file');
    assert.deepEqual([...new Uint8Array(await part.arrayBuffer())], [1, 2, 3]);
  });
  await withFakeFetch(() => new Response('upload not found', { status: 404 }), async () => {
    await assert.rejects(msghandler.plikOneshotUpload('http://fs', 'x', new Uint8Array(1)), /upload: POST http:\/\/fs\/upload: HTTP 404: upload not found/);
  });
});

test('driver: spec files in the seed value types; Date.parse decides the timestamp', () => {
  const [[name, bytes, type]] = loadSpec(join(cases, 'image.json'));
  assert.deepEqual([name, type, bytes.length], ['user_avatar', 'image', 20000]);
  assert.deepEqual(new Uint8Array(bytes), xorshiftBytes(20000, 11));
  const [[, rows, t2]] = loadSpec(join(cases, 'arrowtable.json'));
  assert.equal(t2, 'arrowtable');
  assert.ok(Array.isArray(rows) && rows.length === 4);
  for (const ok of ['2024-01-15T10:30:00.123Z', '2024-01-15T10:30:00', '2024-01-15T10:30:00.37', '2024-01-15T10:30:00+05:30',
    '2024-01-15T10:30:00.123456789+05:30', new Date().toISOString()]) assert.equal(timestampError(ok), null, ok);
  assert.match(timestampError('15/01/2024 10:30'), /^timestamp: /);
  assert.match(timestampError(undefined), /^timestamp: .*null/);
});
