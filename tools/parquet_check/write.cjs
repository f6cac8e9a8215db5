// Writes one set of documents as JSON lines and as Parquet files from two real producers, for
// tests/e2e_parquet.sh: DuckDB (every codec, format v1 and v2 pages, dictionary or not, a column inside
// a struct, several row groups) and arrow-rs through parquet-wasm (every codec, writer v1 and v2,
// PLAIN, dictionary, DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY, small pages).
//
// usage: NODE_PATH=$(tools/parquet_check/install.sh) node tools/parquet_check/write.cjs OUT_DIR [N_DOCS]
// (long documents only from 1000 documents on: small sets make fuzzing seeds)
// OUT_DIR/docs.jsonl holds the non-null documents in row order ({"text": ...}); every OUT_DIR/*.parquet
// holds all rows, nulls included, in its column "text" (struct_*.parquet: "meta.text").
'use strict';
const fs = require('fs');
const path = require('path');
const { DuckDBInstance } = require('@duckdb/node-api');
const arrow = require('apache-arrow');
const pq = require('parquet-wasm/node');

const out = process.argv[2];
const n = Number(process.argv[3] || 3000);
fs.mkdirSync(out, { recursive: true });

// Deterministic documents: prose, Unicode, \r\n line ends, empty strings, nulls, repeats (so that
// dictionaries pay), a few long ones (so that pages and row groups split inside the column).
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const words = ['the', 'river', 'stone', 'école', 'naïve', '日本語', 'данные', '🙂', 'garden', 'x', 'of', 'window',
  'a', 'letter', 'tab\there', 'quote"s', 'back\\slash', 'Ωμέγα', 'zero'];
function sentence() {
  let s = '';
  const k = 3 + Math.floor(rnd() * 12);
  for (let i = 0; i < k; i++) s += (i ? ' ' : '') + pick(words);
  return s + pick(['.', '!', '?', '...']);
}
const docs = [];
for (let i = 0; i < n; i++) {
  const r = rnd();
  if (i % 17 === 5) docs.push(null);
  else if (i % 101 === 7) docs.push('');
  else if (r < 0.15 && i > 10) docs.push(docs[Math.floor(rnd() * i)] ?? 'repeat');
  else if (r < 0.16 && n >= 1000) docs.push(Array.from({ length: 200 + Math.floor(rnd() * 400) }, sentence).join(rnd() < 0.5 ? '\n' : '\r\n'));
  else docs.push(Array.from({ length: 1 + Math.floor(rnd() * 8) }, sentence).join(pick(['\n', '\r\n', ' ', '\n\n'])));
}
fs.writeFileSync(path.join(out, 'docs.jsonl'), docs.filter((d) => d !== null).map((d) => JSON.stringify({ text: d }) + '\n').join(''));

function arrowWrite(name, props) {
  const table = arrow.tableFromArrays({ text: arrow.vectorFromArray(docs, new arrow.Utf8()) });
  const wasmTable = pq.Table.fromIPCStream(arrow.tableToIPC(table, 'stream'));
  fs.writeFileSync(path.join(out, name), pq.writeParquet(wasmTable, props.build()));
}

async function main() {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  await con.run('set threads = 1'); // row groups of row_group_size (several threads merge them)
  const all = path.join(out, 'all_rows.json');
  fs.writeFileSync(all, docs.map((d, i) => JSON.stringify({ id: i, text: d }) + '\n').join(''));
  await con.run(`create table t as select * from read_json('${all}', format = 'newline_delimited', columns = {id: 'BIGINT', text: 'VARCHAR'})`);
  fs.unlinkSync(all);
  for (const codec of ['uncompressed', 'snappy', 'gzip', 'zstd']) {
    for (const v of ['V1', 'V2']) {
      const opts = `format parquet, compression ${codec}, parquet_version ${v}, row_group_size 1024`;
      await con.run(`copy (select id, text from t order by id) to '${out}/duckdb_${codec}_${v}.parquet' (${opts})`);
    }
  }
  // a low-cardinality order of the same rows, so that DuckDB writes dictionary pages
  await con.run(`copy (select id, text from t order by id) to '${out}/duckdb_dict.parquet' (format parquet, compression snappy, dictionary_size_limit 4000000, string_dictionary_page_size_limit 4000000)`);
  await con.run(`copy (select id, {'text': text, 'n': id} as meta from t order by id) to '${out}/struct_duckdb.parquet' (format parquet, compression zstd)`);

  const { WriterPropertiesBuilder, Compression, WriterVersion, Encoding } = pq;
  const codecs = { uncompressed: Compression.UNCOMPRESSED, snappy: Compression.SNAPPY, gzip: Compression.GZIP, zstd: Compression.ZSTD };
  for (const [cname, codec] of Object.entries(codecs)) {
    for (const [vname, version] of [['v1', WriterVersion.V1], ['v2', WriterVersion.V2]]) {
      for (const [ename, enc] of [['dict', null], ['plain', Encoding.PLAIN], ['delta_length', Encoding.DELTA_LENGTH_BYTE_ARRAY], ['delta', Encoding.DELTA_BYTE_ARRAY]]) {
        let b = new WriterPropertiesBuilder().setCompression(codec).setWriterVersion(version)
          .setMaxRowGroupSize(1500).setDataPageSizeLimit(8192).setDictionaryPageSizeLimit(1 << 20);
        b = enc === null ? b.setDictionaryEnabled(true) : b.setDictionaryEnabled(false).setEncoding(enc);
        arrowWrite(`arrow_${cname}_${vname}_${ename}.parquet`, b);
      }
    }
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
