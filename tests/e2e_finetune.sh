#!/usr/bin/env bash
# Fine-tuning end to end: a tiny run A is trained, exported in the Hugging Face layout and imported
# back as run H; `anvil train --init-from H` must start from A's weights with a fresh optimizer:
#   - its step-1 loss (the first batch, before any update) equals that of `--init-from A` bitwise
#     (same seed, so the same batch; the HF round trip keeps the weights exactly),
#   - lies near A's final training loss and far below a fresh init's step-1 loss on the same batch,
#   - `anvil eval` of H equals A's, and a few fine-tuning steps keep the loss low.
# Bad input: data with another tokenizer, --init-from with --preset or --resume, a missing run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir
start=$(date +%s)

grammar_corpus 4000 7 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 1 >/dev/null 2>&1 || fail "data prepare"
e2e_model_json 300 64 > model.json
common=(--data data --batch 8 --seq 64 --eval-batches 4 --threads 1 --seed 5)
"$anvil" train "${common[@]}" --config model.json --steps 100 --lr 3e-3 --warmup 10 --eval-every 100 --out A \
  2>A.err || { cat A.err; fail "train A"; }
"$anvil" export --run A --format hf --out hf 2>/dev/null || fail "export --format hf"
"$anvil" import --from hf hf --out H 2>/dev/null || fail "import"

loss1() { grep -o '"step":1,"loss":[^,]*' "$1/log.jsonl" | sed 's/.*://'; }
ft=(--steps 5 --lr 1e-3 --warmup 0 --eval-every 5)
"$anvil" train "${common[@]}" "${ft[@]}" --init-from H --out FH 2>FH.err || { cat FH.err; fail "train --init-from H"; }
"$anvil" train "${common[@]}" "${ft[@]}" --init-from A --out FA 2>FA.err || { cat FA.err; fail "train --init-from A"; }
"$anvil" train "${common[@]}" "${ft[@]}" --config model.json --out F0 2>F0.err || { cat F0.err; fail "fresh run"; }
a_final=$(grep -o '"loss":[^,]*' A/log.jsonl | tail -10 | sed 's/.*://' | awk '{ s += $1 } END { printf "%.4f", s / NR }')
fh=$(loss1 FH) fa=$(loss1 FA) f0=$(loss1 F0)
fh_last=$(grep -o '"loss":[^,]*' FH/log.jsonl | tail -1 | sed 's/.*://')
echo "step-1 loss: --init-from imported H $fh, --init-from A $fa, fresh init $f0; A's last 10 steps mean $a_final;" \
  "FH after 5 steps $fh_last"
[ "$fh" = "$fa" ] || fail "the imported run starts from other weights than A ($fh vs $fa)"
awk -v f="$fh" -v a="$a_final" -v z="$f0" -v l="$fh_last" 'BEGIN { exit !(f < a + 0.3 && f > a - 0.3 && f < z - 2 && l < a + 0.3) }' ||
  fail "step-1 loss $fh is not near A's final $a_final and far below fresh $f0 (or fine-tuning diverged: $fh_last)"
grep -q "initialised from" FH.err || fail "train --init-from does not say where it started from"
ea=$("$anvil" eval --run A --data data --batch 8 --seq 64 --threads 1 2>&1 | grep -o 'loss [0-9.]*' | head -1)
eh=$("$anvil" eval --run H --data data --batch 8 --seq 64 --threads 1 2>&1 | grep -o 'loss [0-9.]*' | head -1)
echo "anvil eval: A $ea, imported H $eh"
[ -n "$ea" ] && [ "$ea" = "$eh" ] || fail "eval of the imported run differs from A's ($ea vs $eh)"

# ---- bad input: one clear line, non-zero exit ----
"$anvil" data prepare --input corpus.txt --vocab-size 280 --val-fraction 0.05 --split-blank-lines 1 --out data2 \
  --threads 1 >/dev/null 2>&1 || fail "data prepare (second tokenizer)"
expect_error() { # expected-substring args...
  local want=$1 out
  shift
  if out=$("$anvil" "$@" 2>&1); then fail "accepted: anvil $*"; fi
  grep -q -- "$want" <<<"$out" || fail "anvil $*: expected '$want' in: $out"
  echo "rejected as expected: $(head -1 <<<"$out")"
}
expect_error "not the tokenizer of the data" train --data data2 --init-from H --out X1 --steps 1 --threads 1
expect_error "run directory to initialise from does not exist" train --data data --init-from nowhere --out X2 --steps 1
expect_error "give one of --preset, --config or --init-from" train --data data --init-from H --preset tiny --out X3
expect_error "--init-from starts a new run" train --out FH --resume --init-from H
[ ! -e X1/state.json ] && [ ! -e X2 ] || fail "a refused run left files behind"
echo "e2e_finetune: ok ($(( $(date +%s) - start )) s)"
