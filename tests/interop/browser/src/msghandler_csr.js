// msghandler_csr - the browser (client-side) peer of the NATS message bridge, for natsbridge's
// interop matrix. Written from the newer seed's "JavaScript (Browser)" text and shared/SPEC.md:
// NATS over WebSocket (nats.ws), JSON table only (no Arrow in the browser), same envelope.
//
//   const [env, envJson] = await smartpack(subject, data, { broker_url: 'ws://...', ... })
//   const env = await smartunpack(msg, { ... })
//
// Types: text, dictionary, jsontable, image, audio, video, binary. `arrowtable`/`table` are refused
// on send and on receive with an error that says so (the seed: "Browser incompatible").

import { connect } from 'nats.ws';

export const DEFAULT_SIZE_THRESHOLD = 500_000;
export const DEFAULT_MAX_PAYLOAD = 1_048_576;
export const BINARY_KINDS = ['image', 'audio', 'video', 'binary'];
export const PAYLOAD_TYPES = ['text', 'dictionary', 'jsontable', ...BINARY_KINDS];
const STRING_FIELDS = ['correlation_id', 'msg_id', 'timestamp', 'send_to', 'msg_purpose', 'sender_name',
  'sender_id', 'receiver_name', 'receiver_id', 'reply_to', 'reply_to_msg_id', 'broker_url'];

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export class MsgHandlerError extends Error {}

const uuidv4 = () => crypto.randomUUID();

function refuseArrow(type) {
  if (type === 'arrowtable' || type === 'table') {
    throw new MsgHandlerError(`payload_type ${type} (Arrow IPC) is not supported in the browser peer; use jsontable`);
  }
}

function toBytes(v, what) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  throw new MsgHandlerError(`${what} payload must be a Uint8Array`);
}

export function serialize(type, data) {
  refuseArrow(type);
  if (type === 'text') {
    if (typeof data !== 'string') throw new MsgHandlerError('text payload must be a string');
    return enc.encode(data);
  }
  if (type === 'dictionary' || type === 'jsontable') return enc.encode(JSON.stringify(data));
  if (BINARY_KINDS.includes(type)) return toBytes(data, type);
  throw new MsgHandlerError(`unknown payload_type ${JSON.stringify(type)}`);
}

export function deserialize(type, bytes) {
  refuseArrow(type);
  if (type === 'text') return dec.decode(bytes);
  if (type === 'dictionary' || type === 'jsontable') return JSON.parse(dec.decode(bytes));
  if (BINARY_KINDS.includes(type)) return bytes;
  throw new MsgHandlerError(`unknown payload_type ${JSON.stringify(type)}`);
}

export function b64encode(u8) {
  let s = '';
  const CH = 0x8000;
  for (let i = 0; i < u8.length; i += CH) s += String.fromCharCode.apply(null, u8.subarray(i, i + CH));
  return btoa(s);
}

export function b64decode(s) {
  let bin;
  try { bin = atob(s); } catch (e) { throw new MsgHandlerError('bad base64 in direct payload'); } // atob drops ASCII whitespace
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export const utcTimestamp = () => new Date().toISOString();

// ------------------------------------------------------------------ file server handlers
// Browsers cannot set User-Agent: a failed GET on real Plik answers with a redirect to its web page,
// which `redirect: 'manual'` turns into an opaque response, reported as an error (not retried).

export async function plikOneshotUpload(fileserver_url, dataname, data) {
  const base = fileserver_url.replace(/\/+$/, '');
  let r = await fetch(`${base}/upload`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ oneShot: true }),
  });
  let text = await r.text();
  if (r.status !== 200) throw new MsgHandlerError(`plik POST /upload: HTTP ${r.status}: ${text.trim()}`);
  const upload = JSON.parse(text);
  const form = new FormData();
  form.append('file', new Blob([data], { type: 'application/octet-stream' }), dataname || 'data');
  r = await fetch(`${base}/file/${upload.id}`, { method: 'POST', headers: { 'X-UploadToken': upload.uploadToken }, body: form });
  text = await r.text();
  if (r.status !== 200) throw new MsgHandlerError(`plik POST /file/${upload.id}: HTTP ${r.status}: ${text.trim()}`);
  const f = JSON.parse(text);
  return { status: 200, uploadid: upload.id, fileid: f.id, url: `${base}/file/${upload.id}/${f.id}/${encodeURIComponent(f.fileName)}` };
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

export async function fetchWithBackoff(url, max_retries = 5, base_delay = 100, max_delay = 5000, expected_size = undefined) {
  let last;
  for (let attempt = 0; attempt <= max_retries; attempt++) {
    if (attempt > 0) await sleep(Math.min(base_delay * 2 ** attempt, max_delay) * (0.5 + Math.random() / 2));
    let r;
    try {
      r = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(60_000) });
    } catch (e) { last = new MsgHandlerError(`GET ${url}: ${e.message}`); continue; }
    if (r.type === 'opaqueredirect') throw new MsgHandlerError(`GET ${url}: redirected (file server error page)`);
    if (r.status === 200) {
      const body = new Uint8Array(await r.arrayBuffer());
      if (expected_size !== undefined && expected_size !== null && body.length !== expected_size) {
        throw new MsgHandlerError(`GET ${url}: got ${body.length} bytes, envelope says size ${expected_size}`);
      }
      return body;
    }
    const text = await r.text().catch(() => '');
    const err = new MsgHandlerError(`GET ${url}: HTTP ${r.status}: ${text.trim().slice(0, 200)}`);
    const retry = r.status >= 500 || r.status === 429 || r.status === 408 || (r.status === 404 && /not available : (missing|uploading)/.test(text));
    if (!retry) throw err;
    last = err;
  }
  throw new MsgHandlerError(`download failed after ${max_retries + 1} tries: ${last && last.message}`);
}

// ------------------------------------------------------------------ pack / send

function record(dataname, payload_type, transport, size, data) {
  return { id: uuidv4(), dataname, payload_type, transport, encoding: transport === 'direct' ? 'base64' : 'none', size, data };
}

async function upload(handler, fileserver_url, dataname, bytes) {
  const res = await handler(fileserver_url, dataname, bytes);
  return typeof res === 'string' ? res : res.url;
}

export async function smartpack(subject, data, options = {}) {
  const o = {
    broker_url: 'ws://localhost:4222', fileserver_url: 'http://localhost:8080', fileserver_upload_handler: plikOneshotUpload,
    size_threshold: DEFAULT_SIZE_THRESHOLD, correlation_id: undefined, msg_purpose: 'chat', sender_name: 'msghandler',
    receiver_name: '', receiver_id: '', reply_to: '', reply_to_msg_id: '', is_publish: true, nats_connection: null,
    msg_id: undefined, sender_id: undefined, metadata: undefined, max_payload: undefined, ...options,
  };
  const serialized = data.map(([dataname, value, type]) => {
    if (!PAYLOAD_TYPES.includes(type)) { refuseArrow(type); throw new MsgHandlerError(`unknown payload_type ${JSON.stringify(type)}`); }
    return [dataname, type, serialize(type, value)];
  });
  const records = [];
  for (const [dataname, type, bytes] of serialized) {
    if (bytes.length < o.size_threshold) records.push(record(dataname, type, 'direct', bytes.length, b64encode(bytes)));
    else records.push(record(dataname, type, 'link', bytes.length, await upload(o.fileserver_upload_handler, o.fileserver_url, dataname, bytes)));
  }
  const env = {
    correlation_id: o.correlation_id || uuidv4(), msg_id: o.msg_id || uuidv4(), timestamp: utcTimestamp(), send_to: subject,
    msg_purpose: o.msg_purpose, sender_name: o.sender_name, sender_id: o.sender_id || uuidv4(), receiver_name: o.receiver_name,
    receiver_id: o.receiver_id, reply_to: o.reply_to, reply_to_msg_id: o.reply_to_msg_id, broker_url: o.broker_url,
    metadata: o.metadata || {}, payloads: records,
  };
  let nc = o.nats_connection;
  let own = null;
  if (o.is_publish && !nc) own = nc = await connect({ servers: o.broker_url });
  try {
    const limit = o.max_payload || (nc && nc.info && nc.info.max_payload) || DEFAULT_MAX_PAYLOAD;
    let json = JSON.stringify(env);
    while (enc.encode(json).length > limit) {
      let best = -1;
      records.forEach((r, i) => { if (r.transport === 'direct' && r.size > 0 && (best < 0 || r.size > records[best].size)) best = i; });
      if (best < 0) throw new MsgHandlerError(`envelope over the server's max_payload ${limit} and no payload left to move to link transport`);
      const [dataname, , bytes] = serialized[best];
      records[best] = { ...records[best], transport: 'link', encoding: 'none', data: await upload(o.fileserver_upload_handler, o.fileserver_url, dataname, bytes) };
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
    refuseArrow(type);
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

export { connect };

export default {
  smartpack, smartsend, smartunpack, smartreceive, plikOneshotUpload, fetchWithBackoff, unpackRecords,
};
