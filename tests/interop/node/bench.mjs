#!/usr/bin/env node
// Send + receive throughput of the Node peer, for `cargo xtask bench`.
//   node bench.mjs --server URL --size BYTES --count N [--type text|binary]
//
// One connection publishes N envelopes built by the peer's own `smartpack` (is_publish: false,
// then one publish each: smartpack's own publish flushes, a round trip per message, which would
// measure the flush and not the peer); another connection subscribes and runs `smartunpack` on
// every message. Prints one JSON line: {"msgs_per_s", "payload_mb_per_s", "received"}, timed
// from the first publish to the last message decoded.
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import * as mh from './msghandler.mjs';

const { values: a } = parseArgs({
  options: {
    server: { type: 'string' },
    size: { type: 'string', default: '128' },
    count: { type: 'string', default: '10000' },
    type: { type: 'string', default: 'text' },
  },
});
const size = Number(a.size);
const count = Number(a.count);
const subject = 'bench.node';
let value;
if (a.type === 'text') value = 'x'.repeat(size);
else {
  value = new Uint8Array(size);
  for (let i = 0; i < size; i++) value[i] = Number((BigInt(i) * 2654435761n >> 13n) & 0xffn);
}
const data = [[a.type === 'text' ? 'message' : 'blob', value, a.type]];
const enc = new TextEncoder();

const rx = await connect({ servers: a.server });
const tx = await connect({ servers: a.server });
let got = 0;
let finish;
const done = new Promise((resolve) => { finish = resolve; });
rx.subscribe(subject, {
  callback: (err, msg) => {
    if (err) throw err;
    mh.smartunpack(msg).then((env) => {
      if (env.payloads[0][0] !== data[0][0]) throw new Error('wrong payload');
      got += 1;
      if (got === count) finish();
    });
  },
});
await rx.flush();
const started = performance.now();
for (let i = 0; i < count; i++) {
  const [, json] = await mh.smartpack(subject, data, { is_publish: false, broker_url: a.server });
  tx.publish(subject, enc.encode(json));
  // Let the socket drain now and then, as a real publisher loop would.
  if (i % 256 === 255) await new Promise((r) => setImmediate(r));
}
await tx.flush();
let timer;
await Promise.race([done, new Promise((r) => { timer = setTimeout(r, 60_000); })]);
clearTimeout(timer);
const elapsed = (performance.now() - started) / 1000;
await tx.close();
await rx.close();
console.log(JSON.stringify({
  msgs_per_s: got / elapsed,
  payload_mb_per_s: (got * size) / elapsed / 1e6,
  received: got,
}));
