#!/usr/bin/env bash
# anvil train --keep-best: RUN/best holds the model of the lowest validation loss, not the last one, as a run
# directory the inference commands load; a run resumed after its best evaluation keeps that model; a fresh run
# in the directory clears it. The run below (constant learning rate, an evaluation every 5 steps) has a lower
# evaluation at step 20 than at its end, step 25, so RUN/best must be bitwise the model of a run stopped at 20.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir

grammar_corpus 6000 42 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 1 >/dev/null 2>&1 || fail "data prepare"
echo '{"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab_size": 300, "block_size": 64}' > model.json
args=(--data data --config model.json --batch 8 --seq 64 --lr 2e-2 --schedule constant --warmup 0 --eval-every 5
      --eval-batches 4 --save-every 100 --threads 1)

"$anvil" train "${args[@]}" --steps 25 --keep-best --out run 2> run.err || fail "train --keep-best: $(tail -2 run.err)"
lowest=$(grep -o '"step":[0-9]*,"tokens":[0-9]*,"val_loss":[^,]*' run/log.jsonl | sort -t: -k4 -g -s | head -1 |
  cut -d, -f1 | cut -d: -f2)
[ "$lowest" -lt 25 ] || fail "the lowest evaluation is the last one (step $lowest): this test needs one before it"
grep -q "^best: val loss .* at step $lowest (.* at the end), its model in run/best" run.err ||
  fail "no best line for step $lowest: $(tail -2 run.err)"
"$anvil" train "${args[@]}" --steps "$lowest" --out upto 2> /dev/null || fail "the run stopped at step $lowest"
cmp -s run/best/model.safetensors upto/model.safetensors || fail "run/best is not the model of step $lowest"
cmp -s run/model.safetensors upto/model.safetensors && fail "the run's last model is its best: nothing was tested"
for f in config.json tokenizer.json; do cmp -s "run/$f" "run/best/$f" || fail "run/best/$f differs from the run's"; done
"$anvil" sample --run run/best --prompt "The red" --max-tokens 8 --temperature 0 > /dev/null 2>&1 ||
  fail "sample --run run/best"

# resumed after its best evaluation, the run must not take a later, worse one for the best
"$anvil" train "${args[@]}" --steps "$lowest" --keep-best --out resumed 2> /dev/null || fail "the first part"
"$anvil" train --out resumed --resume --steps 25 2> resumed.err || fail "resume: $(tail -2 resumed.err)"
cmp -s run/best/model.safetensors resumed/best/model.safetensors || fail "the resumed run's best differs"

# a run killed before its first checkpoint, with a best model already kept, is started again from scratch:
# without the earlier attempt's best
mkdir again && touch again/trainer.lock && cp -r run/best again/best
"$anvil" train "${args[@]}" --steps 5 --out again 2> again.err || fail "train again: $(tail -2 again.err)"
[ ! -e again/best ] || fail "a fresh run kept an earlier attempt's best model"
echo "e2e_keep_best: ok (best at step $lowest of 25)"
