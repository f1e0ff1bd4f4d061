// Unit checks of the Node peer (no NATS server needed): node --test tests/interop/node/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableToIPC } from 'apache-arrow';
import * as mh from './msghandler.mjs';
import { canonNumber, canonJSON, digestInput, parseTypedJSON, xorshiftBytes } from './canonical.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PY = process.env.PYTHON || join(here, '..', '..', '..', '.venv', 'bin', 'python');

async function withStub(fn) {
  const p = spawn(PY, [join(here, '..', 'python', 'plik_stub.py'), '--port', '0']);
  const [chunk] = await once(p.stdout, 'data');
  const url = chunk.toString().trim().split(' ')[1];
  try { return await fn(url); } finally { p.kill(); }
}

test('canonical numbers match the Python definition', () => {
  const cases = [[1, '1'], [-0, '0'], [95.5, '9.55e1'], [1e20, '1e20'], [10n ** 20n, '1e20'], [-0.001, '-1e-3'],
    [1.5e-7, '1.5e-7'], [2 ** 53, '9007199254740992'], [2n ** 60n, '1.152921504606847e18']];
  for (const [v, want] of cases) assert.equal(canonNumber(v), want, String(v));
  assert.equal(canonJSON({ b: [1, 2.5, null, true], a: 'é\n/', 'ä': {} }), '{"a":"é\\n/","b":[1,2.5e0,null,true],"ä":{}}');
  assert.equal(Buffer.from(xorshiftBytes(8, 11)).toString('hex'), '6b612d000bba0a2c');
});

test('number models: js cannot tell 88 from 88.0, typed can; Arrow cells follow the column type', () => {
  for (const [v, typed, js] of [[88, '8.8e1', '88'], [1, '1e0', '1'], [88n, '88', '88'], [-0, '0e0', '0'], [100, '1e2', '100'], [1e20, '1e20', '1e20']]) {
    assert.deepEqual([canonNumber(v, 'typed'), canonNumber(v, 'js')], [typed, js], String(v));
  }
  const text = '{"a": 88, "b": 88.0, "c": [1.0, 2, 1e20, 100000000000000000000], "d\\u00e9": "x\\"y"}';
  assert.equal(canonJSON(parseTypedJSON(text), 'typed'), '{"a":88,"b":8.8e1,"c":[1e0,2,1e20,1e20],"dé":"x\\"y"}');
  assert.equal(canonJSON(JSON.parse(text)), '{"a":88,"b":88,"c":[1,2,1e20,1e20],"dé":"x\\"y"}');
  const rows = [{ id: 1n, score: 88 }, { id: 2n, score: 95.5 }];
  Object.defineProperty(rows, 'columns', { value: ['id', 'score'], enumerable: false });
  assert.equal(new TextDecoder().decode(digestInput('arrowtable', rows)), '{"columns":["id","score"],"rows":[[1,8.8e1],[2,9.55e1]]}');
});

test('envelope shape and defaults', async () => {
  const [env, json] = await mh.smartpack('a.b', [['m', 'hi', 'text']], { is_publish: false });
  assert.deepEqual(Object.keys(JSON.parse(json)), ['correlation_id', 'msg_id', 'timestamp', 'send_to', 'msg_purpose', 'sender_name',
    'sender_id', 'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'broker_url', 'metadata', 'payloads']);
  assert.deepEqual(Object.keys(env.payloads[0]), ['id', 'dataname', 'payload_type', 'transport', 'encoding', 'size', 'data']);
  assert.match(env.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(env.sender_name, 'msghandler');
});

test('arrow: stream on send, file format and `table` accepted on receive', async () => {
  const rows = [{ id: 1, name: 'x', score: 1.5 }, { id: 2, name: null, score: 2 }];
  const [env, json] = await mh.smartpack('t', [['d', rows, 'arrowtable']], { is_publish: false });
  assert.notEqual(Buffer.from(env.payloads[0].data, 'base64').subarray(0, 6).toString(), 'ARROW1');
  const back = await mh.smartunpack(json);
  assert.deepEqual(back.payloads[0][1].map((r) => ({ ...r, id: Number(r.id) })), rows);
  const file = tableToIPC(mh.toArrowTable(rows), 'file');
  const e2 = JSON.parse(json);
  Object.assign(e2.payloads[0], { payload_type: 'table', size: file.length, data: Buffer.from(file).toString('base64') });
  const back2 = await mh.smartunpack(JSON.stringify(e2));
  assert.equal(back2.payloads[0][1].length, 2);
});

test('lenient base64 and errors that name the field', async () => {
  const b64 = Buffer.from('Hello World').toString('base64');
  const env = { payloads: [{ dataname: 'm', payload_type: 'text', transport: 'direct', size: 11, data: b64.slice(0, 5) + '\n' + b64.slice(5) + '\n' }] };
  const back = await mh.smartunpack(JSON.stringify(env));
  assert.equal(back.payloads[0][1], 'Hello World');
  assert.deepEqual(back.metadata, {});
  await assert.rejects(mh.smartunpack('{}'), /payloads/);
  await assert.rejects(mh.smartunpack(JSON.stringify({ payloads: [{ payload_type: 'text', transport: 'direct', data: '' }] })), /dataname/);
  await assert.rejects(mh.smartunpack(JSON.stringify({ payloads: [{ dataname: 'm', payload_type: 'text', transport: 'direct', size: 3, data: b64 }] })), /size/);
});

test('max_payload: largest direct payload moves to link; one-shot link', async () => {
  await withStub(async (url) => {
    const a = xorshiftBytes(450_000, 1), b = xorshiftBytes(400_000, 2);
    const [env, json] = await mh.smartpack('t', [['a', a, 'binary'], ['b', b, 'binary']], { fileserver_url: url, is_publish: false });
    assert.ok(Buffer.byteLength(json) <= 1_048_576);
    assert.deepEqual(env.payloads.map((p) => p.transport), ['link', 'direct']);
    const back = await mh.smartunpack(json);
    assert.deepEqual(back.payloads[0][1], a);
    await assert.rejects(mh.fetchWithBackoff(env.payloads[0].data), /404/); // consumed, and not retried
  });
});
