#!/usr/bin/env bash
# `anvil serve` under slow clients, on loopback: 200 connections that trickle their headers must not
# keep /health and completions from another address waiting more than 1 s; connections over the
# limits get 503 with Retry-After, the others are closed at their request deadline (tests/slow_clients.py).
# Skips (77) when anvil was built without libmicrohttpd.
set -euo pipefail
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
source "$src/tests/lib.sh"
e2e_workdir
start=$(date +%s)
if [[ "$("$anvil" serve --run "$work" 2>&1 || true)" == *"without an HTTP library"* ]]; then
  echo "SKIP: anvil was built without libmicrohttpd"
  exit 77
fi

grammar_corpus 2000 5 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 1 >/dev/null 2>&1 || fail "data prepare"
echo '{"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab_size": 300, "block_size": 64}' > model.json
"$anvil" train --data data --config model.json --batch 4 --seq 64 --steps 30 --eval-every 0 --threads 1 --out run \
  2>train.err || { cat train.err; fail "train"; }

deadline=5
"$anvil" serve --run run --port 0 --threads 2 --max-concurrency 2 --request-timeout $deadline >serve.out 2>serve.err &
bg=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' serve.err)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || fail "serve did not start: $(cat serve.err)"
rss() { awk '/VmRSS/ { print int($2 / 1024) }' /proc/$bg/status; }
echo "serve listening on $port, RSS $(rss) MiB (64 connections, 32 per address, 2 slots)"
/usr/bin/python3 "$src/tests/slow_clients.py" "$port" 200 $deadline || fail "slow clients (see above)"
echo "RSS after the slow clients: $(rss) MiB"
kill -TERM $bg && wait $bg || fail "serve did not stop cleanly: $(tail -3 serve.err)"
bg=
echo "e2e_serve_slow: all checks passed in $(( $(date +%s) - start )) s"
