// Bundles the browser peer for peer.html: node build.mjs -> dist/peer.bundle.js
import esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
esbuild.buildSync({
  entryPoints: [join(here, 'src/page.js')],
  bundle: true,
  outfile: join(here, 'dist/peer.bundle.js'),
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  logLevel: 'warning',
  external: ['crypto'], // a guarded Node-only fallback inside nats.ws (tweetnacl); browsers take self.crypto
});
esbuild.buildSync({
  entryPoints: [join(here, 'src/msghandler_csr.js')],
  bundle: true,
  outfile: join(here, 'dist/msghandler-csr-bundle.js'),
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  logLevel: 'warning',
  external: ['crypto'], // a guarded Node-only fallback inside nats.ws (tweetnacl); browsers take self.crypto
});
console.log('built dist/peer.bundle.js and dist/msghandler-csr-bundle.js');
