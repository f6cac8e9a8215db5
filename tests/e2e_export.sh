#!/usr/bin/env bash
# Export end to end: trains a tiny model on generated text, exports it as GGUF (f32, f16, q8_0) and
# loads each file in real llama.cpp (npm node-llama-cpp, prebuilt CPU binaries, f32 KV cache, no
# flash attention). Checks, for f32: the prompt tokenizes to the same ids as `anvil tokenizer
# encode`, the last position's logits agree with `anvil logits` within 5e-3 (max abs diff / max abs
# logit; ggml's CPU GELU rounds its input to fp16), and greedy generation equals `anvil sample
# --temperature 0`; for f16 and q8_0: logits within looser bounds, greedy agreement reported. A hard
# prompt (digits, contractions, runs of spaces, newlines, non-ASCII) must tokenize identically with
# the GPT-2 pattern and with cl100k's (exported as llama.cpp's "dbrx" pre-tokenizer).
# Then the Hugging Face layout: export, import back (logits bit-identical), and when PyTorch is
# installed, tools/hf_check.py runs an independent GPT-2 on the exported files. Last, bad input.
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
mkdir -p "$cache"
if ! cmp -s "$src/tools/llama_check/package.json" "$cache/package.json" || [ ! -d "$cache/node_modules/node-llama-cpp" ]; then
  cp "$src/tools/llama_check/package.json" "$cache/package.json"
  (cd "$cache" && npm install --omit=optional --no-audit --no-fund --silent)
fi
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
printf '%s' "$prompt" | "$anvil" tokenizer encode --tokenizer "$run/tokenizer.json" >"$work/encode.txt"
"$anvil" logits --run "$run" --prompt "$prompt" --out "$work/anvil_logits.json"
"$anvil" sample --run "$run" --prompt "$prompt" --temperature 0 --max-tokens "$n_gen" >"$work/anvil_sample.txt" 2>/dev/null
declare -A tol=([f32]=5e-3 [f16]=5e-3 [q8_0]=3e-2)
for dtype in f32 f16 q8_0; do
  "$anvil" export --run "$run" --format gguf --dtype "$dtype" --out "$work/model.$dtype.gguf" 2>/dev/null
  node "$cache/check.mjs" --model "$work/model.$dtype.gguf" --prompt "$prompt" --n "$n_gen" \
    --anvil "$work/anvil_logits.json" --tol "${tol[$dtype]}" --encode "$work/encode.txt" \
    >"$work/llama.$dtype.json" 2>"$work/llama.$dtype.log" || { echo "FAIL: llama.cpp $dtype"; cat "$work/llama.$dtype.log"; exit 1; }
  echo "gguf $dtype ($(stat -c %s "$work/model.$dtype.gguf") bytes): $(tr '\n' ' ' <"$work/llama.$dtype.log")"
done
# Greedy text (f32 must equal anvil's) and greedy token agreement of f16/q8_0 with f32.
node - "$work" "$n_gen" <<'EOF'
const fs = require("fs");
const [work, nGen] = process.argv.slice(2);
const r = d => JSON.parse(fs.readFileSync(`${work}/llama.${d}.json`, "utf8"));
const f32 = r("f32");
const anvilText = fs.readFileSync(`${work}/anvil_sample.txt`, "utf8");
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
"$anvil" export --run "$run" --format hf --out "$work/hf" 2>/dev/null
for f in config.json generation_config.json model.safetensors tokenizer.json; do
  [ -s "$work/hf/$f" ] || { echo "FAIL: hf export lacks $f"; exit 1; }
done
"$anvil" import --from hf "$work/hf" --out "$work/imported" 2>/dev/null
"$anvil" logits --run "$work/imported" --prompt "$prompt" --out "$work/imported_logits.json"
cmp -s "$work/anvil_logits.json" "$work/imported_logits.json" || { echo "FAIL: logits differ after hf export + import"; exit 1; }
echo "hf: export + import round trip gives bit-identical logits"
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  /usr/bin/python3 "$src/tools/hf_check.py" "$work/hf" "$work/anvil_logits.json"
else
  echo "hf: PyTorch not installed, tools/hf_check.py skipped"
fi

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
[ "$fails" = 0 ]
echo "e2e_export: ok in $(elapsed) s"
