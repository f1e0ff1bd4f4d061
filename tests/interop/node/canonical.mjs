// Canonical value digests for the interop matrix (tests/interop/README.md, "Digests").
// Pure JavaScript, shared by the Node driver and the browser page; the caller supplies sha256.
// Keep in step with tests/interop/python/canonical.py. A JS peer's dictionary/jsontable digests use the
// 'js' number model (JSON.parse cannot tell 88 from 88.0); Arrow cells use 'typed'.

export const BINARY_KINDS = ['image', 'audio', 'video', 'binary'];
const INT_EXACT = 2 ** 53;

/**
 * Number models (README "Digests"). 'js': what JSON.parse leaves us, a number that cannot tell 88
 * from 88.0, so every integral number with |x| <= 2^53 is digits. 'typed': a BigInt is an integer
 * (digits), a number is a float and always takes the float form (88 -> 8.8e1): Arrow cells
 * (apache-arrow hands Int64 as BigInt, Float64 as number) and values from parseTypedJSON.
 */
export const MODELS = ['js', 'typed'];

/** The float form: shortest round-trip digits, scientific, exponent without '+'; 0 and -0 -> 0e0. */
export function canonFloat(x) {
  x = Number(x);
  if (Number.isNaN(x)) return 'null';
  if (x === Infinity) return '"Infinity"';
  if (x === -Infinity) return '"-Infinity"';
  if (x === 0) return '0e0';
  return x.toExponential().replace('e+', 'e');
}

export function canonNumber(x, model = 'js') {
  if (!MODELS.includes(model)) throw new Error('unknown number model ' + model);
  if (typeof x === 'bigint') {
    if (x <= BigInt(INT_EXACT) && x >= -BigInt(INT_EXACT)) return x.toString();
    return canonFloat(Number(x)); // beyond 2^53 every peer compares the nearest float64
  }
  if (model === 'js' && Number.isInteger(x) && Math.abs(x) <= INT_EXACT) return String(x === 0 ? 0 : x);
  return canonFloat(x);
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

export function canonJSON(v, model = 'js') {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' || typeof v === 'bigint') return canonNumber(v, model);
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Uint8Array) return JSON.stringify(toHex(v));
  if (Array.isArray(v)) return '[' + v.map((x) => canonJSON(x, model)).join(',') + ']';
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort(cmpCodePoints);
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonJSON(v[k], model)).join(',') + '}';
  }
  throw new TypeError('no canonical JSON for ' + typeof v);
}

/**
 * JSON.parse that keeps the number's type from its literal: an integer literal becomes a BigInt,
 * one with a fraction or exponent (88.0, 1e20) a number; canonJSON(parseTypedJSON(text), 'typed')
 * is then the typed digest input, for a JS host whose decoder keeps floats (e.g. MicroPython's
 * json.dumps text).
 */
export function parseTypedJSON(text) {
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const fail = (what) => { throw new SyntaxError(`parseTypedJSON: ${what} at ${i}`); };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; const o = {}; ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        ws(); if (text[i] !== '"') fail('key expected');
        const k = str(); ws(); if (text[i++] !== ':') fail("':' expected");
        Object.defineProperty(o, k, { value: value(), enumerable: true, writable: true, configurable: true }); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i++] === '}') return o;
        fail("',' or '}' expected");
      }
    }
    if (c === '[') {
      i++; const a = []; ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) {
        a.push(value()); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i++] === ']') return a;
        fail("',' or ']' expected");
      }
    }
    if (c === '"') return str();
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(lit, i)) { i += lit.length; return v; }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || !m[0]) fail('value expected');
    i += m[0].length;
    return m[2] || m[3] ? Number(m[0]) : BigInt(m[0]);
  };
  const str = () => {
    const start = i; i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const v = value(); ws();
  if (i !== text.length) fail('trailing characters');
  return v;
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

/**
 * Canonical string of a table given its column names and row objects (decoded by apache-arrow).
 * Cells follow the column type ('typed'): Int64 cells are BigInt (digits), Float64 cells are
 * numbers (float form). apache-arrow hands Int8..Int32 cells as numbers too: not in the matrix.
 */
export function tableCanonical(columns, rows) {
  return canonJSON({ columns, rows: rows.map((r) => columns.map((c) => cell(r[c]))) }, 'typed');
}

/** Columns of a decoded table (rows array, maybe with a non-enumerable `columns`). */
export function tableColumns(rows) {
  if (rows && Array.isArray(rows.columns)) return rows.columns;
  return rows.length ? Object.keys(rows[0]) : [];
}

const enc = new TextEncoder();

/**
 * The bytes whose sha256 is the value digest (README); sha256 is applied by the caller.
 * `model` is for dictionary/jsontable numbers: 'js' for values from JSON.parse (the default),
 * 'typed' for values from parseTypedJSON. Tables are always typed.
 */
export function digestInput(payloadType, value, model = 'js') {
  if (BINARY_KINDS.includes(payloadType)) return value;
  if (payloadType === 'text') return enc.encode(value);
  if (payloadType === 'dictionary' || payloadType === 'jsontable') return enc.encode(canonJSON(value, model));
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
