#!/usr/bin/env node
// Command-line driver of the Node peer (contract: tests/interop/README.md).
//   node peer.mjs send    --server URL --subject S --fileserver URL --spec FILE
//   node peer.mjs listen  --server URL --subject S --count N --timeout SECS
//   node peer.mjs reply   --server URL --subject S --fileserver URL --count N --timeout SECS --echo
//   node peer.mjs request --server URL --subject S --fileserver URL --spec FILE --timeout SECS [--mode inbox|reply-to]
//     (--mode inbox: a NATS request whose inbox is also named in the envelope's reply_to)
import { readFileSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { dirname, isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, createInbox } from 'nats';
import * as mh from './msghandler.mjs';
import { digestInput, xorshiftBytes, BINARY_KINDS } from './canonical.mjs';

const sha256 = (u8) => createHash('sha256').update(u8).digest('hex');

function loadSpec(path) {
  const spec = JSON.parse(readFileSync(path, 'utf-8'));
  const base = dirname(path);
  return spec.map((e) => {
    const t = e.type;
    let v;
    if (e.generated) {
      const raw = xorshiftBytes(Number(e.generated.n), Number(e.generated.seed ?? 1));
      v = BINARY_KINDS.includes(t) ? raw : Buffer.from(raw).toString('latin1');
    } else if (e.value_file) {
      const raw = new Uint8Array(readFileSync(isAbsolute(e.value_file) ? e.value_file : join(base, e.value_file)));
      v = BINARY_KINDS.includes(t) ? raw : t === 'text' ? new TextDecoder().decode(raw) : JSON.parse(new TextDecoder().decode(raw));
    } else {
      v = BINARY_KINDS.includes(t) ? new Uint8Array(Buffer.from(e.value, 'base64')) : e.value;
    }
    return [e.dataname, v, t];
  });
}

function summary(env, recs, subject) {
  const line = {};
  for (const k of ['msg_id', 'correlation_id', 'reply_to_msg_id', 'reply_to', 'send_to', 'msg_purpose', 'sender_name', 'timestamp']) line[k] = env[k] ?? '';
  line.subject = subject;
  line.payloads = recs.map((r) => ({
    dataname: r.dataname,
    payload_type: r.payload_type,
    transport: r.transport,
    size: r.raw.length,
    sha256: sha256(r.raw),
    value_digest: sha256(digestInput(r.payload_type, r.value)),
  }));
  return line;
}

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const ready = () => process.stderr.write('READY\n');

function packOpts(a) {
  const o = { broker_url: a.server, fileserver_url: a.fileserver };
  for (const [flag, key] of [['correlation-id', 'correlation_id'], ['msg-purpose', 'msg_purpose'], ['sender-name', 'sender_name'], ['receiver-name', 'receiver_name'], ['reply-to', 'reply_to']]) {
    if (a[flag] !== undefined) o[key] = a[flag];
  }
  if (a['size-threshold'] !== undefined) o.size_threshold = Number(a['size-threshold']);
  return o;
}

async function nextWithin(iter, ms) {
  let timer;
  const t = new Promise((res) => { timer = setTimeout(() => res({ timeout: true }), Math.max(0, ms)); });
  const r = await Promise.race([iter.next(), t]);
  clearTimeout(timer);
  return r;
}

async function serve(a, handle) {
  const nc = await connect({ servers: a.server });
  const sub = nc.subscribe(a.subject);
  await nc.flush();
  ready();
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + Number(a.timeout ?? 30) * 1000;
  const count = Number(a.count ?? 1);
  let got = 0, rc = 0;
  while (got < count) {
    const r = await nextWithin(it, deadline - Date.now());
    if (r.timeout || r.done) { rc = 2; break; }
    got++;
    const msg = r.value;
    try { await handle(nc, msg); } catch (e) { emit({ subject: msg.subject, error: `${e.name}: ${e.message}` }); }
  }
  await nc.drain();
  return rc;
}

const commands = {
  async send(a) {
    const data = loadSpec(a.spec);
    const nc = await connect({ servers: a.server });
    for (const subject of a.subject) { // one fresh envelope (and upload) per subject
      const [, json] = await mh.smartsend(subject, data, { ...packOpts(a), nats_connection: nc });
      process.stdout.write(json + '\n');
    }
    await nc.drain();
    return 0;
  },
  async listen(a) {
    return serve(a, async (_nc, msg) => {
      const [env, recs] = await mh.unpackRecords(msg);
      emit(summary(env, recs, msg.subject));
    });
  },
  async reply(a) {
    return serve(a, async (nc, msg) => {
      const [env, recs] = await mh.unpackRecords(msg);
      const dest = msg.reply || env.reply_to;
      if (!dest) { emit({ subject: msg.subject, error: 'request has neither a NATS reply inbox nor reply_to' }); return; }
      const data = a.echo ? recs.map((r) => [r.dataname, r.value, r.payload_type]) : [['ack', 'ok', 'text']];
      const [renv] = await mh.smartsend(dest, data, {
        broker_url: a.server, fileserver_url: a.fileserver, correlation_id: env.correlation_id || undefined,
        reply_to_msg_id: env.msg_id, nats_connection: nc,
      });
      emit({ ...summary(env, recs, msg.subject), answered_to: dest, answer_msg_id: renv.msg_id });
    });
  },
  async request(a) {
    const data = loadSpec(a.spec);
    const nc = await connect({ servers: a.server });
    const timeoutMs = Number(a.timeout ?? 10) * 1000;
    try {
      let env, msg;
      if ((a.mode ?? 'inbox') === 'inbox') {
        // A NATS request whose inbox is also named in reply_to (SPEC.md "Request and reply"),
        // so responders that read only env.reply_to (the seeds') answer there too.
        const inbox = createInbox();
        let json;
        [env, json] = await mh.smartsend(a.subject, data, { ...packOpts(a), reply_to: inbox, is_publish: false, nats_connection: nc });
        try {
          msg = await nc.request(a.subject, new TextEncoder().encode(json), { timeout: timeoutMs, noMux: true, reply: inbox });
        } catch (e) { emit({ error: `request: ${e.message}`, request_msg_id: env.msg_id }); return 2; }
      } else {
        const replySubject = a['reply-to'] || `interop.reply.${randomUUID().replace(/-/g, '')}`;
        const sub = nc.subscribe(replySubject, { max: 1 });
        await nc.flush();
        [env] = await mh.smartsend(a.subject, data, { ...packOpts(a), reply_to: replySubject, nats_connection: nc });
        const r = await nextWithin(sub[Symbol.asyncIterator](), timeoutMs);
        if (r.timeout || r.done) { emit({ error: `no reply on ${replySubject}`, request_msg_id: env.msg_id }); return 2; }
        msg = r.value;
      }
      const [renv, recs] = await mh.unpackRecords(msg);
      const line = summary(renv, recs, msg.subject);
      line.request_msg_id = env.msg_id;
      line.request_correlation_id = env.correlation_id;
      line.matched = renv.reply_to_msg_id === env.msg_id && renv.correlation_id === env.correlation_id;
      emit(line);
      return line.matched ? 0 : 3;
    } finally {
      await nc.drain();
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
