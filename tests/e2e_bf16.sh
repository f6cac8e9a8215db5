#!/usr/bin/env bash
# End to end: --precision bf16 (mixed precision: bf16 matrix-product inputs, fp32 accumulation, fp32
# master weights and AdamW state) on a small model. The bf16 run must really differ from fp32 (the
# flag reaches the kernels), its loss curve must stay within 2% of fp32's at every step (1% over a
# 10-step moving average), the run records its precision, and an interrupted bf16 run resumes bitwise.
# --precision auto (the default) takes the precision the start-up measurement finds faster, for both
# outcomes (the measurement injected), says so, records it, and a resume keeps it whatever a new
# measurement would say; no MFU above 100% is printed or logged.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir

grammar_corpus 4000 7 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 2 >/dev/null 2>&1 || fail "data prepare"
e2e_model_json 300 64 > model.json
args=(--data data --config model.json --batch 8 --seq 64 --steps 80 --lr 3e-3 --warmup 10 --eval-every 40
      --eval-batches 4 --save-every 40 --threads 1)
"$anvil" train "${args[@]}" --out fp32 --precision fp32 2>fp32.err || { cat fp32.err; fail "fp32 train"; }
"$anvil" train "${args[@]}" --out bf16 --precision bf16 2>bf16.err || { cat bf16.err; fail "bf16 train"; }
grep -q '"precision": "bf16"' bf16/state.json || fail "bf16/state.json does not record the precision"
grep -q '"precision": "fp32"' fp32/state.json || fail "fp32/state.json does not record the precision"

steplosses() { grep -o '"step":[0-9]*,"loss":[^,]*' "$1/log.jsonl" | sed 's/.*"loss"://'; }
cmp -s <(steplosses fp32) <(steplosses bf16) && fail "bf16 and fp32 losses are identical: bf16 did not run"
paste <(steplosses fp32) <(steplosses bf16) | awk '
  { a[NR] = $1; b[NR] = $2; g = ($2 - $1) / $1; g = g < 0 ? -g : g; if (g > gmax) gmax = g }
  END {
    w = 10
    for (i = 1; i + w - 1 <= NR; i++) {
      sa = sb = 0; for (j = i; j < i + w; j++) { sa += a[j]; sb += b[j] }
      g = (sb - sa) / sa; g = g < 0 ? -g : g; if (g > smax) smax = g
    }
    printf "bf16 vs fp32 over %d steps: max gap per step %.3f%%, %d-step average %.3f%%\n", NR, 100 * gmax, w, 100 * smax
    exit !(NR == 80 && gmax < 0.02 && smax < 0.01)
  }' || fail "bf16 loss curve strays from fp32"

# Resume: SIGINT saves a checkpoint mid-run; continuing without repeating --precision keeps bf16 and
# ends bitwise equal to the uninterrupted run.
"$anvil" train "${args[@]}" --out part --precision bf16 2>part.err &
bg=$!
for _ in $(seq 3000); do grep -q '"step":15,"loss"' part/log.jsonl 2>/dev/null && break; sleep 0.1; done
kill -INT "$bg"
rc=0; wait "$bg" || rc=$?; bg=
[ "$rc" = 130 ] || { cat part.err; fail "SIGINT exit code $rc, expected 130"; }
step=$(grep -o '"step": [0-9]*' part/state.json | grep -o '[0-9]*$')
[ "$step" -lt 80 ] || fail "the run ended before the signal"
"$anvil" train --out part --resume 2>part.err2 || { cat part.err2; fail "resume"; }
cmp -s bf16/model.safetensors part/model.safetensors || fail "resumed bf16 run differs from the uninterrupted one"
cmp -s bf16/optim.safetensors part/optim.safetensors || fail "resumed bf16 optimizer state differs"
echo "bf16: curve within bounds; interrupted at step $step and resumed: bitwise equal"

# --precision auto: fp32 seconds, bf16 seconds of a step's products injected both ways
short=(--data data --config model.json --batch 8 --seq 64 --steps 6 --eval-every 0 --save-every 3 --threads 1)
for want in fp32 bf16; do
  seconds=1,2; [ $want = bf16 ] && seconds=2,1
  ANVIL_TEST_MATMUL_SECONDS=$seconds "$anvil" train "${short[@]}" --out "auto_$want" 2>"auto_$want.err" ||
    { cat "auto_$want.err"; fail "auto train"; }
  grep "precision auto: $want; " "auto_$want.err" || { cat "auto_$want.err"; fail "auto with $seconds: not $want"; }
  grep -q "\"precision\": \"$want\"" "auto_$want/state.json" || fail "auto_$want/state.json does not record $want"
  steplosses "auto_$want" > "auto_$want.losses"
done
cmp -s auto_fp32.losses auto_bf16.losses && fail "auto's two choices trained alike: the choice did not reach the kernels"
ANVIL_TEST_MATMUL_SECONDS=1,2 "$anvil" train --out auto_bf16 --resume --steps 8 2>resume.err ||
  { cat resume.err; fail "auto resume"; }
grep -q '"precision": "bf16"' auto_bf16/state.json || fail "resuming an auto run changed its precision"
echo "auto: fp32 and bf16 each taken when faster, recorded, kept on resume"
# MFU: never above 100%, on the terminal lines and in log.jsonl
grep -ho 'MFU [0-9.]*%' ./*.err | awk '{ if ($2 + 0 > 100) bad = 1 } END { exit bad }' || fail "an MFU above 100%"
grep -ho '"mfu\(_best\)\?":[0-9.]*' ./*/log.jsonl | awk -F: '{ if ($2 + 0 > 1) bad = 1; n++ } END { exit bad || !n }' ||
  fail "an mfu above 1 in log.jsonl"
echo "MFU: $(grep -ho '"mfu\(_best\)\?":[0-9.]*' ./*/log.jsonl | wc -l) shares logged, none above 100%"
