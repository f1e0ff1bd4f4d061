// msghandler (Node.js) - the JavaScript server-side peer of the NATS message bridge,
// for natsbridge's interop matrix. Written from the seeds' JavaScript API text and
// shared/SPEC.md:
//
//   const [env, envJson] = await smartpack(subject, data, { ...options })   // alias smartsend
//   const env = await smartunpack(msg, { ...options })                       // alias smartreceive
//   await plikOneshotUpload(fileserver_url, dataname, bytes) -> { status, uploadid, fileid, url }
//   await fetchWithBackoff(url, max_retries, base_delay, max_delay, expected_size) -> Uint8Array
//
// data: [[dataname, value, type], ...]; env.payloads: [[dataname, value, type], ...].
// Dependencies: nats, apache-arrow (Node 20's fetch, FormData, Blob, crypto).

import { randomUUID } from 'node:crypto';
import { connect } from 'nats';
import {
  Table, tableToIPC, tableFromIPC, vectorFromArray, Int64, Float64, Utf8, Bool,
} from 'apache-arrow';

export const DEFAULT_SIZE_THRESHOLD = 500_000;
export const DEFAULT_MAX_PAYLOAD = 1_048_576;
export const USER_AGENT = 'plik_client/msghandler-node';
export const BINARY_KINDS = ['image', 'audio', 'video', 'binary'];
export const PAYLOAD_TYPES = ['text', 'dictionary', 'arrowtable', 'table', 'jsontable', ...BINARY_KINDS];
const STRING_FIELDS = ['correlation_id', 'msg_id', 'timestamp', 'send_to', 'msg_purpose', 'sender_name',
  'sender_id', 'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'broker_url'];

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export class MsgHandlerError extends Error {}

// ------------------------------------------------------------------ tables

function inferColumn(values) {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length && present.every((v) => typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)))) {
    return vectorFromArray(values.map((v) => (v === null || v === undefined ? null : BigInt(v))), new Int64());
  }
  if (present.length && present.every((v) => typeof v === 'number' || typeof v === 'bigint')) {
    return vectorFromArray(values.map((v) => (v === null || v === undefined ? null : Number(v))), new Float64());
  }
  if (present.length && present.every((v) => typeof v === 'boolean')) {
    return vectorFromArray(values.map((v) => (v === undefined ? null : v)), new Bool());
  }
  return vectorFromArray(values.map((v) => (v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v))), new Utf8());
}

/** Array<Object> rows (or an arrow Table) -> arrow Table. */
export function toArrowTable(data) {
  if (data instanceof Table) return data;
  if (!Array.isArray(data)) throw new MsgHandlerError('arrowtable payload must be Array<Object> or an arrow Table');
  const cols = [];
  for (const row of data) for (const k of Object.keys(row)) if (!cols.includes(k)) cols.push(k);
  const vectors = {};
  for (const c of cols) vectors[c] = inferColumn(data.map((r) => r[c]));
  return new Table(vectors);
}

/** Arrow IPC (stream or file) -> Array<Object> rows with a non-enumerable `columns` list. */
export function arrowToRows(bytes) {
  const t = tableFromIPC(bytes);
  const columns = t.schema.fields.map((f) => f.name);
  const children = columns.map((_, i) => t.getChildAt(i));
  const rows = new Array(t.numRows);
  for (let r = 0; r < t.numRows; r++) {
    const o = {};
    columns.forEach((c, i) => { o[c] = children[i].get(r); });
    rows[r] = o;
  }
  Object.defineProperty(rows, 'columns', { value: columns, enumerable: false });
  return rows;
}

// ------------------------------------------------------------------ serialization

function toBytes(v, what) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new MsgHandlerError(`${what} payload must be Uint8Array/Buffer`);
}

export function serialize(type, data) {
  switch (type) {
    case 'text':
      if (typeof data !== 'string') throw new MsgHandlerError('text payload must be a string');
      return enc.encode(data);
    case 'dictionary':
      return enc.encode(JSON.stringify(data));
    case 'jsontable':
      return enc.encode(JSON.stringify(data));
    case 'arrowtable':
    case 'table':
      return tableToIPC(toArrowTable(data), 'stream');
    default:
      if (BINARY_KINDS.includes(type)) return toBytes(data, type);
      throw new MsgHandlerError(`unknown payload_type ${JSON.stringify(type)}`);
  }
}

export function deserialize(type, bytes) {
  switch (type) {
    case 'text': return dec.decode(bytes);
    case 'dictionary':
    case 'jsontable': return JSON.parse(dec.decode(bytes));
    case 'arrowtable':
    case 'table': return arrowToRows(bytes);
    default:
      if (BINARY_KINDS.includes(type)) return bytes;
      throw new MsgHandlerError(`unknown payload_type ${JSON.stringify(type)}`);
  }
}

function b64encode(u8) { return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64'); }

function b64decode(s) {
  const clean = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) throw new MsgHandlerError('bad base64 in direct payload');
  const b = Buffer.from(clean, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function utcTimestamp() { return new Date().toISOString(); } // 2024-01-15T10:30:00.123Z

// ------------------------------------------------------------------ file server handlers

export async function plikOneshotUpload(fileserver_url, dataname, data) {
  const base = fileserver_url.replace(/\/+$/, '');
  let r = await fetch(`${base}/upload`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'User-Agent': USER_AGENT },
    body: JSON.stringify({ oneShot: true }),
  });
  let text = await r.text();
  if (r.status !== 200) throw new MsgHandlerError(`plik POST /upload: HTTP ${r.status}: ${text.trim()}`);
  const upload = JSON.parse(text);
  const form = new FormData();
  form.append('file', new Blob([data], { type: 'application/octet-stream' }), dataname || 'data');
  r = await fetch(`${base}/file/${upload.id}`, {
    method: 'POST', headers: { 'X-UploadToken': upload.uploadToken, 'User-Agent': USER_AGENT }, body: form,
  });
  text = await r.text();
  if (r.status !== 200) throw new MsgHandlerError(`plik POST /file/${upload.id}: HTTP ${r.status}: ${text.trim()}`);
  const f = JSON.parse(text);
  const url = `${base}/file/${upload.id}/${f.id}/${encodeURIComponent(f.fileName)}`;
  return { status: 200, uploadid: upload.id, fileid: f.id, url };
}

function retryable(status, body) {
  if (status >= 500 || status === 429 || status === 408) return true;
  return status === 404 && /not available : (missing|uploading)/.test(body);
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

export async function fetchWithBackoff(url, max_retries = 5, base_delay = 100, max_delay = 5000, expected_size = undefined) {
  let last;
  for (let attempt = 0; attempt <= max_retries; attempt++) {
    if (attempt > 0) await sleep(Math.min(base_delay * 2 ** attempt, max_delay) * (0.5 + Math.random() / 2));
    let r;
    try {
      r = await fetch(url, { redirect: 'manual', headers: { 'User-Agent': USER_AGENT }, signal: AbortSignal.timeout(60_000) });
    } catch (e) {
      last = new MsgHandlerError(`GET ${url}: ${e.message}`);
      continue;
    }
    if (r.status === 200) {
      const body = new Uint8Array(await r.arrayBuffer());
      if (expected_size !== undefined && expected_size !== null && body.length !== expected_size) {
        throw new MsgHandlerError(`GET ${url}: got ${body.length} bytes, envelope says size ${expected_size}`);
      }
      return body;
    }
    const text = await r.text().catch(() => '');
    if (r.status >= 300 && r.status < 400) throw new MsgHandlerError(`GET ${url}: HTTP ${r.status} redirect to ${r.headers.get('location')}`);
    const err = new MsgHandlerError(`GET ${url}: HTTP ${r.status}: ${text.trim().slice(0, 200)}`);
    if (!retryable(r.status, text)) throw err;
    last = err;
  }
  throw new MsgHandlerError(`download failed after ${max_retries + 1} tries: ${last && last.message}`);
}

// ------------------------------------------------------------------ pack / send

function record(dataname, payload_type, transport, size, data) {
  return {
    id: randomUUID(), dataname, payload_type, transport,
    encoding: transport === 'direct' ? 'base64' : 'none', size, data,
  };
}

async function upload(handler, fileserver_url, dataname, bytes) {
  const res = await handler(fileserver_url, dataname, bytes);
  return typeof res === 'string' ? res : res.url;
}

export async function smartpack(subject, data, options = {}) {
  const o = {
    broker_url: 'nats://localhost:4222',
    fileserver_url: 'http://localhost:8080',
    fileserver_upload_handler: plikOneshotUpload,
    size_threshold: DEFAULT_SIZE_THRESHOLD,
    correlation_id: undefined,
    msg_purpose: 'chat',
    sender_name: 'msghandler',
    receiver_name: '',
    receiver_id: '',
    reply_to: '',
    reply_to_msg_id: '',
    is_publish: true,
    nats_connection: null,
    msg_id: undefined,
    sender_id: undefined,
    metadata: undefined,
    max_payload: undefined,
    ...options,
  };
  const serialized = data.map(([dataname, value, type]) => {
    if (!PAYLOAD_TYPES.includes(type)) throw new MsgHandlerError(`unknown payload_type ${JSON.stringify(type)} for ${dataname}`);
    return [dataname, type, serialize(type, value)];
  });
  const records = [];
  for (const [dataname, type, bytes] of serialized) {
    if (bytes.length < o.size_threshold) records.push(record(dataname, type, 'direct', bytes.length, b64encode(bytes)));
    else records.push(record(dataname, type, 'link', bytes.length, await upload(o.fileserver_upload_handler, o.fileserver_url, dataname, bytes)));
  }
  const env = {
    correlation_id: o.correlation_id || randomUUID(),
    msg_id: o.msg_id || randomUUID(),
    timestamp: utcTimestamp(),
    send_to: subject,
    msg_purpose: o.msg_purpose,
    sender_name: o.sender_name,
    sender_id: o.sender_id || randomUUID(),
    receiver_name: o.receiver_name,
    receiver_id: o.receiver_id,
    reply_to: o.reply_to,
    reply_to_msg_id: o.reply_to_msg_id,
    broker_url: o.broker_url,
    metadata: o.metadata || {},
    payloads: records,
  };
  let nc = o.nats_connection;
  let own = null;
  if (o.is_publish && !nc) own = nc = await connect({ servers: o.broker_url });
  try {
    const limit = o.max_payload || (nc && nc.info && nc.info.max_payload) || DEFAULT_MAX_PAYLOAD;
    let json = JSON.stringify(env);
    while (Buffer.byteLength(json) > limit) {
      let best = -1;
      records.forEach((r, i) => { if (r.transport === 'direct' && r.size > 0 && (best < 0 || r.size > records[best].size)) best = i; });
      if (best < 0) throw new MsgHandlerError(`envelope is ${Buffer.byteLength(json)} bytes, over the server's max_payload ${limit}, and no payload is left to move to link transport`);
      const [dataname, , bytes] = serialized[best];
      const url = await upload(o.fileserver_upload_handler, o.fileserver_url, dataname, bytes);
      records[best] = { ...records[best], transport: 'link', encoding: 'none', data: url };
      env.payloads = records;
      json = JSON.stringify(env);
    }
    if (o.is_publish) {
      nc.publish(subject, enc.encode(json));
      await nc.flush();
    }
    return [env, json];
  } finally {
    if (own) await own.drain();
  }
}
export const smartsend = smartpack;

// ------------------------------------------------------------------ unpack / receive

function need(obj, key, where) {
  if (!(key in obj)) throw new MsgHandlerError(`${where} is missing required field ${JSON.stringify(key)}`);
  return obj[key];
}

/** Lower level than smartunpack: [env, [{...record, raw, value}]]. */
export async function unpackRecords(msg, options = {}) {
  const o = { fileserver_download_handler: fetchWithBackoff, max_retries: 5, base_delay: 100, max_delay: 5000, ...options };
  let body = msg && msg.data !== undefined ? msg.data : msg;
  if (body instanceof Uint8Array) body = dec.decode(body);
  const envIn = typeof body === 'string' ? JSON.parse(body) : body;
  if (!envIn || typeof envIn !== 'object' || Array.isArray(envIn)) throw new MsgHandlerError('envelope is not a JSON object');
  const payloads = need(envIn, 'payloads', 'envelope');
  const env = { ...envIn };
  for (const k of STRING_FIELDS) if (env[k] === undefined || env[k] === null) env[k] = '';
  if (!env.metadata || typeof env.metadata !== 'object' || Array.isArray(env.metadata)) env.metadata = {};
  const out = [];
  for (let n = 0; n < payloads.length; n++) {
    const p = payloads[n];
    const where = `payload #${n}`;
    const dataname = need(p, 'dataname', where);
    const type = need(p, 'payload_type', where);
    const transport = need(p, 'transport', where);
    const data = need(p, 'data', where);
    let raw;
    if (transport === 'direct') raw = b64decode(data);
    else if (transport === 'link') {
      raw = o.fileserver_download_handler === fetchWithBackoff
        ? await fetchWithBackoff(data, o.max_retries, o.base_delay, o.max_delay, p.size)
        : await o.fileserver_download_handler(data, o.max_retries, o.base_delay, o.max_delay);
    } else throw new MsgHandlerError(`${where} (${dataname}): unknown transport ${JSON.stringify(transport)}`);
    if (p.size !== undefined && p.size !== null && raw.length !== Number(p.size)) {
      throw new MsgHandlerError(`${where} (${dataname}): ${raw.length} bytes, envelope says size ${p.size}`);
    }
    out.push({ ...p, raw, value: deserialize(type, raw) });
  }
  return [env, out];
}

export async function smartunpack(msg, options = {}) {
  const [env, recs] = await unpackRecords(msg, options);
  env.payloads = recs.map((r) => [r.dataname, r.value, r.payload_type]);
  return env;
}
export const smartreceive = smartunpack;

export default {
  smartpack, smartsend, smartunpack, smartreceive, plikOneshotUpload, fetchWithBackoff,
  serialize, deserialize, unpackRecords,
};
