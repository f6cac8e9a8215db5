#!/usr/bin/env bash
# End to end, distributed training with Open MPI on this machine (2 ranks x 1 thread):
#   - data parallel: the 20 losses equal those of one process reading the same global batch
#     (to 1e-6 relative against one batch of 8 rows; bitwise against 2 accumulated micro-batches of 4);
#   - ZeRO-1: bitwise the same run as plain data parallelism, with half the AdamW state per rank;
#   - a ZeRO-1 checkpoint saved by 2 ranks resumes in 1 process and continues the 2-rank run;
#   - SIGUSR1 to mpirun: rank 0 saves at a step boundary, and the resumed run ends as the uninterrupted one;
#   - kill -9 of one rank: the job ends with an error within 30 s;
#   - a rank that hangs (SIGSTOP): the others give up after ANVIL_COMM_TIMEOUT with a clear error.
# Skips (77) when anvil is built without MPI, after checking that it then refuses to run as a rank.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir

if [[ "$(ldd "$anvil")" != *libmpi* ]]; then
  rc=0; OMPI_COMM_WORLD_SIZE=2 "$anvil" train --data nowhere --out run 2>err || rc=$?
  [ "$rc" = 1 ] && grep -q 'built without MPI' err || { cat err; fail "a build without MPI did not refuse to run as a rank"; }
  echo "as one of 2 ranks, a build without MPI says: $(cat err)"
  echo "SKIP: anvil is built without MPI (install libopenmpi-dev and rebuild)"
  exit 77
fi
command -v mpirun >/dev/null || { echo "SKIP: anvil links MPI but mpirun is missing (Debian: openmpi-bin)"; exit 77; }

mpi=(mpirun -np 2 --oversubscribe --mca btl self,vader)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)

# ---- data: deterministic sentences from a small grammar ----
grammar_corpus 3000 7 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 2 >/dev/null 2>&1 || fail "data prepare"
e2e_model_json 300 64 > model.json
args=(--data data --config model.json --seq 64 --steps 20 --lr 3e-3 --warmup 5 --eval-every 10 --eval-batches 2
      --save-every 10 --threads 1)

losses() { grep -o '"step":[0-9]*,"loss":[^,]*' "$1/log.jsonl" | sed 's/.*"loss"://'; }
val_losses() { grep -o '"val_loss":[^,]*' "$1/log.jsonl" | sed 's/.*://'; }
# max_rel A B [first]: the largest relative difference of the step losses (from step `first` on).
max_rel() {
  paste <(losses "$1") <(losses "$2") | awk -v first="${3:-1}" 'NR >= first { d = $1 - $2; d = d < 0 ? -d : d;
    r = d / ($1 < 0 ? -$1 : $1); if (r > m) m = r; n++ } END { if (n == 0) exit 1; printf "%.2e", m }'
}
bitwise() { [ "$(losses "$1")" = "$(losses "$2")" ] && echo bitwise || echo "not bitwise"; }

# ---- data parallel vs one process with the same global batch of 8 rows ----
start=$(date +%s)
"$anvil" train "${args[@]}" --batch 8 --out S8 2>S8.err || { cat S8.err; fail "1 process, batch 8"; }
"$anvil" train "${args[@]}" --batch 4 --total-batch-tokens 512 --out S4 2>S4.err || { cat S4.err; fail "1 process, 2 x 4"; }
"${mpi[@]}" "$anvil" train "${args[@]}" --batch 4 --out M 2>M.err || { cat M.err; fail "mpirun -np 2"; }
[ "$(losses M | wc -l)" = 20 ] || fail "the 2-rank run logged $(losses M | wc -l) steps, expected 20"
grep -q 'data parallel over 2 ranks' M.err || fail "the 2-rank run did not report its ranks"
[ "$(grep -c 'step 20/20' M.err)" = 1 ] || fail "step lines should come from rank 0 only"
rel=$(max_rel S8 M)
echo "2 ranks x 4 rows vs 1 process x 8 rows, 20 steps: max relative loss difference $rel ($(bitwise S8 M))"
awk -v r="$rel" 'BEGIN { exit !(r <= 1e-6) }' || fail "losses differ by $rel > 1e-6"
echo "2 ranks x 4 rows vs 1 process x 2 accumulated micro-batches of 4 rows: max relative difference $(max_rel S4 M) ($(bitwise S4 M))"
rel=$(paste <(val_losses S4) <(val_losses M) | awk '{ d = $1 - $2; d = d < 0 ? -d : d; if (d / $1 > m) m = d / $1 } END { printf "%.2e", m }')
echo "validation loss (same 8 sequences), 1 process vs 2 ranks: max relative difference $rel"
awk -v r="$rel" 'BEGIN { exit !(r <= 1e-6) }' || fail "validation losses differ by $rel"

# ---- ZeRO-1: the same update stream, the AdamW state split over the ranks ----
"${mpi[@]}" "$anvil" train "${args[@]}" --batch 4 --zero 1 --out Z 2>Z.err || { cat Z.err; fail "--zero 1"; }
echo "ZeRO-1 vs 1 process x 8 rows: max relative loss difference $(max_rel S8 Z)"
awk -v r="$(max_rel S8 Z)" 'BEGIN { exit !(r <= 1e-6) }' || fail "ZeRO-1 losses differ from one process"
cmp -s M/model.safetensors Z/model.safetensors && cmp -s M/optim.safetensors Z/optim.safetensors ||
  fail "ZeRO-1 weights or optimizer state differ from plain data parallelism"
echo "ZeRO-1 vs plain data parallel: losses $(bitwise M Z); model and gathered optimizer state bitwise equal"
plain=$(grep -o 'AdamW state [0-9.]* MB per rank' M.err | grep -o '[0-9.]*')
sharded=$(grep -o 'AdamW state [0-9.]* MB per rank' Z.err | grep -o '[0-9.]*')
echo "optimizer state per rank: $plain MB without ZeRO, $sharded MB with ZeRO-1 (2 ranks)"
awk -v a="$plain" -v b="$sharded" 'BEGIN { r = a / b; exit !(r > 1.99 && r < 2.01) }' ||
  fail "ZeRO-1 should halve the optimizer state per rank ($plain -> $sharded MB)"

# ---- save with 2 ranks (ZeRO-1), resume with 1 process ----
# The test hook poisons step 11: the run stops and keeps its checkpoint of step 10.
ANVIL_TEST_NAN_AT_STEP=11 "${mpi[@]}" "$anvil" train "${args[@]}" --batch 4 --zero 1 --out R >R.err 2>&1 &&
  fail "the poisoned run did not stop"
grep -q 'step 11: the loss is nan' R.err || { cat R.err; fail "no divergence message"; }
grep -q '"step": 10,' R/state.json || fail "no checkpoint of step 10"
"$anvil" train --out R --resume 2>R2.err || { cat R2.err; fail "resume in 1 process"; }
rel=$(max_rel M R 11)
echo "ZeRO-1 checkpoint of step 10 (2 ranks) resumed in 1 process: steps 11-20 vs the uninterrupted 2-rank run:" \
  "max relative difference $rel ($(bitwise M R))"
awk -v r="$rel" 'BEGIN { exit !(r <= 1e-6) }' || fail "the resumed run differs by $rel"

# ---- SIGUSR1 to mpirun: a checkpoint at the next step boundary, then resume with 2 ranks ----
long=(--data data --config model.json --seq 64 --steps 300 --lr 1e-3 --warmup 5 --eval-every 0 --eval-batches 1
      --save-every 0 --threads 1 --batch 4)
"${mpi[@]}" "$anvil" train "${long[@]}" --out L 2>L.err || { cat L.err; fail "300 steps"; }
"${mpi[@]}" "$anvil" train "${long[@]}" --out U 2>U.err & bg=$!
for _ in $(seq 1500); do grep -q '"step":20,' U/log.jsonl 2>/dev/null && break; sleep 0.02; done
kill -USR1 "$bg"
rc=0; wait "$bg" || rc=$?; bg=
msg=$(grep 'interrupted: checkpoint saved at step' U.err) || { cat U.err; fail "no checkpoint after SIGUSR1 (exit $rc)"; }
echo "SIGUSR1 to mpirun: '$msg' (mpirun exit $rc)"
"${mpi[@]}" "$anvil" train --out U --resume 2>U2.err || { cat U2.err; fail "resume with 2 ranks"; }
[ "$(losses U)" = "$(losses L)" ] && cmp -s U/model.safetensors L/model.safetensors ||
  fail "the resumed run does not end as the uninterrupted one"
echo "SIGUSR1 + resume with 2 ranks: all 300 losses and the weights bitwise equal to the uninterrupted run"

# ---- a rank killed with SIGKILL: the job must end with an error, not hang ----
"${mpi[@]}" "$anvil" train "${long[@]}" --steps 100000 --out K 2>K.err & bg=$!
for _ in $(seq 300); do grep -q '"step":5,' K/log.jsonl 2>/dev/null && break; sleep 0.1; done
victim=$(pgrep -P "$bg" | tail -1)
[ -n "$victim" ] || fail "no rank process found under mpirun"
t0=$(date +%s.%N)
kill -9 "$victim"
for _ in $(seq 300); do kill -0 "$bg" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bg" 2>/dev/null && fail "the job still runs 30 s after a rank died"
rc=0; wait "$bg" || rc=$?; bg=
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ "$rc" != 0 ] || fail "the job exited 0 after a rank died"
echo "kill -9 of rank pid $victim: the job ended with exit $rc after $secs s"

# ---- a rank that stops answering (SIGSTOP): the collectives' deadline ends the job ----
ANVIL_COMM_TIMEOUT=3 "${mpi[@]}" "$anvil" train "${long[@]}" --steps 100000 --out H 2>H.err & bg=$!
for _ in $(seq 300); do grep -q '"step":5,' H/log.jsonl 2>/dev/null && break; sleep 0.1; done
victim=$(pgrep -P "$bg" | tail -1)
[ -n "$victim" ] || fail "no rank process found under mpirun"
t0=$(date +%s.%N)
kill -STOP "$victim"
for _ in $(seq 300); do kill -0 "$bg" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bg" 2>/dev/null && { kill -9 "$victim"; fail "the job still runs 30 s after a rank stopped answering"; }
rc=0; wait "$bg" || rc=$?; bg=
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
msg=$(grep -o 'anvil: rank 0 of 2: .*no answer from the other ranks in 3 s' H.err) || { cat H.err; fail "no timeout message"; }
echo "SIGSTOP of rank pid $victim, ANVIL_COMM_TIMEOUT=3: exit $rc after $secs s with '$msg'"
echo "e2e_mpi: passed in $(( $(date +%s) - start )) s of training"
