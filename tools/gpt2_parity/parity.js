// Reference side of anvil's GPT-2 parity test (tests/e2e_gpt2_parity.sh), using OpenAI's tiktoken
// (Rust compiled to WASM, npm "tiktoken") as the source of truth for token ids.
//
//   node parity.js setup DIR
//       writes DIR/r50k_base.tiktoken and DIR/cl100k_base.tiktoken (rank files converted from the
//       npm package's data) and DIR/adversarial/*.txt (deterministic tricky texts, valid UTF-8)
//   node parity.js compare REFERENCE LIST ANVIL_IDS...
//       REFERENCE: tiktoken:<encoding> (ordinary text, no specials) or hf:<tokenizer.json> (Hugging
//       Face tokenizers, the Rust library's Node binding; its added tokens are always recognised).
//       LIST: one document path per line; each ANVIL_IDS file: one line of space-separated ids per
//       document (anvil tokenizer encode --input ...). Encodes every document with the reference and
//       compares ids exactly; prints the counts and the first mismatch; exit 1 on any mismatch.
'use strict';
const fs = require('fs');
const path = require('path');
const { get_encoding } = require('tiktoken');

function writeRankFile(name, out) {
  const data = require(`tiktoken/encoders/${name}.json`);
  const parts = data.bpe_ranks.split(/\s+/).filter((s) => s.length);
  // Compact form: "! <first rank> tok tok ..." (a '!' restarts at a new rank).
  const lines = [];
  let rank = 0;
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === '!') {
      rank = Number(parts[++i]);
      continue;
    }
    lines.push(`${parts[i]} ${rank++}`);
  }
  fs.writeFileSync(out, lines.join('\n') + '\n');
  return lines.length;
}

// xorshift32: deterministic texts without depending on Math.random.
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

// Pieces chosen to hit every branch of the split patterns.
const PIECES = [
  ' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r', '\u000b', '\u000c', '\u0085', '\u00a0', '\u1680',
  '\u2000', '\u2009', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\u200b', '\ufeff', '\u180e',
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'x", "'", "''", '\u017f',
  'the', 'The', 'word', 'hello', 'don', 'can', 'I', 'a', 'ab', 'é', 'e\u0301', 'n\u0303', 'Ωμέγα', 'Привет',
  'مرحبا', 'שלום', '\u200f', '\u200e', '中文', '日本語', 'ひらがな', 'カタカナ', '한국어', 'ไทย', 'हिन्दी', 'ᚠᛇᚻ',
  '0', '1', '42', '123', '1234', '12345678901234', '٣٤٥', '²', '½', 'Ⅻ', '〇', '𝟘𝟙', '3.14', '1,000', '-7',
  '!', '?', '.', ',', ';', ':', '...', '—', '–', '-', '_', '(', ')', '[', ']', '{', '}', '<', '>', '/', '\\',
  '"', '“', '”', '‘', '’', '«', '»', '@', '#', '$', '€', '%', '^', '&', '*', '+', '=', '|', '~', '`',
  '😀', '👍🏽', '👨\u200d👩\u200d👧', '🏳️\u200d🌈', '❤️', '\u0000', '\u0001', '\u001b', '\u001f', '\u007f',
  '\u0300', '\u0301\u0302', '𐍈', '🙂🙂🙂', '<|endoftext|>', '<|fim_prefix|>', 'http://example.com/a?b=c',
];

function adversarial(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const fixed = [
    ' '.repeat(5000) + 'x' + ' '.repeat(3000),
    '9'.repeat(20000),
    '\n'.repeat(1000) + 'a' + '\r\n'.repeat(500),
    "it's 'tis don't I'll we'd they're you've I'm 's 't '",
    "'s",
    'trailing spaces   ',
    'tabs\t\t\tand\t \tmixed \t',
    '\u0000\u0000nul bytes\u0000',
    'a'.repeat(10000),
    '!'.repeat(3000) + '?'.repeat(10),
    '👨\u200d👩\u200d👧\u200d👦'.repeat(300),
    '中文字符'.repeat(2000),
    'e\u0301'.repeat(2000),
    ' \u00a0 \u3000\u3000x\u2028\u2029 y   ',
  ];
  const docs = fixed.slice();
  const r = rng(20240520);
  for (let d = 0; d < 400; d++) {
    let s = '';
    const n = 20 + Math.floor(r() * 400);
    for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
    docs.push(s);
  }
  // Random code points from the whole range (no surrogates: JS strings cannot hold them alone).
  for (let d = 0; d < 100; d++) {
    let s = '';
    for (let i = 0; i < 300; i++) {
      let cp;
      const k = r();
      if (k < 0.4) cp = Math.floor(r() * 0x80);
      else if (k < 0.7) cp = 0x80 + Math.floor(r() * 0x780);
      else if (k < 0.95) cp = 0x800 + Math.floor(r() * 0xf800);
      else cp = 0x10000 + Math.floor(r() * 0x100000);
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x20;
      s += String.fromCodePoint(cp);
    }
    docs.push(s);
  }
  docs.forEach((s, i) => fs.writeFileSync(path.join(dir, `adv_${String(i).padStart(4, '0')}.txt`), s));
  return docs.length;
}

function parseIds(line) {
  const t = line.trim();
  return t.length ? t.split(/\s+/).map(Number) : [];
}

// { encode(text) -> Promise<ids>, show(id) -> text, free() } for a reference spec.
function reference(spec) {
  const [kind, arg] = [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)];
  if (kind === 'tiktoken') {
    const enc = get_encoding(arg);
    return {
      encode: async (text) => Array.from(enc.encode_ordinary(text)),
      show: (id) => Buffer.from(enc.decode(new Uint32Array([id]))).toString('latin1'),
      free: () => enc.free(),
    };
  }
  if (kind === 'hf') {
    const { Tokenizer } = require('tokenizers');
    const tok = Tokenizer.fromFile(arg);
    return {
      encode: async (text) => (await tok.encode(text, null, { addSpecialTokens: false })).getIds(),
      show: (id) => tok.idToToken(id),
      free: () => {},
    };
  }
  throw new Error(`unknown reference ${spec}`);
}

async function compare(spec, listFile, anvilFiles) {
  const ref = reference(spec);
  const docs = fs.readFileSync(listFile, 'utf8').split('\n').filter((s) => s.length);
  const outs = anvilFiles.map((f) => fs.readFileSync(f, 'utf8').split('\n'));
  let bytes = 0, tokens = 0, mismatches = 0, first = null;
  const t0 = process.hrtime.bigint();
  for (let d = 0; d < docs.length; d++) {
    const buf = fs.readFileSync(docs[d]);
    bytes += buf.length;
    const want = await ref.encode(buf.toString('utf8'));
    tokens += want.length;
    for (let k = 0; k < outs.length; k++) {
      const got = parseIds(outs[k][d] ?? '');
      let at = -1;
      const n = Math.max(got.length, want.length);
      for (let i = 0; i < n && at < 0; i++) if (got[i] !== want[i]) at = i;
      if (at >= 0) {
        mismatches++;
        if (!first) first = { doc: docs[d], source: anvilFiles[k], at, got, want };
      }
    }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${spec}: ${docs.length} documents, ${bytes} bytes, ${tokens} tokens per run, ` +
    `${outs.length} anvil run(s) compared, ${mismatches} mismatching documents (reference took ${secs.toFixed(1)} s)`);
  if (first) {
    const lo = Math.max(0, first.at - 5);
    const show = (ids) => ids.slice(lo, first.at + 6).map((id) => `${id}:${JSON.stringify(ref.show(id))}`).join(' ');
    console.log(`first mismatch: ${first.doc} (${path.basename(first.source)}) at token ${first.at}`);
    console.log(`  anvil:    ${show(first.got)}`);
    console.log(`  ${spec}: ${show(first.want)}`);
  }
  ref.free();
  return mismatches === 0 && docs.length > 0;
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'setup') {
  const dir = args[0];
  fs.mkdirSync(dir, { recursive: true });
  const a = writeRankFile('r50k_base', path.join(dir, 'r50k_base.tiktoken'));
  const b = writeRankFile('cl100k_base', path.join(dir, 'cl100k_base.tiktoken'));
  const n = adversarial(path.join(dir, 'adversarial'));
  console.log(`setup: r50k_base ${a} ranks, cl100k_base ${b} ranks, ${n} adversarial documents`);
} else if (mode === 'compare') {
  compare(args[0], args[1], args.slice(2)).then((ok) => process.exit(ok ? 0 : 1), (e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  console.error('usage: node parity.js setup DIR | compare ENCODING LIST ANVIL_IDS...');
  process.exit(2);
}
