#!/usr/bin/env node
// Command-line driver of the browser peer (contract: tests/interop/README.md). Serves this folder on a
// loopback port, opens peer.html in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) and runs the command inside the page. --server must be a ws:// URL.
//
//   node driver.mjs send    --server ws://127.0.0.1:PORT --subject S [--subject S2 ...] --fileserver URL --spec FILE
//   node driver.mjs listen  --server ws://... --subject S --count N --timeout SECS
//   node driver.mjs reply   --server ws://... --subject S --fileserver URL --count N --timeout SECS --echo
//   node driver.mjs request --server ws://... --subject S --fileserver URL --spec FILE --timeout SECS [--mode inbox|reply-to]
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, isAbsolute, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { xorshiftBytes, BINARY_KINDS } from '../node/canonical.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const { positionals, values: a } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string' }, subject: { type: 'string', multiple: true }, fileserver: { type: 'string', default: 'http://127.0.0.1:8080' },
    spec: { type: 'string' }, count: { type: 'string', default: '1' }, timeout: { type: 'string', default: '30' }, echo: { type: 'boolean' },
    mode: { type: 'string', default: 'inbox' }, 'correlation-id': { type: 'string' }, 'msg-purpose': { type: 'string' },
    'sender-name': { type: 'string' }, 'receiver-name': { type: 'string' }, 'reply-to': { type: 'string' },
    'size-threshold': { type: 'string' },
  },
});
const cmd = positionals[0];
if (!['send', 'listen', 'reply', 'request'].includes(cmd) || !a.server || !a.subject) {
  process.stderr.write('usage: driver.mjs send|listen|reply|request --server ws://HOST:PORT --subject S [...]\n');
  process.exit(64);
}

if (!/^wss?:\/\//.test(a.server)) {
  process.stderr.write(`driver.mjs: --server must be the nats-server's WebSocket URL (ws://HOST:PORT), got ${a.server}\n`);
  process.exit(64);
}

function loadEntries(path) {
  const spec = JSON.parse(readFileSync(path, 'utf-8'));
  const base = dirname(path);
  return spec.map((e) => {
    const t = e.type;
    if (e.generated) {
      const raw = xorshiftBytes(Number(e.generated.n), Number(e.generated.seed ?? 1));
      return BINARY_KINDS.includes(t) ? { dataname: e.dataname, type: t, value_b64: Buffer.from(raw).toString('base64') }
        : { dataname: e.dataname, type: t, value: Buffer.from(raw).toString('latin1') };
    }
    if (e.value_file) {
      const raw = readFileSync(isAbsolute(e.value_file) ? e.value_file : join(base, e.value_file));
      if (BINARY_KINDS.includes(t)) return { dataname: e.dataname, type: t, value_b64: raw.toString('base64') };
      return { dataname: e.dataname, type: t, value: t === 'text' ? raw.toString('utf-8') : JSON.parse(raw.toString('utf-8')) };
    }
    return BINARY_KINDS.includes(t) ? { dataname: e.dataname, type: t, value_b64: e.value } : { dataname: e.dataname, type: t, value: e.value };
  });
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8' };

function staticServer() {
  const srv = createServer((req, res) => {
    const p = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const f = join(here, p);
    if (!f.startsWith(here) || !existsSync(f) || !statSync(f).isFile()) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, { 'Content-Type': TYPES[extname(f)] || 'application/octet-stream' });
    res.end(readFileSync(f));
  });
  return new Promise((res) => srv.listen(0, '127.0.0.1', () => res(srv)));
}

async function main() {
  if (!existsSync(join(here, 'dist/peer.bundle.js'))) execFileSync(process.execPath, [join(here, 'build.mjs')], { stdio: 'inherit' });
  const srv = await staticServer();
  const profile = mkdtempSync(join(tmpdir(), 'natsbridge-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  let rc = 1;
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`[page] ${m.text()}\n`); });
    page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
    await page.exposeFunction('emitLine', (s) => { process.stdout.write(s + '\n'); });
    await page.exposeFunction('emitReady', () => { process.stderr.write('READY\n'); });
    await page.goto(`http://127.0.0.1:${srv.address().port}/peer.html`);
    await page.waitForFunction(() => window.peerReady === true, null, { timeout: 20_000 });
    const args = {
      server: a.server, fileserver: a.fileserver, count: Number(a.count), timeout: Number(a.timeout), echo: !!a.echo, mode: a.mode,
      correlation_id: a['correlation-id'], msg_purpose: a['msg-purpose'], sender_name: a['sender-name'],
      receiver_name: a['receiver-name'], reply_to: a['reply-to'],
      size_threshold: a['size-threshold'] !== undefined ? Number(a['size-threshold']) : undefined,
    };
    if (cmd === 'send') {
      const out = await page.evaluate((x) => window.peer.send(x), { ...args, subjects: a.subject, entries: loadEntries(a.spec) });
      for (const s of out) process.stdout.write(s + '\n');
      rc = 0;
    } else if (cmd === 'request') {
      rc = await page.evaluate((x) => window.peer.request(x), { ...args, subject: a.subject[0], entries: loadEntries(a.spec) });
    } else {
      rc = await page.evaluate(([c, x]) => window.peer[c](x), [cmd, { ...args, subject: a.subject[0] }]);
    }
  } catch (e) {
    process.stderr.write(`browser driver: ${e.message}\n`);
    rc = 1;
  } finally {
    await ctx.close().catch(() => {});
    srv.close();
    rmSync(profile, { recursive: true, force: true });
  }
  return rc;
}

main().then((rc) => process.exit(rc), (e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
