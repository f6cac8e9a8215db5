#!/usr/bin/env bash
# Int8 weights for inference (--weights q8; GPT-2, and Llama with E2E_ARCH=llama): on a tiny trained run,
# sample, eval and serve load the model, quantize its matrices and say so with the logits' error against
# f32 on a probe (within 3e-2 on these tiny models; llama.cpp's q8_0 is at 2.4e-3 to 6.8e-3 on real
# ones); the held-out loss stays within 1% of f32's; serve's greedy completion is sample's; a bad
# --weights is one line naming it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir

grammar_corpus 3000 7 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 1 >/dev/null 2>&1 || fail "data prepare"
e2e_model_json 300 64 > model.json
"$anvil" train --data data --config model.json --seq 64 --steps 150 --lr 3e-3 --eval-every 0 --out run --threads 1 \
  2>train.err || { cat train.err; fail "train"; }

"$anvil" sample --run run --prompt "The red cat" --temperature 0 --max-tokens 20 --weights q8 --threads 1 \
  >q8.txt 2>q8.err || { cat q8.err; fail "sample --weights q8"; }
grep "^weights: int8" q8.err || { cat q8.err; fail "no int8 line"; }
err=$(sed -nE 's/.* within ([0-9.e+-]+) of f32.*/\1/p' q8.err)
awk -v e="$err" 'BEGIN { exit !(e > 0 && e < 3e-2) }' || fail "int8 logits error $err"
echo "sample --weights q8: $(cat q8.txt)"
[ -s q8.txt ] || fail "no int8 greedy text"

val() { grep -o 'val loss [0-9.]*' | grep -o '[0-9.]*$'; }
f32=$("$anvil" eval --run run --threads 1 2>&1 | val)
q8=$("$anvil" eval --run run --weights q8 --threads 1 2>&1 | val)
echo "held-out loss: f32 $f32, q8 $q8"
awk -v a="$f32" -v b="$q8" 'BEGIN { d = (b - a) / a; d = d < 0 ? -d : d; exit !(d < 0.01) }' ||
  fail "q8 eval loss $q8 is not within 1% of f32's $f32"

if [[ "$(ldd "$anvil")" == *libmicrohttpd* ]] && command -v curl >/dev/null; then
  "$anvil" serve --run run --port 0 --threads 1 --weights q8 2>serve.err & bg=$!
  for _ in $(seq 100); do grep -q "listening on" serve.err && break; sleep 0.1; done
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' serve.err)
  reply=$(curl -s "localhost:$port/v1/completions" -d '{"prompt": "The red cat", "max_tokens": 20, "temperature": 0}')
  kill "$bg"; wait "$bg" 2>/dev/null || true; bg=
  grep -q "^weights: int8" serve.err || { cat serve.err; fail "serve: no int8 line"; }
  REPLY=$reply /usr/bin/python3 -c 'import json, os, sys
sys.exit(json.loads(os.environ["REPLY"])["choices"][0]["text"] != open("q8.txt").read())' ||
    fail "served int8 completion differs from sample's: $reply"
  echo "serve --weights q8: the same greedy completion as sample"
fi

rc=0; "$anvil" sample --run run --weights q4 2>err || rc=$?
[ "$rc" = 1 ] && grep -q -- "--weights q4: expected f32 or q8" err || { cat err; fail "bad --weights"; }
echo "refused: $(cat err)"
