#!/usr/bin/env bash
# Data-parallel scaling on this machine: tokens/s of the `small` preset (6 layers, 384 wide, here with a
# 400-token vocabulary: about 10.8M parameters) trained on the same global batch by
#   1 process x 1 thread, 1 process x 2 threads, 2 ranks x 1 thread (mpirun, shared memory), and
#   2 ranks x 1 thread with --zero 1,
# with the time rank 0 spends in collectives per step (waiting for the slower rank included) and the
# scaling efficiency tokens/s(2 ranks) / (2 x tokens/s(1 x 1)). Then one gpt2-124m step time in one
# process (the compute term of the model in docs/distributed.md).
# Usage: bench/mpi_scaling.sh [steps]   (default 12; the first 2 steps are not counted)
# ANVIL picks the binary (default build/anvil); SEQ (default 256) and BATCH (global rows, default 8).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anvil=${ANVIL:-$root/build/anvil}
steps=${1:-12}
seq=${SEQ:-256}
batch=${BATCH:-8}
command -v mpirun >/dev/null || { echo "missing mpirun (scripts/install-deps.sh test)" >&2; exit 1; }
[[ "$(ldd "$anvil")" == *libmpi* ]] || { echo "$anvil is built without MPI" >&2; exit 1; }
mpi=(mpirun -np 2 --oversubscribe --mca btl self,vader --bind-to none)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

awk -v n=40000 'function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
function pick(list,   k, a) { k = split(list, a, " "); return a[int(rnd() * k) + 1] }
BEGIN { seed = 5
  for (i = 0; i < n; i++) {
    s = pick("the a one every that this some no") " " pick("small quiet red old bright heavy green tired clever young") \
        " " pick("cat dog river stone bird garden house child letter machine window forest") " " \
        pick("sees finds carries follows builds watches keeps opens") " " pick("the a one every that this") " " \
        pick("cat dog river stone bird garden house child letter machine window forest")
    line = line (line == "" ? "" : " ") toupper(substr(s, 1, 1)) substr(s, 2) "."
    if (rnd() < 0.2) { print line; print ""; line = "" }
  } }' > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 400 --val-fraction 0.02 --split-blank-lines 1 --out data \
  --threads 2 >/dev/null 2>&1

common=(--data data --preset small --seq "$seq" --steps "$steps" --eval-every 0 --eval-batches 1 --save-every 0
        --warmup 2)
# stats ERRFILE: mean tokens/s and comm ms over steps 3.. (rank 0's step lines)
stats() {
  grep '^step [0-9]*/' "$1" | awk '{ split($2, s, "/"); if (s[1] < 3) next
    for (i = 1; i <= NF; i++) { if ($(i) == "tok/s") tok += $(i - 1); if ($(i) == "comm") comm += $(i + 1) }
    n++ } END { printf "%.0f %.1f\n", tok / n, comm / n }'
}
run() { # NAME COMMAND...
  local name=$1; shift
  "$@" --out "$name" 2>"$name.err" || { cat "$name.err"; exit 1; }
  read -r tok comm < <(stats "$name.err")
  eval "tok_$name=$tok comm_$name=$comm"
}
run p1t1 "$anvil" train "${common[@]}" --batch "$batch" --threads 1
run p1t2 "$anvil" train "${common[@]}" --batch "$batch" --threads 2
run r2t1 "${mpi[@]}" "$anvil" train "${common[@]}" --batch $((batch / 2)) --threads 1
run r2z1 "${mpi[@]}" "$anvil" train "${common[@]}" --batch $((batch / 2)) --threads 1 --zero 1
params=$(grep -o 'AdamW state [0-9.]* MB per rank' r2t1.err | awk '{ printf "%.2f", $3 / 8 }')
echo "small preset (${params}M parameters, vocab 400), seq $seq, global batch $batch rows, steps 3-$steps, $(nproc) cores:"
printf "  %-28s %8s tok/s\n" "1 process x 1 thread" "$tok_p1t1" "1 process x 2 threads" "$tok_p1t2"
printf "  %-28s %8s tok/s, %s ms/step in collectives (rank 0)\n" "2 ranks x 1 thread" "$tok_r2t1" "$comm_r2t1" \
  "2 ranks x 1 thread, ZeRO-1" "$tok_r2z1" "$comm_r2z1"
awk -v a="$tok_p1t1" -v b="$tok_p1t2" -v c="$tok_r2t1" -v z="$tok_r2z1" 'BEGIN {
  printf "  scaling efficiency, 2 ranks vs 2 x (1 x 1): %.0f%% (threads: %.0f%%; ZeRO-1: %.0f%%)\n", 100 * c / (2 * a),
    100 * b / (2 * a), 100 * z / (2 * a)
  printf "  2 ranks x 1 thread vs 1 process x 2 threads: %.2fx\n", c / b }'
grep -h 'AdamW state' r2t1.err r2z1.err | sed 's/^/  /'

# gpt2-124m compute: a few steps of one process (all cores), batch 1 x 1024 tokens
"$anvil" train --data data --preset gpt2-124m --batch 1 --seq 1024 --steps 4 --warmup 1 --eval-every 0 \
  --eval-batches 1 --save-every 0 --out g 2>g.err || { cat g.err; exit 1; }
grep '^step [34]/' g.err | awk '{ for (i = 1; i <= NF; i++) if ($(i) == "tok/s") t += $(i - 1); n++ }
  END { printf "gpt2-124m (vocab 400: 85M parameters), 1 process x %d threads: %.0f tok/s, %.2f s per 1024 tokens\n", '"$(nproc)"', t / n, 1024 * n / t }'
