// msghandler_seed.mjs - the Node.js msghandler peer (`src/msghandler_ssr.js`) transcribed from the
// newer seed's JavaScript (Node.js) API text (shared/seeds/004_*.txt), for natsbridge's interop
// matrix. It is NOT tests/interop/node/msghandler.mjs: that one was written next to the Rust peer and
// follows shared/SPEC.md; this one does what the seed text says and nothing more, keeping the
// seed's behaviour where it is odd, so the matrix shows how a peer in the field built from the
// seed treats us. No code is copied from anywhere.
//
//   import msghandler from './msghandler_seed.mjs';
//   const [env, env_json_str] = await msghandler.smartpack(subject, data, { ...options });
//   const env = await msghandler.smartunpack(msg, { ...options });
//   data and env.payloads: [[dataname, data, type], ...]
//
// smartpack options and their seed defaults (004, "JavaScript (Node.js)"):
//   broker_url 'nats://localhost:4222', fileserver_url 'http://localhost:8080',
//   fileserver_upload_handler plikOneshotUpload, size_threshold 500_000, correlation_id uuidv4(),
//   msg_purpose 'chat', sender_name 'msghandler', receiver_name '', receiver_id '', reply_to '',
//   reply_to_msg_id '', is_publish true, nats_connection null, msg_id uuidv4(), sender_id uuidv4()
// smartunpack options: fileserver_download_handler fetchWithBackoff, max_retries 5,
//   base_delay 100, max_delay 5000.
//
// Payload types are the eight of the 004 table: text (string), dictionary (Object/Array, JSON),
// arrowtable (Array<Object> rows or an apache-arrow Table -> Arrow IPC stream via tableToIPC;
// received as Array<Object> rows via tableFromIPC), jsontable (Array<Object>, JSON), image, audio,
// video, binary (Uint8Array/Buffer, raw bytes).
//
// Choices where the seed is silent or vague (each one deliberate; see also peer.mjs):
// - `table` (the older seed's name) is not in 004's type table, so it is an unknown type here:
//   smartpack throws, smartunpack throws for the envelope. Unknown types are errors both ways.
// - Transport: direct when the serialized byte length < size_threshold, else link ("< 500KB" /
//   "≥ 500KB"). No check against the server's max_payload and no fallback to link: an envelope
//   over it fails in nats.js's publish, as it would for the seed.
// - Timestamps sent: `new Date().toISOString()` (UTC, milliseconds, `Z`). smartunpack does not
//   parse timestamps (the seed hands `timestamp` back as a string); the driver does.
// - Ids: `crypto.randomUUID()` (UUID v4; the seed's `uuidv4()` from the `uuid` package).
// - `metadata` is always `{}` on send (the seed has no option for it); received envelopes are
//   handed back as parsed, with `payloads` replaced: missing fields stay missing (undefined).
// - Receive: base64 via `Buffer.from(data, 'base64')` (Node's lenient decoder: line breaks and
//   junk characters are skipped, never an error); text via `Buffer#toString('utf8')` (bad UTF-8
//   becomes U+FFFD, a BOM is kept); `size` is not checked (the seed never says what it is for);
//   `dataname` is passed through even when missing. Arrow IPC: tableFromIPC, which also reads the
//   file format. Missing `payloads`, an unknown `transport`, a non-string direct `data` and an
//   unknown `payload_type` are errors naming the field.
// - Arrow from rows: columns are the keys of the rows in first-seen order; a column whose
//   non-null values are all integers becomes Int64, all numbers Float64, all booleans Bool, else
//   Utf8 (non-strings as JSON text). Int64 cells come back as BigInt.
// - plikOneshotUpload(fileserver_url, dataname, data) -> { status, uploadid, fileid, url }, using
//   Plik's API (POST /upload {"oneShot": true}; POST /file/{id} multipart `file`, X-UploadToken)
//   with a `plik_client/...` User-Agent. A handler may also return the URL as a plain string.
// - fetchWithBackoff(url, max_retries, base_delay, max_delay): `max_retries` tries in all; before
//   try n (n >= 2) it waits min(base_delay * 2^(n-2), max_delay) ms, no jitter; every failure
//   (network error or any non-2xx status, including Plik's final 404 for a consumed one-shot
//   file) is retried alike, since the seed names no exceptions. Redirects are followed (fetch's
//   default); the plik_client User-Agent keeps Plik from redirecting failed GETs.
// - smartpack publishes with nats_connection when given (no flush: the caller drains), else
//   connects to broker_url, publishes and drains that connection.

import { randomUUID } from 'node:crypto';
import { connect } from 'nats';
import {
  Table, tableToIPC, tableFromIPC, vectorFromArray, Int64, Float64, Utf8, Bool,
} from 'apache-arrow';

export const USER_AGENT = 'plik_client/msghandler-seed-node';
export const PAYLOAD_TYPES = ['text', 'dictionary', 'arrowtable', 'jsontable', 'image', 'audio', 'video', 'binary'];
const BINARY_TYPES = ['image', 'audio', 'video', 'binary'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ Arrow

function columnVector(values) {
  const present = values.filter((v) => v !== null && v !== undefined);
  const orNull = (f) => values.map((v) => (v === null || v === undefined ? null : f(v)));
  if (present.length > 0 && present.every((v) => typeof v === 'bigint' || Number.isInteger(v))) {
    return vectorFromArray(orNull((v) => BigInt(v)), new Int64());
  }
  if (present.length > 0 && present.every((v) => typeof v === 'number' || typeof v === 'bigint')) {
    return vectorFromArray(orNull((v) => Number(v)), new Float64());
  }
  if (present.length > 0 && present.every((v) => typeof v === 'boolean')) {
    return vectorFromArray(orNull((v) => v), new Bool());
  }
  return vectorFromArray(orNull((v) => (typeof v === 'string' ? v : JSON.stringify(v))), new Utf8());
}

/** Array<Object> rows -> apache-arrow Table (an arrow Table passes through). */
export function rowsToTable(rows) {
  if (rows instanceof Table) return rows;
  if (!Array.isArray(rows)) throw new Error('arrowtable: data must be Array<Object> or an apache-arrow Table');
  const columns = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const vectors = {};
  for (const c of columns) vectors[c] = columnVector(rows.map((row) => row[c]));
  return new Table(vectors);
}

/** Arrow IPC bytes -> Array<Object> rows (keys in schema order). */
export function tableToRows(bytes) {
  return tableFromIPC(bytes).toArray().map((row) => row.toJSON());
}

// ------------------------------------------------------------------ payload bytes

/** A payload value -> its serialized bytes (before base64), by payload type. */
export function serializePayload(type, data) {
  switch (type) {
    case 'text': return Buffer.from(String(data), 'utf8');
    case 'dictionary': return Buffer.from(JSON.stringify(data), 'utf8');
    case 'jsontable': return Buffer.from(JSON.stringify(data), 'utf8');
    case 'arrowtable': return tableToIPC(rowsToTable(data), 'stream');
    case 'image': case 'audio': case 'video': case 'binary':
      if (data instanceof Uint8Array) return data;
      if (data instanceof ArrayBuffer) return new Uint8Array(data);
      throw new Error(`${type}: data must be a Uint8Array or Buffer`);
    default:
      throw new Error(`payload_type: unknown payload type ${JSON.stringify(type)}`);
  }
}

/** Serialized bytes -> the value smartunpack hands back, by payload type. */
export function deserializePayload(type, bytes) {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 'text': return buf.toString('utf8');
    case 'dictionary': return JSON.parse(buf.toString('utf8'));
    case 'jsontable': return JSON.parse(buf.toString('utf8'));
    case 'arrowtable': return tableToRows(buf);
    case 'image': case 'audio': case 'video': case 'binary': return buf;
    default:
      throw new Error(`payload_type: unknown payload type ${JSON.stringify(type)}`);
  }
}

/** Direct (< size_threshold) or link (>= size_threshold). */
export function chooseTransport(size, size_threshold) {
  return size < size_threshold ? 'direct' : 'link';
}

// ------------------------------------------------------------------ file server handlers

/** Plik one-shot upload: returns { status, uploadid, fileid, url }. */
export async function plikOneshotUpload(fileserver_url, dataname, data) {
  const base = String(fileserver_url).replace(/\/+$/, '');
  const r1 = await fetch(`${base}/upload`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'User-Agent': USER_AGENT },
    body: JSON.stringify({ oneShot: true }),
  });
  const t1 = await r1.text();
  if (!r1.ok) throw new Error(`upload: POST ${base}/upload: HTTP ${r1.status}: ${t1.trim()}`);
  const upload = JSON.parse(t1);
  const form = new FormData();
  form.append('file', new Blob([data], { type: 'application/octet-stream' }), dataname);
  const r2 = await fetch(`${base}/file/${upload.id}`, {
    method: 'POST',
    headers: { 'X-UploadToken': upload.uploadToken, 'User-Agent': USER_AGENT },
    body: form,
  });
  const t2 = await r2.text();
  if (!r2.ok) throw new Error(`upload: POST ${base}/file/${upload.id}: HTTP ${r2.status}: ${t2.trim()}`);
  const file = JSON.parse(t2);
  const url = `${base}/file/${upload.id}/${file.id}/${encodeURIComponent(file.fileName)}`;
  return { status: r2.status, uploadid: upload.id, fileid: file.id, url };
}

/** Wait before try `attempt` (1-based; none before the first). */
export function backoffDelay(attempt, base_delay = 100, max_delay = 5000) {
  if (attempt <= 1) return 0;
  return Math.min(base_delay * 2 ** (attempt - 2), max_delay);
}

/** GET url with exponential backoff: max_retries tries in all; resolves to a Buffer. */
export async function fetchWithBackoff(url, max_retries = 5, base_delay = 100, max_delay = 5000) {
  let lastError = null;
  for (let attempt = 1; attempt <= max_retries; attempt++) {
    await sleep(backoffDelay(attempt, base_delay, max_delay));
    try {
      const r = await fetch(url, { headers: { 'User-Agent': USER_AGENT } });
      if (r.ok) return Buffer.from(await r.arrayBuffer());
      const body = await r.text().catch(() => '');
      lastError = new Error(`HTTP ${r.status}: ${body.trim().slice(0, 200)}`);
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`link: GET ${url} failed after ${max_retries} tries: ${lastError && lastError.message}`);
}

// ------------------------------------------------------------------ smartpack / smartunpack

export async function smartpack(subject, data, {
  broker_url = 'nats://localhost:4222',
  fileserver_url = 'http://localhost:8080',
  fileserver_upload_handler = plikOneshotUpload,
  size_threshold = 500_000,
  correlation_id = randomUUID(),
  msg_purpose = 'chat',
  sender_name = 'msghandler',
  receiver_name = '',
  receiver_id = '',
  reply_to = '',
  reply_to_msg_id = '',
  is_publish = true,
  nats_connection = null,
  msg_id = randomUUID(),
  sender_id = randomUUID(),
} = {}) {
  const payloads = [];
  for (const [dataname, value, type] of data) {
    const bytes = serializePayload(type, value);
    if (chooseTransport(bytes.length, size_threshold) === 'direct') {
      payloads.push({
        id: randomUUID(), dataname, payload_type: type, transport: 'direct', encoding: 'base64',
        size: bytes.length, data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
      });
    } else {
      const res = await fileserver_upload_handler(fileserver_url, dataname, bytes);
      payloads.push({
        id: randomUUID(), dataname, payload_type: type, transport: 'link', encoding: 'none',
        size: bytes.length, data: typeof res === 'string' ? res : res.url,
      });
    }
  }
  const env = {
    correlation_id,
    msg_id,
    timestamp: new Date().toISOString(),
    send_to: subject,
    msg_purpose,
    sender_name,
    sender_id,
    receiver_name,
    receiver_id,
    reply_to,
    reply_to_msg_id,
    broker_url,
    metadata: {},
    payloads,
  };
  const env_json_str = JSON.stringify(env);
  if (is_publish) {
    if (nats_connection) {
      nats_connection.publish(subject, env_json_str);
    } else {
      const nc = await connect({ servers: broker_url });
      try { nc.publish(subject, env_json_str); } finally { await nc.drain(); }
    }
  }
  return [env, env_json_str];
}

export async function smartunpack(msg, {
  fileserver_download_handler = fetchWithBackoff,
  max_retries = 5,
  base_delay = 100,
  max_delay = 5000,
} = {}) {
  let env;
  try {
    env = typeof msg === 'string' ? JSON.parse(msg)
      : typeof msg.json === 'function' ? msg.json()
        : JSON.parse(Buffer.from(msg.data).toString('utf8'));
  } catch (e) {
    throw new Error(`envelope: not JSON: ${e.message}`);
  }
  if (env === null || typeof env !== 'object' || !Array.isArray(env.payloads)) {
    throw new Error('payloads: the envelope has no payloads array');
  }
  const payloads = [];
  for (const p of env.payloads) {
    let bytes;
    if (p.transport === 'direct') {
      if (typeof p.data !== 'string') throw new Error(`data: direct payload ${JSON.stringify(p.dataname)} has no base64 string`);
      bytes = Buffer.from(p.data, 'base64');
    } else if (p.transport === 'link') {
      bytes = await fileserver_download_handler(p.data, max_retries, base_delay, max_delay);
    } else {
      throw new Error(`transport: unknown transport ${JSON.stringify(p.transport)} for payload ${JSON.stringify(p.dataname)}`);
    }
    payloads.push([p.dataname, deserializePayload(p.payload_type, bytes), p.payload_type]);
  }
  return { ...env, payloads };
}

export default { smartpack, smartunpack, plikOneshotUpload, fetchWithBackoff };
