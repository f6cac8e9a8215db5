#!/usr/bin/env bash
# Load figures of `anvil serve`: requests/s and latency p50/p99 with 1, 4 and 16 concurrent clients
# (tools/serve_check/load.cjs: greedy completions of MAX_TOKENS tokens, 1 in 4 streamed, every answer
# checked against `anvil sample`'s text for its prompt). The model is a small one trained here for a
# few seconds on generated pseudo-English (4 layers, 4 heads, n_embd 128, block 128, vocab 300); the
# server runs with --max-concurrency SLOTS and --threads THREADS.
# Usage: bench/serve_load.sh   (BUILD=build-bench, THREADS=2, SLOTS=4, REQUESTS=64, MAX_TOKENS=32)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build-bench}
threads=${THREADS:-2}
slots=${SLOTS:-4}
requests=${REQUESTS:-64}
max=${MAX_TOKENS:-32}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=OFF >/dev/null
cmake --build "$build" -j 2 --target anvil_cli >/dev/null
anvil="$build/anvil"
source "$root/tests/lib.sh"
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

grammar_corpus 6000 11 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 1 >/dev/null 2>&1
echo '{"n_layer": 4, "n_head": 4, "n_embd": 128, "vocab_size": 300, "block_size": 128}' > model.json
"$anvil" train --data data --config model.json --batch 8 --seq 128 --steps 60 --lr 3e-3 --warmup 10 \
  --eval-every 1000 --save-every 1000 --threads "$threads" --out small >train.log 2>&1 || { cat train.log; exit 1; }

prompts=("The small cat" "A dog" "Every old river sees" "This garden" "The clever child builds a" "One"
         "That bright bird" "A tired machine opens the")
for i in "${!prompts[@]}"; do
  "$anvil" sample --run small --prompt "${prompts[$i]}" --temperature 0 --max-tokens "$max" --threads 1 \
    >"expected.$i" 2>/dev/null
done
printf '%s\n' "${prompts[@]}" | node -e '
  const fs = require("fs"), max = Number(process.argv[1]);
  const prompts = fs.readFileSync(0, "utf8").trimEnd().split("\n");
  const items = prompts.map((p, i) => ({ prompt: p, expected: fs.readFileSync(`expected.${i}`, "utf8") }));
  fs.writeFileSync("cases.json", JSON.stringify({ max_tokens: max, items }));
' "$max"

key=bench-key
"$anvil" serve --run small --host 127.0.0.1 --port 0 --api-key $key --max-concurrency "$slots" \
  --threads "$threads" --max-connections 64 >serve.out 2>serve.err &
server=$!
for _ in $(seq 100); do grep -q "listening on" serve.err && break; sleep 0.1; done
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' serve.err)
[ -n "$port" ] || { cat serve.err; exit 1; }

declare -a rows
for conc in 1 4 16; do
  line=$(node "$root/tools/serve_check/load.cjs" "http://127.0.0.1:$port/v1" $key small cases.json "$requests" "$conc")
  echo "$line"
  rows+=("$conc $(sed -nE 's/.*: ([0-9.]+) requests\/s, latency p50 ([0-9.]+) ms, p99 ([0-9.]+) ms; ([0-9]+\/[0-9]+).*/\1 \2 \3 \4/p' <<<"$line")")
done
echo
echo "anvil serve, small model (4 layers, n_embd 128), $max greedy tokens per request, $requests requests per row,"
echo "--max-concurrency $slots --threads $threads"
printf '%-8s %12s %12s %12s %10s\n' clients "requests/s" "p50 ms" "p99 ms" correct
for r in "${rows[@]}"; do printf '%-8s %12s %12s %12s %10s\n' $r; done
