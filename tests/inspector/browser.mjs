#!/usr/bin/env node
// The inspector page in a real browser (issue 19): real nats-server, real
// `natsbridge fileserver`, the Python peer, `natsbridge inspect`, `listen`,
// `reply` and `request`, and headless Chromium through playwright-core (the
// browser peer's copy, tests/interop/browser/node_modules). Run by
// `cargo xtask inspector` (part of `cargo xtask ci`):
//
//   node tests/inspector/browser.mjs --natsbridge target/debug/natsbridge \
//        [--python .venv/bin/python] [--nats-server .venv/bin/nats-server] [--screenshot docs/inspector.png]
//
// What it checks: the page shows an envelope the Python peer sent with a
// text, an image, an audio clip, an Arrow table and a link payload, and
// each preview (the text, the image decoded by the browser, the audio
// playable, the table's schema and cells, the link fetched only when asked:
// still on the file server after the page showed it, and with the right
// SHA-256 once fetched), the raw JSON, a request grouped with its answer and
// the round trip, a message that is not an envelope listed with its error,
// the filters; it sends from the page (a text, a dictionary, a dropped file
// and a chosen CSV) and a `natsbridge listen` receives exactly that. It
// saves a screenshot. Every process it starts is stopped by PID at the end.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import { xorshiftBytes } from '../interop/node/canonical.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const require = createRequire(join(root, 'tests/interop/browser/package.json'));
const { chromium } = require('playwright-core');

const { values: a } = parseArgs({
  options: {
    natsbridge: { type: 'string', default: join(root, 'target/debug/natsbridge') },
    python: { type: 'string', default: join(root, '.venv/bin/python') },
    'nats-server': { type: 'string', default: join(root, '.venv/bin/nats-server') },
    screenshot: { type: 'string', default: join(root, 'docs/inspector.png') },
  },
});
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const started = Date.now();
const children = [];
const scratch = mkdtempSync(join(tmpdir(), 'natsbridge-inspector-test-'));

function log(line) { process.stderr.write(`inspector test: ${line}\n`); }

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  log(`ok: ${message}`);
}

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => ok(port)); });
  });
}

// Starts a process; resolves with it once `ready(line)` holds for a line of
// its stdout or stderr (the line is kept as `child.readyLine`).
function start(name, command, args, ready, { timeoutMs = 20_000 } = {}) {
  return new Promise((ok, fail) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    child.name = name;
    child.out = '';
    child.err = '';
    let done = false;
    const timer = setTimeout(() => { if (!done) { done = true; fail(new Error(`${name} not ready in ${timeoutMs} ms: ${child.err}`)); } }, timeoutMs);
    const watch = (stream, key) => stream.on('data', (chunk) => {
      child[key] += chunk.toString();
      if (done) return;
      for (const line of child[key].split('\n')) {
        if (line && ready(line)) { done = true; clearTimeout(timer); child.readyLine = line; ok(child); return; }
      }
    });
    watch(child.stdout, 'out');
    watch(child.stderr, 'err');
    child.on('exit', (code) => { if (!done) { done = true; clearTimeout(timer); fail(new Error(`${name} exited ${code}: ${child.err}`)); } });
  });
}

// Stops the processes started, the last started first (natsbridge's
// commands drain through nats-server, which goes last), each waited for
// until it exits; one still running after 10 s is killed.
async function stopAll() {
  for (const child of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) continue;
    const exited = new Promise((ok) => child.once('exit', ok));
    try { process.kill(child.pid, 'SIGTERM'); } catch { continue; /* gone */ }
    const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
    await exited;
    clearTimeout(timer);
  }
}

function run(command, args) {
  return new Promise((ok, fail) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('exit', (code) => (code === 0 ? ok(out) : fail(new Error(`${command} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

function exited(child, timeoutMs) {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${child.name} did not finish in ${timeoutMs} ms: ${child.err}`)), timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); ok(code); });
  });
}

// A small PNG (a gradient), written by hand: zlib for the pixels, CRC-32 per chunk.
function png(width, height) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([Math.round(255 * x / width), Math.round(255 * y / height), 160], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

// Two seconds of a 440 Hz tone: 8 kHz, 16-bit mono PCM in a WAV file.
function wav() {
  const rate = 8000;
  const samples = rate * 2;
  const out = Buffer.alloc(44 + samples * 2);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + samples * 2, 4);
  out.write('WAVEfmt ', 8, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) out.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * 440 * i / rate)), 44 + i * 2);
  return out;
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

async function main() {
  // ---- the servers ----
  const natsPort = await freePort();
  const natsUrl = `nats://127.0.0.1:${natsPort}`;
  await start('nats-server', a['nats-server'], ['-a', '127.0.0.1', '-p', String(natsPort)], (l) => l.includes('Server is ready'));
  const files = await start('fileserver', a.natsbridge,
    ['fileserver', '--listen', '127.0.0.1:0', '--dir', join(scratch, 'files'), '--json'], (l) => l.startsWith('{'));
  const filesUrl = JSON.parse(files.readyLine).url;
  const inspector = await start('inspect', a.natsbridge,
    ['inspect', '--json', '--server', natsUrl, '--fileserver', filesUrl, '--listen', '127.0.0.1:0', '--threshold', '50000'],
    (l) => l.startsWith('{'));
  const pageUrl = JSON.parse(inspector.readyLine).url;
  log(`nats ${natsUrl}, file server ${filesUrl}, inspector ${pageUrl}`);
  const listener = await start('listen', a.natsbridge, ['listen', '--json', 'page.sent', '--server', natsUrl, '--count', '1'],
    (l) => l.includes('listening on'));

  // ---- the browser ----
  const profile = join(scratch, 'chromium');
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const pageErrors = [];
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
    page.setDefaultTimeout(15_000);
    await page.goto(pageUrl);
    await page.waitForSelector('#status.live');
    check(true, 'the page loaded and its live stream is open');

    // ---- the Python peer sends text, an image, an Arrow table and a link ----
    const image = png(96, 64);
    const linkBytes = xorshiftBytes(60_000, 7);
    const spec = join(scratch, 'spec.json');
    writeFileSync(spec, JSON.stringify([
      { dataname: 'message_text', type: 'text', value: 'Hello from the Python peer!' },
      { dataname: 'avatar', type: 'image', value: image.toString('base64') },
      { dataname: 'sales', type: 'arrowtable', value: [
        { id: 1, product: 'apple', amount: 3.5 }, { id: 2, product: 'pear', amount: 1.25 }, { id: 3, product: 'plum', amount: 7 }] },
      { dataname: 'beep', type: 'audio', value: wav().toString('base64') },
      { dataname: 'report', type: 'binary', generated: { n: 60_000, seed: 7 } },
    ]));
    const sent = await run(a.python, [join(root, 'tests/interop/python/peer.py'), 'send', '--server', natsUrl,
      '--subject', 'chat.python', '--fileserver', filesUrl, '--spec', spec, '--size-threshold', '50000',
      '--sender-name', 'python-peer']);
    const envelope = JSON.parse(sent.trim().split('\n').pop());
    const link = envelope.payloads.find((p) => p.dataname === 'report');
    check(link.transport === 'link', 'the Python peer sent the 60,000-byte payload by link');

    const card = page.locator('article.msg', { has: page.locator('.subject', { hasText: 'chat.python' }) });
    await card.waitFor();
    const row = (name) => card.locator(`tr.payload[data-name="${name}"]`);
    check((await card.locator('.from b').textContent()) === 'python-peer', 'the sender name is shown');
    check((await card.locator('.purpose').textContent()) === 'chat', 'the purpose is shown');
    check((await card.locator('dl.fields').textContent()).includes(envelope.correlation_id), 'the correlation id is shown');
    check((await row('message_text').locator('pre.text').textContent()) === 'Hello from the Python peer!', 'the text payload is shown');
    check((await row('message_text').locator('.transport').textContent()) === 'direct', 'the text went direct');
    const img = row('avatar').locator('img.media');
    await img.waitFor();
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    check(await img.evaluate((el) => el.naturalWidth === 96 && el.naturalHeight === 64), 'the image payload is decoded by the browser (96x64)');
    const cells = await row('sales').locator('table.arrow td').allTextContents();
    check(cells.includes('apple') && cells.includes('plum') && (cells.includes('7.0') || cells.includes('7')), `the Arrow table shows its rows (${cells.join(' ')})`);
    const schema = await row('sales').locator('ul.schema').textContent();
    check(schema.includes('product') && schema.includes('amount'), `the Arrow table shows its schema (${schema})`);
    const audio = row('beep').locator('audio.media');
    await audio.waitFor();
    await page.waitForFunction((el) => el.readyState >= 1 && el.duration > 1.9, await audio.elementHandle());
    check(await audio.evaluate((el) => el.controls && Math.abs(el.duration - 2) < 0.01), 'the audio payload is playable (a 2 s WAV)');
    check((await row('report').locator('.transport').textContent()) === 'link', 'the link payload is marked link');
    check((await row('report').textContent()).includes('not fetched'), 'the link payload is not fetched on arrival');
    check((await page.locator('#link-note').textContent()).includes('never reads a link unasked'), 'the page says links are fetched only when asked');

    // The one-shot link is still on the file server after the page showed it
    // (HEAD does not consume it).
    const head = await fetch(link.data, { method: 'HEAD', headers: { 'User-Agent': 'curl/8' } });
    check(head.status === 200, `the one-shot link is still there after the page loaded (HEAD ${head.status})`);

    await row('report').locator('button.fetch').click();
    await row('report').locator('code.sha256').waitFor();
    const fetchedSha = await row('report').locator('code.sha256').textContent();
    check(fetchedSha === sha256(linkBytes), 'the link payload, fetched on request, has the SHA-256 of the bytes sent');
    const gone = await fetch(link.data, { headers: { 'User-Agent': 'curl/8' } });
    check(gone.status === 404, `the fetch consumed the one-shot link (GET now ${gone.status})`);
    check((await row('report').locator('a.download').getAttribute('href')).endsWith('?download'), 'the binary payload has a download button');

    await card.locator('button.raw-btn').first().click();
    await card.locator('pre.raw').first().waitFor({ state: 'visible' });
    const raw = await card.locator('pre.raw').first().textContent();
    check(raw.includes(envelope.msg_id) && raw.includes('"payloads"'), 'the raw envelope JSON is one click away');
    await card.locator('button.raw-btn').first().click();

    // ---- a request and its answer, and a message that is not an envelope ----
    const responder = await start('reply', a.natsbridge, ['reply', 'svc.echo', '--echo', '--count', '1', '--server', natsUrl],
      (l) => l.includes('answering on'));
    await run(a.natsbridge, ['request', 'svc.echo', 'text:question=ping', '--server', natsUrl, '--json']);
    await exited(responder, 10_000);
    const request = page.locator('article.msg', { has: page.locator(':scope > .head .subject', { hasText: 'svc.echo' }) });
    await request.locator('.thread article.msg').waitFor();
    const badge = await request.locator(':scope > .head .badge.answered').textContent();
    check(/answered by #\d+ · round trip \d+ ms/.test(badge), `the request is grouped with its answer and the round trip (${badge})`);
    await run(a.python, ['-c', `
import asyncio, nats
async def main():
    nc = await nats.connect("${natsUrl}")
    await nc.publish("chat.broken", b'{"msg_id": "not an envelope"')
    await nc.drain()
asyncio.run(main())
`]);
    const failed = page.locator('article.msg.failed', { has: page.locator('.subject', { hasText: 'chat.broken' }) });
    await failed.waitFor();
    check((await failed.textContent()).includes('failed to decode'), 'a message that is not an envelope is listed with its error');

    // ---- filters ----
    await page.fill('#f-subject', 'chat.*');
    check(await request.isHidden() && await card.isVisible(), 'the subject filter (chat.*) hides svc.echo and keeps chat.python');
    await page.fill('#f-subject', '');
    await page.selectOption('#f-type', 'image');
    check(await card.isVisible() && await failed.isHidden(), 'the payload type filter keeps only messages with an image');
    await page.selectOption('#f-type', '');
    await page.fill('#f-sender', 'python-peer');
    check(await card.isVisible() && await request.isHidden(), 'the sender filter');
    await page.fill('#f-sender', '');
    await page.fill('#f-text', envelope.msg_id);
    check(await card.isVisible() && await request.isHidden(), 'the header search finds a msg_id');
    await page.fill('#f-text', '');

    // ---- send from the page; `listen` receives it ----
    await page.click('#send-panel summary');
    await page.fill('#s-subject', 'page.sent');
    await page.fill('#s-text', 'hello from the page');
    await page.fill('#s-dict', '{"volume": [1, 2, 3]}');
    // A file dropped on the page (a real drop event with a DataTransfer) ...
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }, png(24, 24).toString('base64'));
    // ... and one chosen with the file picker: a CSV, sent as an Arrow table.
    const csv = join(scratch, 'people.csv');
    writeFileSync(csv, 'id,name\n1,Alice\n2,Bob\n');
    await page.setInputFiles('#s-files', csv);
    const offered = await page.locator('#s-file-list select').evaluateAll((all) => all.map((s) => s.value));
    check(offered.join() === 'image,arrowtable', `dropped and chosen files are offered by type (${offered})`);
    await page.click('#s-send');
    await page.waitForSelector('#s-result.ok');
    const result = await page.locator('#s-result').textContent();
    check(result.includes('dropped.png (image, direct') && result.includes('people.csv (arrowtable, direct'),
      `the page reports what went which way (${result})`);
    await exited(listener, 10_000);
    const heard = JSON.parse(listener.out.trim().split('\n').pop());
    const byName = Object.fromEntries(heard.payloads.map((p) => [p.dataname, p]));
    check(heard.sender_name === 'inspector' && heard.msg_purpose === 'chat', 'listen received the page\'s envelope');
    check(byName.message_text.sha256 === sha256(Buffer.from('hello from the page')), 'with the text');
    check(byName.data.payload_type === 'dictionary', 'with the dictionary');
    check(byName['dropped.png'].payload_type === 'image' && byName['dropped.png'].sha256 === sha256(png(24, 24)), 'with the dropped file, byte for byte');
    check(byName['people.csv'].payload_type === 'arrowtable', 'with the CSV converted to an Arrow table, as send does');
    const own = page.locator('article.msg', { has: page.locator('.subject', { hasText: 'page.sent' }) });
    await own.locator('img.media').waitFor();
    const ownCells = await own.locator('tr.payload[data-name="people.csv"] table.arrow td').allTextContents();
    check(ownCells.join() === '1,Alice,2,Bob', `the page shows the message it sent (${ownCells})`);

    // ---- the screenshot for the README ----
    await page.locator('#send-panel summary').click();
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: a.screenshot, fullPage: true });
    log(`screenshot: ${a.screenshot}`);
    check(pageErrors.length === 0, `no errors on the page (${pageErrors.join('; ')})`);
  } finally {
    await ctx.close().catch(() => {});
  }
}

let code = 0;
try {
  await main();
  log(`passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (e) {
  log(`FAILED: ${e.stack || e.message}`);
  for (const child of children) if (child.err && child.name) log(`${child.name} stderr: ${child.err.slice(-2000)}`);
  code = 1;
} finally {
  await stopAll();
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(code);
