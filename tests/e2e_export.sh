#!/usr/bin/env bash
# Export end to end: trains tiny models on generated text, exports each as GGUF (f32, f16, q8_0) and
# loads every file in real llama.cpp (npm node-llama-cpp, prebuilt CPU binaries, f32 KV cache, no
# flash attention). Checks: the prompt tokenizes to the same ids as `anvil tokenizer encode`, the
# last position's logits agree with `anvil logits` (max abs diff / max abs logit) within each type's
# bound, and f32's greedy generation equals `anvil sample --temperature 0`; greedy agreement of f16
# and q8_0 with f32 is reported. GPT-2: bounds 5e-3 (f32, f16: ggml's CPU GELU rounds its input to
# fp16) and 3e-2 (q8_0); a hard prompt (digits, contractions, runs of spaces, newlines, non-ASCII)
# must tokenize identically with the GPT-2 pattern and with cl100k's (exported as llama.cpp's "dbrx"
# pre-tokenizer). Llama: bounds 1e-4, 5e-3 and 2e-2, for an untied head with grouped-query attention
# and for a tied one with Llama 3 RoPE scaling.
# Then the Hugging Face layout of each model: export, import back (model.safetensors, logits and the
# GGUF export bit-identical), and when PyTorch is installed, tools/hf_check.py runs an independent
# GPT-2 or Llama on the exported files. Last, bad input.
# node-llama-cpp is cached in .cache/llama_check (network only once, ~85 MB).
set -euo pipefail
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
anvil=${ANVIL:-$src/build/anvil}
cache="$src/.cache/llama_check"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- llama.cpp through node-llama-cpp ----
"$src/tools/npm_cache.sh" llama_check --omit=optional >/dev/null
cp "$src/tools/llama_check/check.mjs" "$cache/check.mjs" # ES modules resolve packages next to the script

# ---- a tiny trained run ----
# English-ish text: 16 sentences over words built from syllables, repeated in random order
# (deterministic), so that 120 small steps teach the model enough for a varied greedy continuation.
awk 'BEGIN {
  srand(7)
  ns = split("ka lo mi ra ten sor ve dan pel tu gri shan or el bar ston wick", syl, " ")
  split("the a one every that this my your our some", D, " ")
  split("quickly slowly happily quietly often never always", A, " ")
  split("in near under behind over beside", P, " ")
  for (i = 1; i <= 40; i++) { N[i] = syl[1 + int(rand() * ns)] syl[1 + int(rand() * ns)]; V[i] = syl[1 + int(rand() * ns)] "ed" }
  for (k = 1; k <= 16; k++)
    S[k] = sprintf("%s %s %s %s %s %s %s the %s.", D[1 + int(rand() * 10)], N[1 + int(rand() * 40)], A[1 + int(rand() * 7)],
      V[1 + int(rand() * 40)], D[1 + int(rand() * 10)], N[1 + int(rand() * 40)], P[1 + int(rand() * 6)], N[1 + int(rand() * 40)])
  for (doc = 0; doc < 30; doc++) {
    for (s = 0; s < 60; s++) printf "%s%s", S[1 + int(rand() * 16)], (s % 6 == 5 ? "\n" : " ")
    printf "\n\n\n"
  }
}' >"$work/corpus.txt"
"$anvil" data prepare --input "$work/corpus.txt" --vocab-size 400 --split-blank-lines 2 --val-fraction 0.1 \
  --out "$work/data" >"$work/prepare.log" 2>&1 || { cat "$work/prepare.log"; exit 1; }
echo '{"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab_size": 400, "block_size": 64}' >"$work/model.json"
"$anvil" train --data "$work/data" --out "$work/run" --config "$work/model.json" --batch 4 --steps 120 --lr 1e-2 \
  --eval-every 120 --threads 2 >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
echo "trained: $(grep 'val loss' "$work/train.log" | tail -1) ($(elapsed) s)"
run="$work/run"

# ---- GGUF in llama.cpp ----
prompt="our dandan quietly"
n_gen=24
# Exports a run as GGUF f32, f16 and q8_0 into dir and checks each in llama.cpp against anvil's
# tokens, logits (within the bounds given for f32, f16, q8_0) and greedy text.
gguf_check() { # dir run bound_f32 bound_f16 bound_q8_0
  local dir=$1 r=$2
  declare -A tol=([f32]=$3 [f16]=$4 [q8_0]=$5)
  printf '%s' "$prompt" | "$anvil" tokenizer encode --tokenizer "$r/tokenizer.json" >"$dir/encode.txt"
  "$anvil" logits --run "$r" --prompt "$prompt" --out "$dir/anvil_logits.json"
  "$anvil" sample --run "$r" --prompt "$prompt" --temperature 0 --max-tokens "$n_gen" >"$dir/anvil_sample.txt" 2>/dev/null
  for dtype in f32 f16 q8_0; do
    "$anvil" export --run "$r" --format gguf --dtype "$dtype" --out "$dir/model.$dtype.gguf" 2>/dev/null
    node "$cache/check.mjs" --model "$dir/model.$dtype.gguf" --prompt "$prompt" --n "$n_gen" \
      --anvil "$dir/anvil_logits.json" --tol "${tol[$dtype]}" --encode "$dir/encode.txt" \
      >"$dir/llama.$dtype.json" 2>"$dir/llama.$dtype.log" || { echo "FAIL: llama.cpp $dtype"; cat "$dir/llama.$dtype.log"; exit 1; }
    echo "gguf $dtype ($(stat -c %s "$dir/model.$dtype.gguf") bytes): $(tr '\n' ' ' <"$dir/llama.$dtype.log")"
  done
  # Greedy text (f32 must equal anvil's) and greedy token agreement of f16/q8_0 with f32.
  node - "$dir" <<'EOF'
const fs = require("fs");
const [dir] = process.argv.slice(2);
const r = d => JSON.parse(fs.readFileSync(`${dir}/llama.${d}.json`, "utf8"));
const f32 = r("f32");
const anvilText = fs.readFileSync(`${dir}/anvil_sample.txt`, "utf8");
const sameText = anvilText === f32.text;
console.log(`greedy f32: llama.cpp ${JSON.stringify(f32.text)} (${f32.greedy.length} tokens) vs anvil sample ${JSON.stringify(anvilText)}: ${sameText ? "identical" : "DIFFER"}`);
let ok = sameText && f32.greedy.length > 0;
for (const d of ["f16", "q8_0"]) {
  const g = r(d).greedy;
  let same = 0;
  while (same < g.length && g[same] === f32.greedy[same]) same++;
  console.log(`greedy ${d}: ${same}/${f32.greedy.length} leading tokens agree with f32`);
  ok = ok && g.length > 0;
}
process.exit(ok ? 0 : 1);
EOF
}
echo "-- GPT-2"
gguf_check "$work" "$run" 5e-3 5e-3 3e-2

# The hard prompt with both split patterns: tokenizers of the run's vocabulary size trained on text
# like it (so that the patterns' splits matter: numbers, contractions, spaces) replace the run's,
# which leaves the weights meaningless for them but tokenization and logits comparable.
hard=$'It\'s 2024: 12345 kapels,  two  spaces\n\n\tand \xc3\x9cN\xc3\x8f \xe2\x80\x94 ok?! I\'LL.kapel'
awk 'BEGIN { srand(3); for (i = 0; i < 400; i++)
  printf "It'"'"'s %d: %d kapels,  two  spaces\n\n\tand \303\234N\303\217 \342\200\224 ok?! I'"'"'LL.kapel (%d)\n\n\n",
    1990 + int(rand() * 40), int(rand() * 100000), int(rand() * 1000) }' >"$work/hard.txt"
for pattern in gpt2 cl100k; do
  "$anvil" data prepare --input "$work/hard.txt" --vocab-size 400 --pattern "$pattern" --split-blank-lines 2 \
    --out "$work/data_$pattern" >"$work/prepare.log" 2>&1 || { cat "$work/prepare.log"; exit 1; }
  cp -r "$run" "$work/run_$pattern"
  cp "$work/data_$pattern/tokenizer.json" "$work/run_$pattern/tokenizer.json"
  r="$work/run_$pattern"
  "$anvil" export --run "$r" --format gguf --out "$r.gguf" 2>/dev/null
  "$anvil" logits --run "$r" --prompt "$hard" --out "$r.logits.json"
  printf '%s' "$hard" | "$anvil" tokenizer encode --tokenizer "$r/tokenizer.json" >"$r.encode.txt"
  node "$cache/check.mjs" --model "$r.gguf" --prompt "$hard" --n 0 --anvil "$r.logits.json" --encode "$r.encode.txt" \
    >/dev/null 2>"$r.log" || { echo "FAIL: hard prompt, $pattern pattern"; cat "$r.log"; exit 1; }
  echo "hard prompt, $pattern pattern: ids $(cat "$r.encode.txt"); $(tr '\n' ' ' <"$r.log")"
done
cmp -s "$work/run_gpt2.encode.txt" "$work/run_cl100k.encode.txt" && { echo "FAIL: the patterns do not differ here"; exit 1; }

# ---- Hugging Face layout ----
# Exports a run into dir/hf and imports it into dir/imported: the weights file, the logits and the
# f32 GGUF export must be bit-identical to the run's; then PyTorch's logits within the bound.
hf_round_trip() { # dir run bound
  local dir=$1 r=$2
  "$anvil" export --run "$r" --format hf --out "$dir/hf" 2>/dev/null
  for f in config.json generation_config.json model.safetensors tokenizer.json README.md; do
    [ -s "$dir/hf/$f" ] || { echo "FAIL: hf export lacks $f"; exit 1; }
  done
  # The model card: metadata, the data directory's token counts, the run's steps and losses.
  local train_tokens
  train_tokens=$(sed -n 's/.*"train": {[^}]*"tokens": \([0-9]*\).*/\1/p' "$work/data/meta.json")
  head -1 "$dir/hf/README.md" | grep -qx -- --- && grep -q '^license: null' "$dir/hf/README.md" &&
    grep -q "^| train | .* | $train_tokens |$" "$dir/hf/README.md" &&
    grep -q '^120 of 120 optimizer steps' "$dir/hf/README.md" && grep -q '^Final training loss [0-9.]*\. Validation loss' "$dir/hf/README.md" ||
    { echo "FAIL: the model card lacks metadata, data or training:"; cat "$dir/hf/README.md"; exit 1; }
  "$anvil" import --from hf "$dir/hf" --out "$dir/imported" 2>/dev/null
  cmp -s "$dir/hf/model.safetensors" "$dir/imported/model.safetensors" || { echo "FAIL: model.safetensors differs after hf export + import"; exit 1; }
  "$anvil" logits --run "$dir/imported" --prompt "$prompt" --out "$dir/imported_logits.json"
  cmp -s "$dir/anvil_logits.json" "$dir/imported_logits.json" || { echo "FAIL: logits differ after hf export + import"; exit 1; }
  "$anvil" export --run "$r" --format gguf --name m --out "$dir/run.gguf" 2>/dev/null
  "$anvil" export --run "$dir/imported" --format gguf --name m --out "$dir/imported.gguf" 2>/dev/null
  cmp -s "$dir/run.gguf" "$dir/imported.gguf" || { echo "FAIL: the GGUF export differs after hf export + import"; exit 1; }
  echo "hf: export + import round trip: model.safetensors, logits and GGUF export bit-identical"
  if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    /usr/bin/python3 "$src/tools/hf_check.py" "$dir/hf" "$dir/anvil_logits.json" --tol "$3"
  else
    echo "hf: PyTorch not installed, tools/hf_check.py skipped"
  fi
}
hf_round_trip "$work" "$run" 1e-4

# ---- Llama ----
# Two runs on the same data: grouped-query attention (4 heads, 2 key/value heads) with an untied head;
# and a tied head with Llama 3 RoPE scaling whose original context (16) is shorter than the positions
# the checks reach (the prompt and 24 generated tokens), so that the scaling changes the logits.
llama='"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "hidden_size": 64, "intermediate_size": 160, "vocab_size": 400, "block_size": 64, "rope_theta": 10000,
  "rms_norm_eps": 1e-5'
echo "{$llama, \"tie_word_embeddings\": false}" >"$work/llama_untied.json"
echo "{$llama, \"tie_word_embeddings\": true, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 4,
  \"low_freq_factor\": 1, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 16}}" >"$work/llama_tied_llama3.json"
for variant in untied tied_llama3; do
  dir="$work/llama_$variant"
  mkdir -p "$dir"
  "$anvil" train --data "$work/data" --out "$dir/run" --config "$work/llama_$variant.json" --batch 4 --steps 120 \
    --lr 1e-2 --eval-every 120 --threads 2 >"$dir/train.log" 2>&1 || { cat "$dir/train.log"; exit 1; }
  echo "-- Llama, $variant: trained: $(grep 'val loss' "$dir/train.log" | tail -1) ($(elapsed) s)"
  gguf_check "$dir" "$dir/run" 1e-4 5e-3 2e-2
  hf_round_trip "$dir" "$dir/run" 1e-5
done
# The scaling matters: the same weights without it give other logits.
dir="$work/llama_tied_llama3"
cp -r "$dir/run" "$dir/unscaled"
sed -i 's/"rope_scaling": {[^}]*}/"rope_scaling": null/' "$dir/unscaled/config.json"
"$anvil" logits --run "$dir/unscaled" --prompt "$prompt" --out "$dir/unscaled_logits.json"
node - "$dir/anvil_logits.json" "$dir/unscaled_logits.json" <<'EOF'
const fs = require("fs");
const [a, b] = process.argv.slice(2).map(f => JSON.parse(fs.readFileSync(f, "utf8")).logits);
let diff = 0, scale = 0;
a.forEach((x, i) => { diff = Math.max(diff, Math.abs(x - b[i])); scale = Math.max(scale, Math.abs(x)); });
console.log(`llama3 scaling: without it anvil's logits move by ${(diff / scale).toExponential(3)} of max |logit| (must exceed 1e-2)`);
process.exit(diff / scale > 1e-2 ? 0 : 1);
EOF

# ---- bad input: a non-zero exit and one line "anvil: ..." naming the problem ----
cp -r "$run" "$work/truncated"
size=$(stat -c %s "$work/truncated/model.safetensors")
head -c $((size - 1000)) "$run/model.safetensors" >"$work/truncated/model.safetensors"
fails=0
expect_fail() { # expected-text command...
  local want=$1; shift
  if "$@" >/dev/null 2>"$work/err"; then echo "FAIL: accepted: $*"; fails=$((fails + 1)); return; fi
  if [ "$(wc -l <"$work/err")" != 1 ] || ! grep -q "^anvil: .*$want" "$work/err"; then
    echo "FAIL: '$*' printed:"; cat "$work/err"; fails=$((fails + 1)); return
  fi
  echo "bad input ok: $(cat "$work/err")"
}
expect_fail "unknown format 'onnx'" "$anvil" export --run "$run" --format onnx --out "$work/x"
expect_fail "unknown type 'q4_0'" "$anvil" export --run "$run" --format gguf --dtype q4_0 --out "$work/x"
expect_fail "hf format is written in f32" "$anvil" export --run "$run" --format hf --dtype f16 --out "$work/x"
expect_fail "$work/missing: run directory not found" "$anvil" export --run "$work/missing" --format gguf --out "$work/x"
expect_fail "model.safetensors" "$anvil" export --run "$work/truncated" --format gguf --out "$work/x"
expect_fail "/nonexistent/out.gguf: cannot create" "$anvil" export --run "$run" --format gguf --out /nonexistent/out.gguf
expect_fail "needs --run, --format and --out" "$anvil" export --run "$run" --format gguf
expect_fail "$work/missing: not a directory" "$anvil" import --from hf "$work/missing" --out "$work/y"
expect_fail "unknown source format" "$anvil" import --from onnx "$work/hf" --out "$work/y"
expect_fail "model.safetensors" "$anvil" import --from hf "$work/truncated" --out "$work/y"
expect_fail "is not empty" "$anvil" import --from hf "$work/hf" --out "$run"
# Llama directories anvil cannot take: one line naming the file and the problem, no run written.
# st_edit SRC DST DROP SWAP: SRC's safetensors without tensor DROP, with SWAP's two dimensions exchanged.
st_edit() {
  node - "$@" <<'EOF'
const fs = require("fs");
const [src, dst, drop, swap] = process.argv.slice(2);
const b = fs.readFileSync(src), n = Number(b.readBigUInt64LE(0));
const header = JSON.parse(b.subarray(8, 8 + n).toString()), data = b.subarray(8 + n);
const out = {}, parts = [];
let off = 0;
for (const [name, t] of Object.entries(header)) {
  if (name === "__metadata__") { out[name] = t; continue; }
  if (name === drop) continue;
  const bytes = data.subarray(t.data_offsets[0], t.data_offsets[1]);
  out[name] = {dtype: t.dtype, shape: name === swap ? [t.shape[1], t.shape[0]] : t.shape, data_offsets: [off, off + bytes.length]};
  parts.push(bytes);
  off += bytes.length;
}
let json = JSON.stringify(out);
json += " ".repeat((8 - json.length % 8) % 8);
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(json.length));
fs.writeFileSync(dst, Buffer.concat([len, Buffer.from(json), ...parts]));
EOF
}
expect_import_fail() { # expected-text hf-dir
  expect_fail "$1" "$anvil" import --from hf "$2" --out "$work/y"
  [ ! -e "$work/y" ] || { echo "FAIL: a failed import left $work/y"; fails=$((fails + 1)); rm -rf "$work/y"; }
}
lhf="$work/llama_untied/hf"
for bad in 'model_type "llama" "mistral"' 'model_type "llama" "qwen2"' 'attention_bias false true'; do
  read -r key from to <<<"$bad"
  rm -rf "$work/bad_hf" && cp -r "$lhf" "$work/bad_hf"
  sed -i "s/\"$key\": $from/\"$key\": $to/" "$work/bad_hf/config.json"
  expect_import_fail "bad_hf/config.json: $key $to" "$work/bad_hf"
done
rm -rf "$work/bad_hf" && cp -r "$lhf" "$work/bad_hf"
st_edit "$lhf/model.safetensors" "$work/bad_hf/model.safetensors" lm_head.weight ""
expect_import_fail "bad_hf/model.safetensors: missing tensor 'lm_head.weight' (the config's head is untied" "$work/bad_hf"
st_edit "$lhf/model.safetensors" "$work/bad_hf/model.safetensors" "" model.layers.1.self_attn.k_proj.weight
expect_import_fail "bad_hf/model.safetensors: tensor 'model.layers.1.self_attn.k_proj.weight' has shape .64, 32., expected .32, 64." "$work/bad_hf"
[ "$fails" = 0 ]
echo "e2e_export: ok in $(elapsed) s"
