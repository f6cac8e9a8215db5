#!/usr/bin/env bash
# Bad input to train / eval / sample: each case must exit non-zero with one line "anvil: ..." that
# names the file (or the option) and the problem, never crash; checkpoints must survive disk-full
# saves and NaN losses byte for byte.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir
passed=0

# expect NAME SUBSTRING [--after-steps] -- command...: non-zero exit (not a crash), and the error line
# (the only stderr line, or with --after-steps the last one after progress lines) names SUBSTRING.
expect() {
  local name=$1 want=$2 after=0; shift 2
  if [ "$1" = --after-steps ]; then after=1; shift; fi
  shift # --
  local rc=0
  "$@" >out.txt 2>err.txt || rc=$?
  [ "$rc" != 0 ] || fail "$name: exit 0"
  [ "$rc" -lt 128 ] || fail "$name: crashed (exit $rc): $(tail -3 err.txt)"
  local line; line=$(tail -1 err.txt)
  [ "$after" = 1 ] || [ "$(wc -l <err.txt)" = 1 ] || fail "$name: expected one line, got: $(cat err.txt)"
  case "$line" in "anvil: "*"$want"*) ;; *) fail "$name: '$line' does not name '$want'" ;; esac
  echo "ok  $name: $line"
  passed=$((passed + 1))
}

# ---- a good data directory and a small model ----
awk 'function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
BEGIN { seed = 7; split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma", w, " ")
  for (i = 0; i < 3000; i++) { s = s w[int(rnd() * 18) + 1] (rnd() < 0.1 ? ".\n\n" : " ") } print s }' > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 280 --val-fraction 0.1 --split-blank-lines 1 --out data \
  --threads 1 >/dev/null 2>&1 || fail "data prepare"
echo '{"n_layer": 1, "n_head": 2, "n_embd": 32, "vocab_size": 280, "block_size": 32}' > model.json
train=("$anvil" train --config model.json --batch 2 --seq 32 --threads 1 --eval-batches 2)

# ---- data directory and shards ----
expect "missing data dir" "nope: data directory does not exist" -- "${train[@]}" --data nope --out r
mkdir notok && cp data/*.bin notok/
expect "missing tokenizer.json" "notok/tokenizer.json" -- "${train[@]}" --data notok --out r
shard() { rm -rf "$1" && cp -r data "$1"; }  # a copy of the data to corrupt
shard empty && : > empty/train_000000.bin
expect "empty shard" "empty/train_000000.bin" -- "${train[@]}" --data empty --out r
shard trunc && head -c 1500 data/train_000000.bin > trunc/train_000000.bin
expect "truncated shard" "trunc/train_000000.bin: truncated" -- "${train[@]}" --data trunc --out r
shard foreign && head -c 4096 /dev/urandom > foreign/train_000000.bin
expect "foreign file (bad magic)" "foreign/train_000000.bin: not a token shard: bad magic" -- \
  "${train[@]}" --data foreign --out r
shard version && cp data/train_000000.bin version/train_000000.bin &&
  printf '\x07' | dd of=version/train_000000.bin bs=1 seek=4 conv=notrunc 2>/dev/null
expect "bad shard version" "version/train_000000.bin: unsupported shard version 7" -- \
  "${train[@]}" --data version --out r
shard count && printf '\x00\x00\x00\x00' | dd of=count/train_000000.bin bs=1 seek=8 conv=notrunc 2>/dev/null
expect "zero token count" "count/train_000000.bin: shard holds no tokens" -- "${train[@]}" --data count --out r
shard noval && rm noval/val_*.bin
expect "no validation shards" "noval: no val shards" -- "${train[@]}" --data noval --out r
# Shards of a bigger vocabulary under this tokenizer: token ids beyond the model's vocabulary.
"$anvil" data prepare --input corpus.txt --vocab-size 320 --val-fraction 0.1 --split-blank-lines 1 --out big \
  --threads 1 >/dev/null 2>&1 || fail "data prepare (320)"
shard wrongvocab && cp big/train_000000.bin wrongvocab/train_000000.bin
expect "token id outside the vocabulary" "wrongvocab/train_000000.bin: token id" -- \
  "${train[@]}" --data wrongvocab --out r

# ---- model configuration ----
echo '{"n_layer": 1, "n_head": 2, "n_embd": 32, "vocab_size": 100, "block_size": 32}' > small_vocab.json
expect "tokenizer does not fit the config" "small_vocab.json: vocab_size 100 cannot hold the tokenizer's 280" -- \
  "$anvil" train --data data --out r --config small_vocab.json --threads 1
echo '{"n_layer": 1, "n_head": 3, "n_embd": 32, "vocab_size": 280, "block_size": 32}' > heads.json
expect "n_embd not divisible by n_head" "heads.json: n_embd 32 is not divisible by n_head 3" -- \
  "$anvil" train --data data --out r --config heads.json --threads 1
echo '{"n_layer": 0, "n_head": 2, "n_embd": 32, "vocab_size": 280, "block_size": 32}' > zero.json
expect "zero layers" "zero.json: n_layer 0 is out of range" -- "$anvil" train --data data --out r --config zero.json
echo '{"n_layer": 1, "n_head": 2, "n_embd": -32, "vocab_size": 280, "block_size": 32}' > neg.json
expect "negative n_embd" "neg.json" -- "$anvil" train --data data --out r --config neg.json
echo '{"n_layer": 1, "n_head": 2, "n_embd": 32, "vocab_size": 280' > broken.json
expect "malformed config JSON" "broken.json" -- "$anvil" train --data data --out r --config broken.json
expect "--seq beyond block_size" "--seq 64 exceeds the model's block_size 32" -- \
  "$anvil" train --data data --out r --config model.json --seq 64 --threads 1
expect "--total-batch-tokens not a multiple" "--total-batch-tokens 100 is not a multiple" -- \
  "${train[@]}" --data data --out r --total-batch-tokens 100
expect "unknown preset" "unknown model preset 'huge'" -- "$anvil" train --data data --out r --preset huge

# ---- runs, checkpoints, resume ----
"${train[@]}" --data data --out run --steps 20 --save-every 10 --eval-every 10 2>/dev/null || fail "good run"
expect "existing run without --resume" "run: already holds a run" -- "${train[@]}" --data data --out run --steps 5
expect "resume with another --preset" "run/config.json: the run's model is not the one --preset tiny asks for (n_layer: 1 against 4)" -- \
  "$anvil" train --out run --resume --preset tiny --steps 30
# Another architecture's config on resume: refused by name, the checkpoint untouched (the lock holds a pid).
E2E_ARCH=llama e2e_model_json 280 32 > llama.json
before=$(md5sum run/*.json run/*.safetensors run/log.jsonl | md5sum)
expect "resume a GPT-2 run with a Llama --config" "run/config.json: the run's model is not the one --config llama.json asks for (architecture: gpt2 against llama)" -- \
  "$anvil" train --out run --resume --config llama.json --steps 30
expect "resume a GPT-2 run with a Llama --preset" "(architecture: gpt2 against llama)" -- \
  "$anvil" train --out run --resume --preset llama-tiny --steps 30
[ "$(md5sum run/*.json run/*.safetensors run/log.jsonl | md5sum)" = "$before" ] || fail "a refused resume changed the run's files"
expect "resume with another --batch" "run/state.json: the run was trained with other --batch" -- \
  "$anvil" train --out run --resume --batch 4 --steps 30
expect "resume of a missing run" "nothing: no checkpoint to resume" -- "$anvil" train --out nothing --resume
cp -r run trunc_run && head -c 3000 run/model.safetensors > trunc_run/model.safetensors
expect "truncated model.safetensors on resume" "trunc_run/model.safetensors" -- \
  "$anvil" train --out trunc_run --resume --steps 30 --threads 1
expect "eval of a truncated model" "trunc_run/model.safetensors" -- "$anvil" eval --run trunc_run
expect "sample from a missing run" "nope: run directory does not exist" -- "$anvil" sample --run nope --prompt hi
expect "sample with a negative temperature" "--temperature -1: out of range" -- \
  "$anvil" sample --run run --prompt hi --temperature -1

# ---- numeric options: each bound names its option ----
for opt in "--steps -5" "--steps 0" "--eval-every -1" "--save-every -1" "--threads -2" "--threads 100000" \
           "--seed -1" "--tokens -1" "--warmup -1" "--batch 0" "--lr 0" "--zero 2"; do
  set -- $opt
  expect "train $opt" "$1 $2: out of range" -- "${train[@]}" --data data --out ropt $opt
done
expect "train --min-lr above --lr" "--min-lr 0.01 is above the peak --lr 0.001" -- \
  "${train[@]}" --data data --out ropt --lr 1e-3 --min-lr 1e-2
expect "sample --threads 100000" "--threads 100000: out of range" -- "$anvil" sample --run run --threads 100000
expect "eval --threads 100000" "--threads 100000: out of range" -- "$anvil" eval --run run --threads 100000
expect "serve --threads 100000" "--threads 100000: out of range" -- "$anvil" serve --run run --threads 100000
expect "serve --max-concurrency 1000" "--max-concurrency 1000: more than --max-connections 64" -- \
  "$anvil" serve --run run --max-concurrency 1000
expect "serve --max-concurrency 5000" "--max-concurrency 5000: out of range" -- \
  "$anvil" serve --run run --max-concurrency 5000
expect "data prepare --threads 100000" "--threads 100000: out of range" -- \
  "$anvil" data prepare --input corpus.txt --vocab-size 280 --out d2 --threads 100000
[ -e ropt ] && fail "a refused train left files: $(ls ropt)"

# ---- a run's config.json: keys anvil does not implement are refused, not ignored ----
for edit in '"layer_norm_epsilon": -1' '"activation_function": "relu"' '"tie_word_embeddings": false'; do
  rm -rf cfg && cp -r run cfg
  sed -i "s/^{/{ $edit,/" cfg/config.json
  key=${edit%%\"*:*}; key=${edit#\"}; key=${key%%\"*}
  expect "config.json with $edit" "cfg/config.json: $key" -- "$anvil" eval --run cfg
  expect "--config with $edit" "cfg/config.json: $key" -- "${train[@]}" --data data --out r2 --config cfg/config.json
done

# ---- weights that are not finite: refused by tensor name, nothing printed ----
rm -rf nanw && cp -r run nanw
/usr/bin/python3 - nanw/model.safetensors <<'PY'
import json, struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
start = 8 + n + header["transformer.h.0.attn.c_attn.weight"]["data_offsets"][0]
data[start + 40:start + 44] = struct.pack("<f", float("nan"))
open(path, "wb").write(data)
PY
expect "NaN weight (sample)" "nanw/model.safetensors: tensor transformer.h.0.attn.c_attn.weight holds NaN at element 10" -- \
  "$anvil" sample --run nanw --prompt hi
[ -s out.txt ] && fail "sample printed output for a NaN model: $(od -c out.txt | head -2)"
expect "NaN weight (eval)" "holds NaN at element 10" -- "$anvil" eval --run nanw
expect "NaN weight (resume)" "holds NaN at element 10" -- "$anvil" train --out nanw --resume --steps 30 --threads 1

# ---- state.json's own values are named as the run's, not as options ----
rm -rf seqrun && cp -r run seqrun && sed -i 's/"seq": 32/"seq": 99/' seqrun/state.json
expect "bad seq in state.json" "seqrun/state.json: seq 99 exceeds the model's block_size 32" -- \
  "$anvil" train --out seqrun --resume --steps 30 --threads 1

# ---- allocation failure ----
expect "allocation failure" "out of memory: model parameters" -- \
  env ANVIL_ALLOC_LIMIT=1000000 "$anvil" train --data data --out alloc --preset tiny --threads 1
grep -q "needs [0-9]* bytes" err.txt || fail "allocation message does not say how much was asked for"

# ---- disk full while saving: the previous checkpoint survives byte for byte ----
cp -r run full && mkdir before && cp full/model.safetensors full/optim.safetensors full/state.json before/
expect "disk full while saving" "not saved (the previous one is intact)" --after-steps -- \
  env ANVIL_WRITE_LIMIT=20000 "$anvil" train --out full --resume --steps 30 --threads 1
for f in model.safetensors optim.safetensors state.json; do
  cmp -s "before/$f" "full/$f" || fail "disk full: $f changed"
done
ls full | grep -q next && fail "disk full: leftover .next files"
echo "    (model.safetensors, optim.safetensors, state.json byte-equal to the checkpoint of step 20)"
expect "disk full at the first save" "not saved (the run has no earlier checkpoint)" --after-steps -- \
  env ANVIL_WRITE_LIMIT=20000 "${train[@]}" --data data --out firstfull --steps 5

# ---- NaN loss: stop at that step, keep the last good checkpoint ----
expect "NaN loss" "step 15: the loss is nan" --after-steps -- \
  env ANVIL_TEST_NAN_AT_STEP=15 "${train[@]}" --data data --out nan --steps 20 --save-every 10
grep -q '"step": 10,' nan/state.json || fail "NaN: the checkpoint of step 10 is not the one kept"
grep -q 'checkpoint of step 10' err.txt || fail "NaN: message does not name the kept checkpoint"
"$anvil" train --out nan --resume --threads 1 2>/dev/null || fail "NaN: the kept checkpoint does not resume"
cmp -s nan/model.safetensors run/model.safetensors || fail "NaN: resumed run differs from the clean run"
echo "    (resumed from step 10 it ends bitwise equal to the clean run)"

echo "e2e_bad_input: $passed cases passed"
