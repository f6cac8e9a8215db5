#!/usr/bin/env bash
# LoRA against full fine-tuning on the smollm2-135m shape (30 layers, width 576, 9 heads / 3 KV heads,
# SwiGLU 1536, vocabulary 49152, tied head), in one run: the same base, data, batch and steps trained
# with every weight (`anvil train --init-from BASE`) and with adapters (`--lora-rank R`, all seven
# targets). Prints per run the median step time and tokens/s (steps after the first), the peak resident
# memory of the process (GNU time), and the checkpoint and optimizer-state files; then LoRA/full ratios.
# Usage: bench/lora_vs_full.sh   (BUILD=build-bench, B=4, T=256, STEPS=6, THREADS=2, RANKS="8 64",
#                                 PRECISION=fp32)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build-bench}
B=${B:-4} T=${T:-256} steps=${STEPS:-6} threads=${THREADS:-2} ranks=${RANKS:-8 64} precision=${PRECISION:-fp32}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=OFF >/dev/null
cmake --build "$build" -j 2 --target anvil_cli >/dev/null
anvil=$build/anvil
source "$root/tests/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

grammar_corpus 20000 3 >corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --split-blank-lines 1 --val-fraction 0.02 --out data \
  >prepare.log 2>&1 || { cat prepare.log; exit 1; }
printf '{"model_type": "llama", "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
  "hidden_size": 576, "intermediate_size": 1536, "vocab_size": 49152, "max_position_embeddings": 2048,
  "rope_theta": 100000, "rms_norm_eps": 1e-5, "tie_word_embeddings": true}\n' >smollm2.json
"$anvil" train --data data --config smollm2.json --batch 1 --seq 64 --steps 1 --eval-every 0 --out base \
  --threads "$threads" >base.log 2>&1 || { cat base.log; exit 1; }

median_step() { # run: median step_s after the first step
  grep -o '"step_s":[0-9.]*' "$1/log.jsonl" | tail -n +2 | sed 's/.*://' | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $threads threads; smollm2-135m shape, B=$B T=$T, $steps steps, $precision"
printf '%-12s %10s %10s %12s %14s %14s\n' run "step s" "tokens/s" "peak MiB" "checkpoint MiB" "optimizer MiB"
declare -A step peak ckpt
for run in full $(for r in $ranks; do echo "lora$r"; done); do
  extra=()
  [ "$run" != full ] && extra=(--lora-rank "${run#lora}")
  /usr/bin/time -f "%M" -o "$run.time" "$anvil" train --init-from base --data data --batch "$B" --seq "$T" \
    --steps "$steps" --eval-every 0 --precision "$precision" --threads "$threads" --out "$run" "${extra[@]}" \
    >"$run.log" 2>&1 || { cat "$run.log"; exit 1; }
  file=$run/model.safetensors; [ "$run" != full ] && file=$run/adapter_model.safetensors
  step[$run]=$(median_step "$run")
  peak[$run]=$(awk '{ printf "%.0f", $1 / 1024 }' "$run.time")
  ckpt[$run]=$(stat -c %s "$file")
  printf '%-12s %10s %10.0f %12s %14s %14s\n' "$run" "${step[$run]}" \
    "$(awk -v s="${step[$run]}" -v n=$((B * T)) 'BEGIN { print n / s }')" "${peak[$run]}" \
    "$(mib "${ckpt[$run]}")" "$(mib "$(stat -c %s "$run/optim.safetensors")")"
done
for r in $ranks; do
  awk -v sl="${step[lora$r]}" -v sf="${step[full]}" -v pl="${peak[lora$r]}" -v pf="${peak[full]}" \
    -v cl="${ckpt[lora$r]}" -v cf="${ckpt[full]}" -v r="$r" 'BEGIN {
    printf "LoRA r=%s against full fine-tuning: %.2fx the speed (step time %.2fx), %.2fx the peak memory, checkpoint %.4fx\n",
      r, sf / sl, sl / sf, pl / pf, cl / cf }'
done
