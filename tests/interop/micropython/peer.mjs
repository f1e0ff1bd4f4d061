#!/usr/bin/env node
// Command-line driver of the MicroPython peer (contract: tests/interop/README.md and the seed-peer
// contract). The envelopes are built and read by msghandler_mpy.py inside the real MicroPython
// runtime (WebAssembly, npm @micropython/micropython-webassembly-pyscript); Node only carries the
// NATS socket (`nats`), the HTTP GET of link payloads (runtime.mjs), the spec files and the digests.
//   node peer.mjs send    --server URL --subject S [--subject S2 ...] --fileserver URL --spec FILE [options]
//   node peer.mjs listen  --server URL --subject S --count N --timeout SECS
//   node peer.mjs reply   --server URL --subject S --fileserver URL --count N --timeout SECS --echo
//   node peer.mjs request --server URL --subject S --fileserver URL --spec FILE --timeout SECS [--mode reply-to] [--reply-to S]
//
// What this peer does (see msghandler_mpy.py's header for the reasons):
// - sends direct only: a payload whose serialized size is at or over --size-threshold (default
//   100000) fails the send with an error naming it (exit 1, nothing published). --fileserver is
//   accepted and unused on send (the seed's MicroPython smartpack has no upload handler).
// - receives direct and link (download retry profile 3 / 100 ms / 1000 ms); text, dictionary,
//   jsontable, image, audio, video, binary. arrowtable / table or any other type: error line.
// - timestamps sent: time.localtime() as YYYY-MM-DDTHH:MM:SS (no fraction, no zone); received ones
//   must be YYYY-MM-DDTHH:MM:SS[.fff...][Z] (checked by hand in MicroPython), else the message is
//   reported as {"subject", "error": "timestamp: ..."}.
// - reply --echo is the seeds' Example 4 responder: it answers env["reply_to"] only, with a fresh
//   envelope (no correlation_id or reply_to_msg_id copied), never the NATS reply inbox.
// - request: --mode reply-to only; matched = the answer's reply_to_msg_id is empty or the
//   request's msg_id. --mode inbox prints {"error": "inbox mode: not a seed behaviour"}, exit 4.
// - the base64 of every direct payload ends with "\n" (MicroPython's binascii.b2a_base64).
// - value_digest of dictionary/jsontable uses the 'typed' number model (README "Digests"):
//   MicroPython's json keeps 88 an int and 88.0 a float; the floats reach Node bit for bit.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import { digestInput, parseTypedJSON, xorshiftBytes, BINARY_KINDS } from '../node/canonical.mjs';
import { startMicroPython, XFER } from './runtime.mjs';

const enc = new TextEncoder();
const dec = new TextDecoder();
const sha256 = (u8) => createHash('sha256').update(u8).digest('hex');
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const ready = () => process.stderr.write('READY\n');

/**
 * Spec file -> manifest [[dataname, type, form, path, index]], each value's bytes put into
 * MicroPython's file system. JSON values (text aside) are not re-serialized here: MicroPython
 * parses the spec file's own text (form "spec"), so 88.0 reaches it as a float and 60 as an int.
 */
function loadSpec(rt, path) {
  const text = readFileSync(path);
  const spec = JSON.parse(text.toString('utf-8'));
  const base = dirname(path);
  const specPath = `${XFER}/spec.json`;
  rt.put(specPath, text);
  return spec.map((e, n) => {
    const t = e.type;
    const isBytes = BINARY_KINDS.includes(t);
    const form = isBytes ? 'bytes' : t === 'text' ? 'text' : 'json';
    let bytes;
    if (e.generated) {
      const raw = xorshiftBytes(Number(e.generated.n), Number(e.generated.seed ?? 1));
      bytes = isBytes ? raw : form === 'text' ? enc.encode(Buffer.from(raw).toString('latin1')) : raw;
    } else if (e.value_file) {
      bytes = new Uint8Array(readFileSync(isAbsolute(e.value_file) ? e.value_file : join(base, e.value_file)));
    } else if (isBytes) {
      bytes = new Uint8Array(Buffer.from(e.value, 'base64'));
    } else if (form === 'text') {
      bytes = enc.encode(e.value);
    } else {
      return [e.dataname, t, 'spec', specPath, n];
    }
    const p = `${XFER}/spec_${n}`;
    rt.put(p, bytes);
    return [e.dataname, t, form, p, n];
  });
}

function packOpts(a, replyTo) {
  const o = { broker_url: a.server, size_threshold: a['size-threshold'] !== undefined ? Number(a['size-threshold']) : undefined };
  for (const [flag, key] of [['correlation-id', 'correlation_id'], ['msg-purpose', 'msg_purpose'], ['sender-name', 'sender_name'], ['receiver-name', 'receiver_name'], ['reply-to', 'reply_to']]) {
    if (a[flag] !== undefined) o[key] = a[flag];
  }
  if (replyTo !== undefined) o.reply_to = replyTo;
  return JSON.stringify(o);
}

/**
 * The decoded value MicroPython exported (peer_glue._export) -> a typed JS value: its ints as
 * BigInt (parseTypedJSON), its floats as numbers rebuilt bit for bit from the hex it wrote.
 */
function typedValue(text) {
  const walk = (v) => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === '$mpy_float') return Buffer.from(v.$mpy_float, 'hex').readDoubleLE(0);
      for (const k of keys) Object.defineProperty(v, k, { value: walk(v[k]), enumerable: true, writable: true, configurable: true });
    }
    return v;
  };
  return walk(parseTypedJSON(text));
}

/** The glue's summary (JSON) -> the contract's line: sha256 and value_digest from the files it left. */
function finishLine(rt, text) {
  const got = JSON.parse(text);
  if (got.error !== undefined) { clearXfer(rt); return { subject: got.subject, error: got.error }; }
  const line = {};
  for (const k of ['msg_id', 'correlation_id', 'reply_to_msg_id', 'reply_to', 'send_to', 'msg_purpose', 'sender_name', 'timestamp', 'subject']) line[k] = got[k];
  line.payloads = got.payloads.map((p, n) => {
    const raw = rt.take(`${XFER}/raw_${n}`);
    const val = rt.take(`${XFER}/val_${n}`);
    let digest;
    if (p.payload_type === 'dictionary' || p.payload_type === 'jsontable') digest = sha256(digestInput(p.payload_type, typedValue(dec.decode(val)), 'typed'));
    else digest = sha256(val); // text: UTF-8 of the str; binary kinds: the bytearray
    return { dataname: p.dataname, payload_type: p.payload_type, transport: p.transport, size: p.size, sha256: sha256(raw), value_digest: digest };
  });
  if (got.answered_to !== undefined) { line.answered_to = got.answered_to; line.answer_msg_id = got.answer_msg_id; }
  return line;
}

function clearXfer(rt) {
  for (const f of rt.mp.FS.readdir(XFER)) if (f !== '.' && f !== '..') rt.mp.FS.unlink(`${XFER}/${f}`);
}

function publisher(nc) {
  // returns '' or the error: a JS exception must not unwind through MicroPython's WebAssembly frames
  return {
    publish(subject, s) {
      try { nc.publish(subject, enc.encode(s)); return ''; } catch (e) { return `${e.code || e.name}: ${e.message}`; }
    },
  };
}

async function nextWithin(iter, ms) {
  let timer;
  const t = new Promise((res) => { timer = setTimeout(() => res({ timeout: true }), Math.max(0, ms)); });
  const r = await Promise.race([iter.next(), t]);
  clearTimeout(timer);
  return r;
}

function receiveInto(rt, msg) {
  rt.put(`${XFER}/msg`, msg.data);
  return `${XFER}/msg`;
}

async function serve(a, handle) {
  const rt = await startMicroPython();
  const nc = await connect({ servers: a.server });
  const sub = nc.subscribe(a.subject);
  await nc.flush();
  ready();
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + Number(a.timeout ?? 30) * 1000;
  const count = Number(a.count ?? 1);
  let got = 0, rc = 0;
  try {
    while (got < count) {
      const r = await nextWithin(it, deadline - Date.now());
      if (r.timeout || r.done) { rc = 2; break; }
      got++;
      const msg = r.value;
      try { emit(await handle(rt, nc, msg)); } catch (e) { emit({ subject: msg.subject, error: `${e.name}: ${e.message}` }); }
    }
  } finally {
    await nc.drain();
    await rt.close();
  }
  return rc;
}

const commands = {
  async send(a) {
    const rt = await startMicroPython();
    const nc = await connect({ servers: a.server });
    try {
      const manifest = JSON.stringify(loadSpec(rt, a.spec));
      for (const subject of a.subject) { // one fresh envelope per subject
        const r = JSON.parse(rt.glue.send(subject, manifest, packOpts(a), publisher(nc)));
        if (r.error !== undefined) { emit({ error: r.error }); process.stderr.write(`send: ${r.error}\n`); return 1; }
        await nc.flush();
        process.stdout.write(r.envelope + '\n');
      }
      return 0;
    } finally {
      await nc.drain();
      await rt.close();
    }
  },
  async listen(a) {
    return serve(a, async (rt, _nc, msg) => finishLine(rt, rt.glue.receive(msg.subject, receiveInto(rt, msg))));
  },
  async reply(a) {
    return serve(a, async (rt, nc, msg) => {
      const line = finishLine(rt, rt.glue.reply(msg.subject, receiveInto(rt, msg), publisher(nc), a.server, Boolean(a.echo)));
      await nc.flush();
      return line;
    });
  },
  async request(a) {
    if ((a.mode ?? 'reply-to') !== 'reply-to') { emit({ error: 'inbox mode: not a seed behaviour' }); return 4; }
    const rt = await startMicroPython();
    const nc = await connect({ servers: a.server });
    try {
      const manifest = JSON.stringify(loadSpec(rt, a.spec));
      const replySubject = a['reply-to'] || `interop.reply.${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
      const sub = nc.subscribe(replySubject, { max: 1 });
      await nc.flush();
      const req = JSON.parse(rt.glue.send(a.subject, manifest, packOpts(a, replySubject), publisher(nc)));
      if (req.error !== undefined) { emit({ error: req.error }); return 1; }
      await nc.flush();
      const r = await nextWithin(sub[Symbol.asyncIterator](), Number(a.timeout ?? 10) * 1000);
      if (r.timeout || r.done) { emit({ error: `no reply on ${replySubject}`, request_msg_id: req.msg_id }); return 2; }
      const line = finishLine(rt, rt.glue.receive(r.value.subject, receiveInto(rt, r.value)));
      line.request_msg_id = req.msg_id;
      line.request_correlation_id = req.correlation_id;
      if (line.error !== undefined) { line.matched = false; emit(line); return 3; }
      line.matched = line.reply_to_msg_id === '' || line.reply_to_msg_id === req.msg_id;
      emit(line);
      return line.matched ? 0 : 3;
    } finally {
      await nc.drain();
      await rt.close();
    }
  },
};

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string' }, subject: { type: 'string', multiple: true }, fileserver: { type: 'string', default: 'http://127.0.0.1:8080' },
    spec: { type: 'string' }, count: { type: 'string' }, timeout: { type: 'string' }, echo: { type: 'boolean' },
    mode: { type: 'string' }, 'correlation-id': { type: 'string' }, 'msg-purpose': { type: 'string' },
    'sender-name': { type: 'string' }, 'receiver-name': { type: 'string' }, 'reply-to': { type: 'string' },
    'size-threshold': { type: 'string' },
  },
});
const cmd = commands[positionals[0]];
if (!cmd || !values.server || !values.subject) {
  process.stderr.write('usage: peer.mjs send|listen|reply|request --server URL --subject S [...]\n');
  process.exit(64);
}
if (positionals[0] !== 'send') values.subject = values.subject[0];
cmd(values).then((rc) => process.exit(rc), (e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
