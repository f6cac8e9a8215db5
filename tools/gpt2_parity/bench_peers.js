// Peers of anvil's GPT-2 encoder on the same text: npm "tiktoken" (OpenAI's Rust, WASM) and
// "gpt-tokenizer" (pure JS), both with the r50k_base / gpt2 vocabulary.
//   node bench_peers.js RUNS FILE...   prints one line per peer: median MB/s and tokens/s over RUNS.
'use strict';
const fs = require('fs');
const { get_encoding } = require('tiktoken');
const gptTokenizer = require('gpt-tokenizer/cjs/encoding/r50k_base');

const runs = Math.max(1, Number(process.argv[2]));
const texts = process.argv.slice(3).map((f) => fs.readFileSync(f, 'utf8'));
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0);

function bench(name, encode) {
  encode(texts[0].slice(0, 200000)); // untimed warm-up: let the JIT compile the hot path first
  const secs = [];
  let tokens = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    tokens = 0;
    for (const t of texts) tokens += encode(t).length;
    secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  secs.sort((a, b) => a - b);
  const med = secs[Math.floor(runs / 2)];
  console.log(`${name} threads=1 MB/s=${(bytes / med / 1e6).toFixed(2)} tokens/s=${Math.round(tokens / med)} ` +
    `tokens=${tokens} bytes=${bytes} runs=${runs}`);
}

const enc = get_encoding('gpt2');
bench('tiktoken', (t) => enc.encode_ordinary(t));
enc.free();
bench('gpt-tokenizer', (t) => gptTokenizer.encode(t));
