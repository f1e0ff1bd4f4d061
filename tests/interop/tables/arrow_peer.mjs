// apache-arrow (Node) side of natsbridge-table-arrow's live interop tests.
//
//   node arrow_peer.mjs write stream|file PATH   write the Node reference table
//   node arrow_peer.mjs check PATH               read PATH (stream or file), compare it cell
//                                                by cell with the reference; print JSON,
//                                                exit 1 on a mismatch
// The reference must match `node_reference_batch()` in crates/table-arrow/tests/util.rs.
import { readFileSync, writeFileSync } from 'node:fs';
import {
  Bool, Dictionary, Float64, Int32, Int64, Table, Utf8, makeVector, tableFromIPC, tableToIPC, vectorFromArray,
} from 'apache-arrow';

const N = 5;
const nth = (i, v) => (i % 3 === 1 ? null : v);
const range = (f) => Array.from({ length: N }, (_, i) => f(i));

function reference() {
  return new Table({
    id: vectorFromArray(range((i) => nth(i, i * 7 - 3)), new Int32()),
    big: vectorFromArray(range((i) => nth(i, BigInt(i) * 10000000000n)), new Int64()),
    x: vectorFromArray(range((i) => nth(i, i / 8)), new Float64()),
    name: vectorFromArray(range((i) => nth(i, `node ${i} ü`)), new Utf8()),
    flag: vectorFromArray(range((i) => nth(i, i % 2 === 0)), new Bool()),
    tag: vectorFromArray(range((i) => nth(i, ['red', 'green'][i % 2])), new Dictionary(new Utf8(), new Int32())),
  });
}

const plain = (v) => (typeof v === 'bigint' ? v.toString() : v);

function cells(table) {
  const out = {};
  for (const field of table.schema.fields) {
    out[field.name] = Array.from(table.getChild(field.name).toArray
      ? [...table.getChild(field.name)] : [], plain);
  }
  return out;
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'write') {
  writeFileSync(b, tableToIPC(reference(), a));
} else if (cmd === 'check') {
  const got = tableFromIPC(readFileSync(a));
  const want = cells(reference());
  const have = cells(got);
  const mismatches = [];
  for (const [name, col] of Object.entries(want)) {
    if (!(name in have)) { mismatches.push(`missing column ${name}`); continue; }
    col.forEach((v, i) => {
      if (have[name][i] !== v) mismatches.push(`${name}[${i}]: ${have[name][i]} != ${v}`);
    });
  }
  console.log(JSON.stringify({ rows: got.numRows, mismatches, cells: have }));
  process.exit(mismatches.length ? 1 : 0);
} else {
  console.error(`unknown command ${cmd}`);
  process.exit(2);
}
