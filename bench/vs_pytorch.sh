#!/usr/bin/env bash
# anvil vs PyTorch: whole training steps (zero_grad, forward, backward, clip, AdamW) on 2 threads, each
# shape run back to back (anvil `bench train`, then bench/torch_model.py), then one table with the
# ratio anvil/PyTorch in tokens/s, for each instruction-set copy: avx512 and avx2 (anvil's ANVIL_CPU,
# PyTorch's ATEN_CPU_CAPABILITY and, for avx2, oneDNN's ONEDNN_MAX_CPU_ISA). Rows per copy and shape: anvil fp32 against PyTorch fp32, anvil bf16
# mixed precision against PyTorch's bf16 autocast, and anvil --precision auto (the precision its
# start-up measurement takes, shown) against the faster of PyTorch's two. Shapes:
#   gpt2-124m B=8 T=256, and smollm2-135m B=8 T=256 (Llama: grouped-query attention, SwiGLU, RoPE, tied
#   head); with SWEEP=1 also gpt2-124m at T = 64 ... 1024 with B*T = 2048 tokens per step.
# Usage: bench/vs_pytorch.sh   (BUILD=build-bench, STEPS=5, WARMUP=2, THREADS=2, ISAS="avx512 avx2" or "avx2",
#                               SWEEP=1 for the sweep, ONLY=PRESET the rows of one preset)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build-bench}
steps=${STEPS:-5}
warmup=${WARMUP:-2}
threads=${THREADS:-2}
sweep=${SWEEP:-0}
isas=${ISAS:-$(grep -qw avx512f /proc/cpuinfo && echo avx512 || true) avx2} # the copies this CPU can run
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "bench/vs_pytorch.sh: needs Debian's PyTorch: apt-get install python3-torch" >&2; exit 1; }
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=OFF >/dev/null
cmake --build "$build" -j 2 --target anvil_cli >/dev/null

# "... 85.7 tokens/s, 64.6 GFLOP/s ..." -> "85.7 64.6"
rate() { sed -nE 's/.* ([0-9.]+) tokens\/s, ([0-9.]+) GFLOP\/s.*/\1 \2/p' <<<"$1"; }

# "... = 1.046 x budget ..." -> "1.046"
budget() { sed -nE 's/.* ([0-9.]+) x budget.*/\1/p' <<<"$1"; }

declare -a rows
# the environment that holds both to an instruction set: for avx2 also the BLAS both call for fp32
# products (OpenBLAS picks AVX-512 kernels by itself) and PyTorch's oneDNN
isa_env() { [ "$1" = avx2 ] && echo "OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2"; true; }
anvil_step() { # isa preset B T precision -> the bench output
  env $(isa_env "$1") ANVIL_CPU=$1 "$build/anvil" bench train --preset "$2" --batch "$3" --seq "$4" --threads "$threads" --steps "$steps" \
    --warmup "$warmup" --precision "$5" 2>/dev/null
}
cpu=$(lscpu | sed -nE 's/^Model name: *//p')
flags=$({ grep -m1 -o -E 'avx512_bf16|amx_bf16' /proc/cpuinfo || true; } | sort -u | tr '\n' ' ') # none on AVX2-only CPUs
# PyTorch's step, or nothing when it cannot: bf16 on oneDNN's AVX2 has no kernel, and on a CPU without bf16
# instructions its autocast falls back to a reference path (four steps of gpt2-124m ran over ten minutes on a Zen 3)
torch_step() { # isa preset B T precision
  [ "$5" = bf16 ] && [ -z "$flags" ] && return 0
  env $(isa_env "$1") ATEN_CPU_CAPABILITY=$1 /usr/bin/python3 "$root/bench/torch_model.py" --preset "$2" --batch "$3" \
    --seq "$4" --threads "$threads" --steps "$steps" --warmup "$warmup" --precision "$5" 2>/dev/null || true
}
run() { # isa preset B T
  local a p f32 b16 best chose
  [ -z "${ONLY:-}" ] || [ "$2" = "$ONLY" ] || return 0
  p=$(torch_step "$@" fp32); echo "$p"; f32=$(rate "$p"); f32=${f32:-n/a n/a}
  p=$(torch_step "$@" bf16); echo "$p"; b16=$(rate "$p"); b16=${b16:-n/a n/a}
  best=$(awk -v a="${f32% *}" -v b="${b16% *}" 'BEGIN { print (a + 0 > b + 0 ? a : b) }')
  for prec in fp32 bf16 auto; do
    a=$(anvil_step "$@" "$prec"); echo "$a"
    chose=$prec; [ "$prec" = auto ] && chose="auto:$(sed -nE 's/^precision auto: ([a-z0-9]+) .*/\1/p' <<<"$a")"
    case $prec in fp32) p="$f32" ;; bf16) p="$b16" ;; auto) p="$best -" ;; esac
    rows+=("$1 $2 $3 $4 $chose $(rate "$(grep 'train step' <<<"$a")") $p $(budget "$a")")
  done
}

for isa in $isas; do
  run "$isa" gpt2-124m 8 256
  run "$isa" smollm2-135m 8 256
  if [ "$sweep" = 1 ]; then
    for T in 64 128 512 1024; do run "$isa" gpt2-124m $((2048 / T)) "$T"; done
  fi
done

echo
echo "CPU: $cpu ($(nproc) cores here; ${flags:-no AVX512_BF16 or AMX}); torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
printf '%-7s %-24s %-10s %12s %14s %12s %14s %8s %11s\n' "copy" "shape" "precision" "anvil tok/s" "anvil GFLOP/s" \
  "torch tok/s" "torch GFLOP/s" "ratio" "RSS/budget"
for r in "${rows[@]}"; do
  read -r isa preset B T prec atok agf ptok pgf rss <<<"$r"
  printf '%-7s %-24s %-10s %12s %14s %12s %14s %7.2fx %11s\n' "$isa" "$preset B=$B T=$T" "$prec" "$atok" "$agf" "$ptok" \
    "$pgf" "$(awk -v a="$atok" -v p="$ptok" 'BEGIN { print (p + 0 > 0 ? a / p : 0) }')" "$rss"
done
echo "(copy: anvil's ANVIL_CPU and PyTorch's ATEN_CPU_CAPABILITY; avx2 also OPENBLAS_CORETYPE=Haswell for both and"
echo " ONEDNN_MAX_CPU_ISA=AVX2 for PyTorch, whose bf16 then has no kernel (n/a, ratio 0; also where the CPU has no bf16"
echo " instructions). precision: anvil's --precision against PyTorch"
echo " fp32, bf16 autocast, and for auto (anvil's choice shown) the faster of the two. ratio = anvil tokens/s /"
echo " PyTorch tokens/s; $threads threads each; median of $steps steps after $warmup warm-up; RSS/budget: anvil's"
echo " peak resident memory for training over parameters + gradients + AdamW state + activations. A shared"
echo " machine skews single runs: rerun before trusting a ratio)"
