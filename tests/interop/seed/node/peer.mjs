#!/usr/bin/env node
// Command-line driver of the seed-transcribed Node peer (msghandler_seed.mjs), following the
// driver contract of tests/interop/README.md as narrowed for seed peers:
//   node peer.mjs send    --server URL --subject S [--subject S2 ...] --fileserver URL --spec FILE
//                         [--reply-to S] [--correlation-id ID] [--msg-purpose P] [--sender-name N]
//                         [--receiver-name N] [--size-threshold BYTES]
//   node peer.mjs listen  --server URL --subject S --count N --timeout SECS
//   node peer.mjs reply   --server URL --subject S --fileserver URL --count N --timeout SECS --echo
//   node peer.mjs request --server URL --subject S --fileserver URL --spec FILE --timeout SECS [--mode reply-to] [--reply-to S]
//
// It uses only the seed API (smartpack / smartunpack with their options). The summary line needs
// each payload's bytes as received, which smartunpack does not hand back, so the driver re-reads
// the envelope JSON for the transport and the direct base64, and passes smartunpack a
// fileserver_download_handler (a seed option) that calls fetchWithBackoff and keeps the bytes.
//
// Seed behaviour kept (the 004 seed's "Example 4: Request-Response Pattern", in the 000 form):
// - reply: env = smartunpack(msg); reply_to = env.reply_to; only when it is non-empty,
//   smartpack(reply_to, payloads) with a fresh envelope (no correlation_id, msg_id or
//   reply_to_msg_id copied); msg.reply (the NATS inbox) is never looked at. --echo re-packs the
//   request's decoded payloads; without --echo the answer is the seed's own
//   [["data", {sensor_id: "sensor-001", value: 42.5}, "dictionary"]]. The responder passes
//   broker_url/fileserver_url/nats_connection (the seed's example passes none and would use the
//   localhost defaults). It answers whatever the timestamp says (the seed responder never reads
//   it); the printed line is the timestamp error line then, plus answered_to/answer_msg_id.
//   A request smartunpack cannot decode is not answered (the seed's callback would throw first).
// - request: --mode reply-to only: subscribe to a fresh subject (or --reply-to S), flush, then
//   smartpack the spec to S with reply_to = that subject (a plain publish); the first envelope
//   there is the answer. matched = its reply_to_msg_id is empty or equals the request's msg_id.
//   --mode inbox prints {"error":"inbox mode: not a seed behaviour"} and exits 4. An answer that
//   cannot be decoded (or whose timestamp Date.parse rejects) prints the error line and exits 1.
// - Timestamps received: Date.parse(env.timestamp) (the stock JavaScript parser); NaN (also for a
//   missing timestamp) -> {"subject", "error": "timestamp: ..."}. Timestamps sent:
//   new Date().toISOString() (inside smartpack).
// - send: a spec payload of a type the 004 seed does not know (e.g. `table`) makes smartpack
//   throw: the error goes to stderr and the exit status is 1; nothing is published.
import { readFileSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import msghandler from './msghandler_seed.mjs';
import { digestInput, xorshiftBytes, BINARY_KINDS } from '../../node/canonical.mjs';

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const ready = () => process.stderr.write('READY\n');

/** Spec file -> [[dataname, value, type], ...] in the seed's JavaScript value types. */
export function loadSpec(path) {
  const spec = JSON.parse(readFileSync(path, 'utf-8'));
  const base = dirname(path);
  return spec.map((e) => {
    const t = e.type;
    let v;
    if (e.generated) {
      const raw = Buffer.from(xorshiftBytes(Number(e.generated.n), Number(e.generated.seed ?? 1)));
      v = BINARY_KINDS.includes(t) ? raw : raw.toString('latin1');
    } else if (e.value_file) {
      const raw = readFileSync(isAbsolute(e.value_file) ? e.value_file : join(base, e.value_file));
      v = BINARY_KINDS.includes(t) ? raw : t === 'text' ? raw.toString('utf8') : JSON.parse(raw.toString('utf8'));
    } else {
      v = BINARY_KINDS.includes(t) ? Buffer.from(e.value, 'base64') : e.value; // arrowtable rows go in as Array<Object>
    }
    return [e.dataname, v, t];
  });
}

/** null when Date.parse reads the timestamp, else the error text. */
export function timestampError(ts) {
  return Number.isNaN(Date.parse(ts)) ? `timestamp: Date.parse cannot read ${JSON.stringify(ts ?? null)}` : null;
}

/** smartunpack(msg) plus the bytes of each payload as received. */
async function decode(msg) {
  const downloaded = new Map();
  const keepBytes = async (url, max_retries, base_delay, max_delay) => {
    const bytes = await msghandler.fetchWithBackoff(url, max_retries, base_delay, max_delay);
    downloaded.set(url, bytes);
    return bytes;
  };
  const env = await msghandler.smartunpack(msg, { fileserver_download_handler: keepBytes });
  const wire = JSON.parse(Buffer.from(msg.data).toString('utf8')).payloads;
  const received = wire.map((p) => ({
    transport: p.transport,
    raw: p.transport === 'direct' ? Buffer.from(p.data, 'base64') : downloaded.get(p.data),
  }));
  return { env, received };
}

function summary(env, received, subject) {
  const line = {};
  for (const k of ['msg_id', 'correlation_id', 'reply_to_msg_id', 'reply_to', 'send_to', 'msg_purpose', 'sender_name', 'timestamp']) {
    line[k] = env[k] ?? '';
  }
  line.subject = subject;
  line.payloads = env.payloads.map(([dataname, value, type], i) => ({
    dataname: dataname ?? '',
    payload_type: type,
    transport: received[i].transport,
    size: received[i].raw.length,
    sha256: sha256(received[i].raw),
    value_digest: sha256(digestInput(type, value)),
  }));
  return line;
}

/** The summary line, or the timestamp error line. */
function lineFor(env, received, subject) {
  const err = timestampError(env.timestamp);
  return err ? { subject, error: err } : summary(env, received, subject);
}

function packOptions(a) {
  const o = { broker_url: a.server, fileserver_url: a.fileserver };
  for (const [flag, key] of [['correlation-id', 'correlation_id'], ['msg-purpose', 'msg_purpose'], ['sender-name', 'sender_name'],
    ['receiver-name', 'receiver_name'], ['reply-to', 'reply_to']]) {
    if (a[flag] !== undefined) o[key] = a[flag];
  }
  if (a['size-threshold'] !== undefined) o.size_threshold = Number(a['size-threshold']);
  return o;
}

async function nextWithin(iter, ms) {
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve({ timeout: true }), Math.max(0, ms)); });
  const r = await Promise.race([iter.next(), timeout]);
  clearTimeout(timer);
  return r;
}

/** Subscribe, READY after the flush, handle `count` messages or time out (exit 2). */
async function serve(a, handle) {
  const nc = await connect({ servers: a.server });
  const sub = nc.subscribe(a.subject);
  await nc.flush();
  ready();
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + Number(a.timeout ?? 30) * 1000;
  const count = Number(a.count ?? 1);
  let got = 0;
  let rc = 0;
  while (got < count) {
    const r = await nextWithin(it, deadline - Date.now());
    if (r.timeout || r.done) { rc = 2; break; }
    got++;
    await handle(nc, r.value);
  }
  await nc.drain();
  return rc;
}

const commands = {
  async send(a) {
    const data = loadSpec(a.spec);
    const nc = await connect({ servers: a.server });
    try {
      for (const subject of a.subject) { // a fresh envelope (and a fresh one-shot upload) per subject
        const [, env_json_str] = await msghandler.smartpack(subject, data, { ...packOptions(a), nats_connection: nc });
        process.stdout.write(env_json_str + '\n');
      }
    } finally {
      await nc.drain();
    }
    return 0;
  },

  async listen(a) {
    return serve(a, async (_nc, msg) => {
      try {
        const { env, received } = await decode(msg);
        emit(lineFor(env, received, msg.subject));
      } catch (e) {
        emit({ subject: msg.subject, error: e.message });
      }
    });
  },

  async reply(a) {
    return serve(a, async (nc, msg) => {
      let decoded;
      try {
        decoded = await decode(msg);
      } catch (e) {
        emit({ subject: msg.subject, error: e.message, answered_to: '', answer_msg_id: '' });
        return;
      }
      const { env, received } = decoded;
      const reply_to = env.reply_to;
      let answered_to = '';
      let answer_msg_id = '';
      let failure = null;
      if (reply_to) {
        const data = a.echo
          ? env.payloads.map(([dataname, value, type]) => [dataname, value, type])
          : [['data', { sensor_id: 'sensor-001', value: 42.5 }, 'dictionary']];
        try {
          const [renv] = await msghandler.smartpack(reply_to, data, {
            broker_url: a.server, fileserver_url: a.fileserver, nats_connection: nc,
          });
          answered_to = reply_to;
          answer_msg_id = renv.msg_id;
        } catch (e) {
          failure = `answer: ${e.message}`;
        }
      }
      const line = failure ? { subject: msg.subject, error: failure } : lineFor(env, received, msg.subject);
      emit({ ...line, answered_to, answer_msg_id });
    });
  },

  async request(a) {
    if ((a.mode ?? 'reply-to') !== 'reply-to') {
      emit({ error: 'inbox mode: not a seed behaviour' });
      return 4;
    }
    const data = loadSpec(a.spec);
    const nc = await connect({ servers: a.server });
    const timeoutMs = Number(a.timeout ?? 10) * 1000;
    try {
      const replySubject = a['reply-to'] || `interop.reply.${randomUUID().replace(/-/g, '')}`;
      const sub = nc.subscribe(replySubject, { max: 1 });
      await nc.flush();
      const [env] = await msghandler.smartpack(a.subject, data, { ...packOptions(a), reply_to: replySubject, nats_connection: nc });
      const ids = { request_msg_id: env.msg_id, request_correlation_id: env.correlation_id };
      const r = await nextWithin(sub[Symbol.asyncIterator](), timeoutMs);
      if (r.timeout || r.done) {
        emit({ error: `no answer on ${replySubject}`, ...ids });
        return 2;
      }
      const msg = r.value;
      let decoded;
      try {
        decoded = await decode(msg);
      } catch (e) {
        emit({ subject: msg.subject, error: e.message, ...ids });
        return 1;
      }
      const line = lineFor(decoded.env, decoded.received, msg.subject);
      if (line.error) {
        emit({ ...line, ...ids });
        return 1;
      }
      const matched = !decoded.env.reply_to_msg_id || decoded.env.reply_to_msg_id === env.msg_id;
      emit({ ...line, ...ids, matched });
      return matched ? 0 : 3;
    } finally {
      await nc.drain();
    }
  },
};

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      server: { type: 'string' }, subject: { type: 'string', multiple: true },
      fileserver: { type: 'string', default: 'http://127.0.0.1:8080' }, spec: { type: 'string' },
      count: { type: 'string' }, timeout: { type: 'string' }, echo: { type: 'boolean' }, mode: { type: 'string' },
      'correlation-id': { type: 'string' }, 'msg-purpose': { type: 'string' }, 'sender-name': { type: 'string' },
      'receiver-name': { type: 'string' }, 'reply-to': { type: 'string' }, 'size-threshold': { type: 'string' },
    },
  });
  const cmd = commands[positionals[0]];
  if (!cmd || !values.server || !values.subject) {
    process.stderr.write('usage: peer.mjs send|listen|reply|request --server URL --subject S [...]\n');
    return 64;
  }
  if (positionals[0] !== 'send') values.subject = values.subject[0];
  return cmd(values);
}

// Run only as a program, so test.mjs can import loadSpec and timestampError.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // Exit only once stdout is flushed: to a pipe, Node writes asynchronously and process.exit would cut
  // a large envelope short.
  const exit = (rc) => process.stdout.write('', () => process.exit(rc));
  main().then(exit, (e) => { process.stderr.write(`peer.mjs: ${e.message || e}\n`); exit(1); });
}
