#!/usr/bin/env bash
# anvil vs PyTorch fp32: whole gpt2-124m training steps (zero_grad, forward, backward, clip, AdamW) on
# 2 threads at B=4,T=64 and B=8,T=256, run back to back, then a table with the ratio anvil/PyTorch.
# Usage: bench/vs_pytorch.sh            (BUILD=build-bench, STEPS=5, WARMUP=2, THREADS=2 to override)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build-bench}
steps=${STEPS:-5}
warmup=${WARMUP:-2}
threads=${THREADS:-2}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=OFF >/dev/null
cmake --build "$build" -j 2 --target bench_model >/dev/null
declare -a rows
for shape in "4 64" "8 256"; do
  read -r B T <<<"$shape"
  a=$("$build/bench_model" --preset gpt2-124m --batch "$B" --seq "$T" --threads "$threads" --steps "$steps" \
      --warmup "$warmup" 2>/dev/null)
  p=$(/usr/bin/python3 "$root/bench/torch_model.py" --preset gpt2-124m --batch "$B" --seq "$T" \
      --threads "$threads" --steps "$steps" --warmup "$warmup" 2>/dev/null)
  echo "$a"
  echo "$p"
  # "..., 85.7 tokens/s, 64.6 GFLOP/s" -> tokens/s and GFLOP/s
  at=$(sed -E 's/.* ([0-9.]+) tokens\/s, ([0-9.]+) GFLOP\/s/\1 \2/' <<<"$a")
  pt=$(sed -E 's/.* ([0-9.]+) tokens\/s, ([0-9.]+) GFLOP\/s/\1 \2/' <<<"$p")
  rows+=("$B $T $at $pt")
done
echo
printf '%-16s %14s %14s %14s %14s %10s\n' "gpt2-124m" "anvil tok/s" "anvil GFLOP/s" "torch tok/s" "torch GFLOP/s" "ratio"
for r in "${rows[@]}"; do
  read -r B T atok agf ptok pgf <<<"$r"
  printf '%-16s %14s %14s %14s %14s %9.2fx\n' "B=$B T=$T" "$atok" "$agf" "$ptok" "$pgf" \
    "$(awk -v a="$atok" -v p="$ptok" 'BEGIN { print a / p }')"
done
echo "(ratio = anvil tokens/s / PyTorch tokens/s; $threads threads each; median of $steps steps after $warmup warm-up)"
