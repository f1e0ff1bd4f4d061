// The browser side of the driver: window.peer.{send, listen, reply, request}, called by driver.mjs
// through playwright. Lines go out through window.emitLine / window.emitReady (exposed by the driver).
import * as mh from './msghandler_csr.js';
import { connect, createInbox } from 'nats.ws';
import { digestInput, toHex } from '../../node/canonical.mjs';

async function sha256(u8) {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', u8)));
}

function entriesToData(entries) {
  return entries.map((e) => [e.dataname, mh.BINARY_KINDS.includes(e.type) ? mh.b64decode(e.value_b64) : e.value, e.type]);
}

async function summary(env, recs, subject) {
  const line = {};
  for (const k of ['msg_id', 'correlation_id', 'reply_to_msg_id', 'reply_to', 'send_to', 'msg_purpose', 'sender_name', 'timestamp']) line[k] = env[k] ?? '';
  line.subject = subject;
  line.payloads = [];
  for (const r of recs) {
    line.payloads.push({
      dataname: r.dataname, payload_type: r.payload_type, transport: r.transport, size: r.raw.length,
      sha256: await sha256(r.raw), value_digest: await sha256(digestInput(r.payload_type, r.value)),
    });
  }
  return line;
}

const emit = (o) => window.emitLine(JSON.stringify(o));

function packOpts(a) {
  const o = { broker_url: a.server, fileserver_url: a.fileserver };
  for (const k of ['correlation_id', 'msg_purpose', 'sender_name', 'receiver_name', 'reply_to', 'size_threshold']) if (a[k] !== undefined && a[k] !== null) o[k] = a[k];
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
  await window.emitReady();
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + a.timeout * 1000;
  let got = 0, rc = 0;
  while (got < a.count) {
    const r = await nextWithin(it, deadline - Date.now());
    if (r.timeout || r.done) { rc = 2; break; }
    got++;
    try { await handle(nc, r.value); } catch (e) { await emit({ subject: r.value.subject, error: `${e.name}: ${e.message}` }); }
  }
  await nc.drain();
  return rc;
}

window.peer = {
  async send(a) {
    const data = entriesToData(a.entries);
    const nc = await connect({ servers: a.server });
    const out = [];
    for (const subject of a.subjects) {
      const [, json] = await mh.smartsend(subject, data, { ...packOpts(a), nats_connection: nc });
      out.push(json);
    }
    await nc.drain();
    return out;
  },
  async listen(a) {
    return serve(a, async (_nc, msg) => {
      const [env, recs] = await mh.unpackRecords(msg);
      await emit(await summary(env, recs, msg.subject));
    });
  },
  async reply(a) {
    return serve(a, async (nc, msg) => {
      const [env, recs] = await mh.unpackRecords(msg);
      const dest = msg.reply || env.reply_to;
      if (!dest) { await emit({ subject: msg.subject, error: 'request has neither a NATS reply inbox nor reply_to' }); return; }
      const data = a.echo ? recs.map((r) => [r.dataname, r.value, r.payload_type]) : [['ack', 'ok', 'text']];
      const [renv] = await mh.smartsend(dest, data, {
        broker_url: a.server, fileserver_url: a.fileserver, correlation_id: env.correlation_id || undefined,
        reply_to_msg_id: env.msg_id, nats_connection: nc,
      });
      await emit({ ...(await summary(env, recs, msg.subject)), answered_to: dest, answer_msg_id: renv.msg_id });
    });
  },
  async request(a) {
    const data = entriesToData(a.entries);
    const nc = await connect({ servers: a.server });
    try {
      let env, msg;
      if (a.mode === 'inbox') {
        // A NATS request whose inbox is also named in reply_to (SPEC.md "Request and reply"),
        // so responders that read only env.reply_to (the seeds') answer there too.
        const inbox = createInbox();
        let json;
        [env, json] = await mh.smartsend(a.subject, data, { ...packOpts(a), reply_to: inbox, is_publish: false, nats_connection: nc });
        try {
          msg = await nc.request(a.subject, new TextEncoder().encode(json), { timeout: a.timeout * 1000, noMux: true, reply: inbox });
        } catch (e) { await emit({ error: `request: ${e.message}`, request_msg_id: env.msg_id }); return 2; }
      } else {
        const replySubject = a.reply_to || `interop.reply.${crypto.randomUUID().replace(/-/g, '')}`;
        const sub = nc.subscribe(replySubject, { max: 1 });
        await nc.flush();
        [env] = await mh.smartsend(a.subject, data, { ...packOpts(a), reply_to: replySubject, nats_connection: nc });
        const r = await nextWithin(sub[Symbol.asyncIterator](), a.timeout * 1000);
        if (r.timeout || r.done) { await emit({ error: `no reply on ${replySubject}`, request_msg_id: env.msg_id }); return 2; }
        msg = r.value;
      }
      const [renv, recs] = await mh.unpackRecords(msg);
      const line = await summary(renv, recs, msg.subject);
      line.request_msg_id = env.msg_id;
      line.request_correlation_id = env.correlation_id;
      line.matched = renv.reply_to_msg_id === env.msg_id && renv.correlation_id === env.correlation_id;
      await emit(line);
      return line.matched ? 0 : 3;
    } finally {
      await nc.drain();
    }
  },
};
window.peerReady = true;
