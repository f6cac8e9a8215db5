#!/usr/bin/env bash
# A run directory has one writer and any number of readers:
# - sample, eval, logits, export and serve run in a loop against a training run that saves every step;
#   none of them fails or disturbs it, and after a kill -9 mid-run the resumed run ends bitwise equal
#   (weights and optimizer state) to an uninterrupted one;
# - a second trainer on the same run is refused with the holder's pid;
# - nothing is overwritten that anvil did not write: train --out on a folder of other files, export
#   into a non-empty directory, onto an existing file, or into the run itself;
# - temporary files that a killed writer left are removed by the next trainer.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir
start=$(date +%s)

grammar_corpus 4000 11 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 1 >/dev/null 2>&1 || fail "data prepare"
echo '{"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab_size": 300, "block_size": 64}' > model.json
steps=600
args=(--data data --config model.json --batch 4 --seq 64 --steps $steps --lr 3e-3 --warmup 10 --eval-every 200
      --eval-batches 2 --threads 1)

# ---- the reference: an uninterrupted run ----
"$anvil" train "${args[@]}" --save-every 1000 --out ref 2>ref.err || { cat ref.err; fail "reference run"; }

# ---- readers against a run that saves every step ----
"$anvil" train "${args[@]}" --save-every 1 --out live 2>live.err &
bg=$!
for _ in $(seq 100); do [ -f live/state.json ] && break; sleep 0.05; done
[ -f live/state.json ] || fail "the live run saved nothing: $(cat live.err)"

serve_once() {
  # a fresh serve.err: the shell truncates it only once the server has started, and until then the
  # last server's "listening" line (with its port) would still be read
  rm -f serve.out serve.err
  "$anvil" serve --run live --port 0 --threads 1 --max-concurrency 1 >serve.out 2>serve.err &
  local server=$! port=
  for _ in $(seq 100); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' serve.err)
    [ -n "$port" ] && break
    kill -0 $server 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$port" ] || { cat serve.err; return 1; }
  curl -sf "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
    -d '{"prompt": "The", "max_tokens": 2}' >/dev/null || return 1
  kill -TERM $server && wait $server
}

loops=0 killed_at=
while kill -0 $bg 2>/dev/null; do
  "$anvil" sample --run live --max-tokens 2 --threads 1 >/dev/null 2>reader.err || { cat reader.err; fail "sample"; }
  "$anvil" eval --run live --batches 1 --threads 1 >/dev/null 2>reader.err || { cat reader.err; fail "eval"; }
  "$anvil" logits --run live --prompt "The" --out logits.json 2>reader.err || { cat reader.err; fail "logits"; }
  "$anvil" export --run live --format gguf --out live.gguf --force 2>reader.err || { cat reader.err; fail "export"; }
  "$anvil" export --run live --format hf --out hf_live --force 2>reader.err || { cat reader.err; fail "export hf"; }
  serve_once || fail "serve against the live run"
  loops=$((loops + 1))
  step=$(sed -n 's/.*"step": \([0-9]*\),.*/\1/p' live/state.json)
  if [ $loops = 3 ]; then # the second trainer, while the first holds the run
    rc=0
    "$anvil" train --out live --resume --threads 1 >second.out 2>&1 || rc=$?
    [ $rc != 0 ] && grep -q "another trainer (pid $bg) is writing this run" second.out ||
      fail "a second trainer was not refused with the holder's pid: $(cat second.out)"
  fi
  if [ "$step" -ge $((steps * 2 / 3)) ]; then
    kill -9 $bg
    killed_at=$step
    break
  fi
done
wait $bg 2>/dev/null || true
bg=
[ -n "$killed_at" ] || fail "the live run ended before the readers were done (or died): $(tail -3 live.err)"
[ $loops -ge 5 ] || fail "only $loops reader loops ran during training"
echo "ok: $loops loops of sample, eval, logits, export gguf and hf, serve (6 readers each) against a run saving" \
  "every step; trainer killed -9 at step $killed_at"

# ---- resume after the kill: bitwise equal to the uninterrupted run ----
touch live/optim.safetensors.next.tmp.999999999 # as a writer killed mid-save leaves it
"$anvil" train --out live --resume --threads 1 2>resume.err || { cat resume.err; fail "resume"; }
grep -q "optim.safetensors.next.tmp.999999999: removed a temporary file" resume.err ||
  fail "the dead writer's temporary file was not reported removed: $(cat resume.err)"
[ ! -e live/optim.safetensors.next.tmp.999999999 ] || fail "the dead writer's temporary file is still there"
ls live | grep -q '\.tmp\.' && fail "temporary files remain: $(ls live)"
for f in model.safetensors optim.safetensors; do
  cmp -s "ref/$f" "live/$f" || fail "live/$f differs from the uninterrupted run"
done
echo "ok: resumed from the kill, ends bitwise equal to the uninterrupted run; stale temporary file removed"

# ---- nothing is overwritten that anvil did not write ----
mkdir mine && echo '{"mine": true}' > mine/config.json && echo hello > mine/notes.txt
sum_before=$(cat mine/* | md5sum)
rc=0; "$anvil" train "${args[@]}" --steps 2 --out mine >out.txt 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "mine: holds files but no anvil run" out.txt || fail "train --out on foreign files: $(cat out.txt)"
[ "$(cat mine/* | md5sum)" = "$sum_before" ] && [ "$(ls mine | wc -l)" = 2 ] || fail "train changed mine/"
echo "ok: train --out on a folder of other files: $(tail -1 out.txt)"

refused() { # WANT command...: fails, printing WANT
  local want=$1 rc=0; shift
  "$@" >out.txt 2>&1 || rc=$?
  [ $rc != 0 ] && grep -q -- "$want" out.txt || fail "$*: exit $rc, $(cat out.txt)"
  echo "ok: refused: $(tail -1 out.txt)"
}
refused "mine: is not empty (pass --force" "$anvil" export --run ref --format hf --out mine
[ "$(cat mine/* | md5sum)" = "$sum_before" ] || fail "export changed mine/"
refused "is the run directory" "$anvil" export --run ref --format hf --out ref --force
refused "is the run directory" "$anvil" export --run ref --format hf --out ./ref/ --force
refused "is in the run directory" "$anvil" export --run ref --format gguf --out ref/model.safetensors --force
echo keep > existing.gguf
refused "existing.gguf: exists (pass --force" "$anvil" export --run ref --format gguf --out existing.gguf
[ "$(cat existing.gguf)" = keep ] || fail "export replaced existing.gguf"
"$anvil" export --run ref --format gguf --out existing.gguf --force 2>/dev/null || fail "export --force"
cmp -s existing.gguf live.gguf && fail "export --force did not write the model"
refused "is not empty" "$anvil" import --from hf hf_live --out mine
cmp -s ref/model.safetensors live/model.safetensors || fail "the run changed"
# a run that never reached its first save is anvil's own: starting it again is allowed
mkdir fresh && touch fresh/trainer.lock
"$anvil" train "${args[@]}" --steps 2 --out fresh 2>/dev/null || fail "train into a lock-only run directory"
echo "e2e_run_dir: all checks passed in $(( $(date +%s) - start )) s"
