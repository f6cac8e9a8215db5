#!/usr/bin/env bash
# anvil vs PyTorch: whole training steps (zero_grad, forward, backward, clip, AdamW) on 2 threads, each
# shape run back to back (anvil `bench train`, then bench/torch_model.py), then one table with the
# ratio anvil/PyTorch in tokens/s. Rows:
#   gpt2-124m B=8 T=256 and small B=4 T=512 (its `anvil train` default), in fp32 against fp32 and in
#   bf16 mixed precision (--precision bf16) against PyTorch's bf16 autocast;
#   smollm2-135m B=8 T=256 (Llama: grouped-query attention, SwiGLU, RoPE, tied head), fp32 and bf16;
#   the sequence-length sweep: gpt2-124m at T = 64 ... 1024 with B*T = 2048 tokens per step.
# Usage: bench/vs_pytorch.sh   (BUILD=build-bench, STEPS=5, WARMUP=2, THREADS=2, SWEEP=0 to skip the sweep,
#                               SWEEP_PRECISIONS="fp32 bf16" the precisions swept, ONLY=PRESET the rows of one preset)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build-bench}
steps=${STEPS:-5}
warmup=${WARMUP:-2}
threads=${THREADS:-2}
sweep=${SWEEP:-1}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=OFF >/dev/null
cmake --build "$build" -j 2 --target anvil_cli >/dev/null

# "... 85.7 tokens/s, 64.6 GFLOP/s ..." -> "85.7 64.6"
rate() { sed -nE 's/.* ([0-9.]+) tokens\/s, ([0-9.]+) GFLOP\/s.*/\1 \2/p' <<<"$1"; }

# "... = 1.046 x budget ..." -> "1.046"
budget() { sed -nE 's/.* ([0-9.]+) x budget.*/\1/p' <<<"$1"; }

declare -a rows
run() { # preset B T precision
  local a p
  [ -z "${ONLY:-}" ] || [ "$1" = "$ONLY" ] || return 0
  a=$("$build/anvil" bench train --preset "$1" --batch "$2" --seq "$3" --threads "$threads" --steps "$steps" \
      --warmup "$warmup" --precision "$4" 2>/dev/null)
  p=$(/usr/bin/python3 "$root/bench/torch_model.py" --preset "$1" --batch "$2" --seq "$3" --threads "$threads" \
      --steps "$steps" --warmup "$warmup" --precision "$4" 2>/dev/null)
  echo "$a"
  echo "$p"
  rows+=("$1 $2 $3 $4 $(rate "$(grep 'train step' <<<"$a")") $(rate "$p") $(budget "$a")")
}

run gpt2-124m 8 256 fp32
run gpt2-124m 8 256 bf16
run small 4 512 fp32
run small 4 512 bf16
run smollm2-135m 8 256 fp32
run smollm2-135m 8 256 bf16
if [ "$sweep" = 1 ]; then
  for prec in ${SWEEP_PRECISIONS:-fp32 bf16}; do
    for T in 64 128 256 512 1024; do [ "$T" = 256 ] || run gpt2-124m $((2048 / T)) "$T" "$prec"; done
  done
fi

echo
printf '%-24s %-9s %12s %14s %12s %14s %8s %11s\n' "shape" "precision" "anvil tok/s" "anvil GFLOP/s" \
  "torch tok/s" "torch GFLOP/s" "ratio" "RSS/budget"
for r in "${rows[@]}"; do
  read -r preset B T prec atok agf ptok pgf rss <<<"$r"
  printf '%-24s %-9s %12s %14s %12s %14s %7.2fx %11s\n' "$preset B=$B T=$T" "$prec" "$atok" "$agf" "$ptok" "$pgf" \
    "$(awk -v a="$atok" -v p="$ptok" 'BEGIN { print a / p }')" "$rss"
done
echo "(precision: anvil --precision and PyTorch fp32 or bf16 autocast. ratio = anvil tokens/s / PyTorch"
echo " tokens/s; $threads threads each; median of $steps steps after $warmup warm-up; RSS/budget: anvil's peak"
echo " resident memory for training over parameters + gradients + AdamW state + activations. A shared"
echo " machine skews single runs: rerun before trusting a ratio)"
