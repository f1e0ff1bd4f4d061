// Canonical value digests for the interop matrix (interop/README.md, "Digests").
// Pure JavaScript, shared by the Node driver and the browser page; the caller supplies sha256.
// Keep in step with interop/python/canonical.py.

export const BINARY_KINDS = ['image', 'audio', 'video', 'binary'];
const INT_EXACT = 2 ** 53;

export function canonNumber(x) {
  if (typeof x === 'bigint') {
    if (x <= BigInt(INT_EXACT) && x >= -BigInt(INT_EXACT)) return x.toString();
    x = Number(x); // beyond 2^53 every peer compares the nearest float64
  }
  if (Number.isNaN(x)) return 'null';
  if (x === Infinity) return '"Infinity"';
  if (x === -Infinity) return '"-Infinity"';
  if (Number.isInteger(x) && Math.abs(x) <= INT_EXACT) return String(x === 0 ? 0 : x);
  // shortest round-trip digits, scientific, exponent without '+'
  return x.toExponential().replace('e+', 'e');
}

function cmpCodePoints(a, b) {
  const A = Array.from(a), B = Array.from(b);
  const n = Math.min(A.length, B.length);
  for (let i = 0; i < n; i++) {
    const d = A[i].codePointAt(0) - B[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return A.length - B.length;
}

export function canonJSON(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' || typeof v === 'bigint') return canonNumber(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Uint8Array) return JSON.stringify(toHex(v));
  if (Array.isArray(v)) return '[' + v.map(canonJSON).join(',') + ']';
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort(cmpCodePoints);
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonJSON(v[k])).join(',') + '}';
  }
  throw new TypeError('no canonical JSON for ' + typeof v);
}

export function toHex(u8) {
  let s = '';
  for (let i = 0; i < u8.length; i++) s += u8[i].toString(16).padStart(2, '0');
  return s;
}

function cell(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' && Number.isNaN(v)) return null;
  return v;
}

/** Canonical string of a table given its column names and row objects. */
export function tableCanonical(columns, rows) {
  return canonJSON({ columns, rows: rows.map((r) => columns.map((c) => cell(r[c]))) });
}

/** Columns of a decoded table (rows array, maybe with a non-enumerable `columns`). */
export function tableColumns(rows) {
  if (rows && Array.isArray(rows.columns)) return rows.columns;
  return rows.length ? Object.keys(rows[0]) : [];
}

const enc = new TextEncoder();

/** The bytes whose sha256 is the value digest (README); sha256 is applied by the caller. */
export function digestInput(payloadType, value) {
  if (BINARY_KINDS.includes(payloadType)) return value;
  if (payloadType === 'text') return enc.encode(value);
  if (payloadType === 'dictionary' || payloadType === 'jsontable') return enc.encode(canonJSON(value));
  if (payloadType === 'arrowtable' || payloadType === 'table') return enc.encode(tableCanonical(tableColumns(value), value));
  throw new Error('unknown payload_type ' + payloadType);
}

/** Deterministic bytes for spec entries `generated: {n, seed}` (xorshift32, little-endian words). */
export function xorshiftBytes(n, seed) {
  let x = (seed >>> 0) || 0x9e3779b9;
  const words = Math.ceil(n / 4);
  const out = new Uint8Array(words * 4);
  for (let i = 0; i < words; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[4 * i] = x & 0xff;
    out[4 * i + 1] = (x >>> 8) & 0xff;
    out[4 * i + 2] = (x >>> 16) & 0xff;
    out[4 * i + 3] = (x >>> 24) & 0xff;
  }
  return out.subarray(0, n);
}
