// Hosts the real MicroPython runtime (npm @micropython/micropython-webassembly-pyscript) for the
// MicroPython peer: loads it, copies msghandler_mpy.py and peer_glue.py into its file system, and
// registers the `mpyhost` module through which MicroPython reaches what a board's network stack
// would give it: one blocking HTTP GET (`http_get`). Bulk bytes cross the JS/MicroPython boundary
// as files in MicroPython's in-memory file system (/xfer), because its JS proxies copy a
// Uint8Array element by element (~1.5 s per MB) and drop every int beyond 32 bits.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { loadMicroPython } from '@micropython/micropython-webassembly-pyscript';

const here = dirname(fileURLToPath(import.meta.url));
export const XFER = '/xfer';
export const HEAPSIZE = 32 * 1024 * 1024; // the GC heap a 1.2 MB link payload needs (a board would have less)
const GET_TIMEOUT_MS = 30_000;

// A blocking GET for synchronous MicroPython code: a worker thread runs fetch() while the main
// thread waits on an Atomics flag, then takes the answer off the port with receiveMessageOnPort.
const WORKER_SRC = `
const { workerData } = require('node:worker_threads');
const { port, flag } = workerData;
port.on('message', async ({ url, ua, timeoutMs }) => {
  let out;
  try {
    const r = await fetch(url, { redirect: 'manual', headers: ua ? { 'User-Agent': ua } : {}, signal: AbortSignal.timeout(timeoutMs) });
    const body = new Uint8Array(await r.arrayBuffer());
    out = { status: r.status, location: r.headers.get('location') || '', body, error: '' };
  } catch (e) {
    out = { status: 0, location: '', body: new Uint8Array(0), error: String((e && e.cause && e.cause.message) || (e && e.message) || e) };
  }
  port.postMessage(out, [out.body.buffer]);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
`;

class SyncHttp {
  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.flag = new Int32Array(new SharedArrayBuffer(4));
    this.worker = new Worker(WORKER_SRC, { eval: true, workerData: { port: port2, flag: this.flag }, transferList: [port2] });
    this.worker.unref();
    this.port.unref();
  }

  get(url, ua, timeoutMs = GET_TIMEOUT_MS) {
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage({ url, ua, timeoutMs });
    if (Atomics.wait(this.flag, 0, 0, timeoutMs + 5000) === 'timed-out') {
      return { status: 0, location: '', body: new Uint8Array(0), error: `no answer within ${timeoutMs} ms` };
    }
    return receiveMessageOnPort(this.port).message;
  }

  close() { return this.worker.terminate(); }
}

/**
 * Start MicroPython with the peer loaded. Returns { mp, glue, put, take, close }:
 * glue is the peer_glue module (a MicroPython module proxy; its functions take and return strings),
 * put(path, bytes) / take(path) move bytes through MicroPython's file system.
 */
export async function startMicroPython({ heapsize = HEAPSIZE } = {}) {
  const log = (s) => process.stderr.write(`[mpy] ${s}\n`); // MicroPython's print() must not reach our stdout
  const mp = await loadMicroPython({ heapsize, stdout: log, stderr: log });
  mp.FS.mkdir('/lib');
  mp.FS.mkdir(XFER);
  for (const f of ['msghandler_mpy.py', 'peer_glue.py']) mp.FS.writeFile(`/lib/${f}`, readFileSync(join(here, f)));
  let http = null;
  mp.registerJsModule('mpyhost', {
    // -> {status, location, error}; the body is left in MicroPython's file system at bodyPath
    http_get(url, ua, bodyPath) {
      http ||= new SyncHttp();
      const r = http.get(url, ua);
      mp.FS.writeFile(bodyPath, r.body);
      return { status: r.status, location: r.location, error: r.error };
    },
  });
  const glue = mp.pyimport('peer_glue');
  return {
    mp,
    glue,
    put(path, bytes) { mp.FS.writeFile(path, bytes); },
    take(path) { const b = mp.FS.readFile(path); mp.FS.unlink(path); return b; },
    async close() { if (http) await http.close(); },
  };
}
