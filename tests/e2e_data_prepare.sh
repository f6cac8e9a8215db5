#!/usr/bin/env bash
# anvil data prepare and anvil tokenizer train, end to end: a prepared corpus is deterministic and
# accounts for every byte; training is identical on 1 and 2 threads; and every kind of bad input
# fails with one clear line (exit 1, never a crash) or is skipped and counted: empty files, files
# without a trailing newline, a single 200 MB line (generated here), NUL bytes and invalid UTF-8,
# malformed JSON lines, a missing JSON field, vocabulary sizes out of range, an unwritable output
# folder, a truncated or foreign tokenizer file, an allocation failure on a worker thread.
set -euo pipefail
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
anvil=${ANVIL:-$src/build/anvil}
work=$(mktemp -d /tmp/anvil_e2e_prepare.XXXXXX)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s.%N)
passed=0 failed=0

ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
# meta FIELD DIR: a top-level integer of DIR/meta.json, or SPLIT.FIELD for train/val.
meta() {
  local m="$2/meta.json"
  case "$1" in
    *.*) grep -o "\"${1%%.*}\": {[^}]*}" "$m" | grep -o "\"${1#*.}\": [0-9]*" | grep -o '[0-9]*$' ;;
    *) grep -o "\"$1\": [0-9]*" "$m" | grep -o '[0-9]*$' ;;
  esac
}
# expect_fail DESCRIPTION NEEDLE COMMAND...: exit status 1 and one "anvil: ..." line containing NEEDLE.
expect_fail() {
  local what=$1 needle=$2 rc=0
  shift 2
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  local msg
  msg=$(grep '^anvil: ' "$work/err" || true)
  echo "  $what: exit $rc: $msg"
  if [ "$rc" = 1 ] && [ "$(echo "$msg" | wc -l)" = 1 ] && [[ "$msg" == *"$needle"* ]]; then ok "$what"
  else bad "$what (want exit 1 and '$needle')"; cat "$work/err"; fi
}

# ---- a small corpus: 300 paragraphs of generated text, split into documents at blank lines ----
words=(the whale ship sea Ahab captain white harpoon boat crew 1851 "don't" naïve Ishmael whaling — "Queequeg's")
{
  for ((i = 0; i < 300; i++)); do
    line=""
    for ((k = 0; k < 12 + i % 9; k++)); do line+="${words[$(((i * 7 + k * 13 + k * k) % ${#words[@]}))]} "; done
    printf '%s\nparagraph %d ends here.\n\n' "$line" "$i"
  done
} >"$work/small.txt"

# ---- tokenizer train: determinism across thread counts, layout, errors ----
"$anvil" tokenizer train --input "$work/small.txt" --vocab-size 360 --out "$work/tok1.json" --threads 1 \
  --special "<|pad|>" 2>"$work/log1"
"$anvil" tokenizer train --input "$work/small.txt" --vocab-size 360 --out "$work/tok2.json" --threads 2 \
  --special "<|pad|>" 2>"$work/log2"
tail -1 "$work/log2"
if cmp -s "$work/tok1.json" "$work/tok2.json"; then ok "tokenizer train: same tokenizer.json on 1 and 2 threads"
else bad "tokenizer train differs between 1 and 2 threads"; fi
eot=$(echo "<|endoftext|>" | "$anvil" tokenizer encode --tokenizer "$work/tok1.json" --special | awk '{print $1}')
if [ "$eot" = 358 ]; then ok "tokenizer train: <|endoftext|> is id 358 = 256 + 102 merges, <|pad|> follows"
else bad "end-of-text id $eot, expected 358"; fi
expect_fail "vocab below 256 + specials" "below 256 bytes + 1 special token = 257" \
  "$anvil" tokenizer train --input "$work/small.txt" --vocab-size 256 --out "$work/x.json"
expect_fail "vocab above the shard limit" "above 4294967295" \
  "$anvil" tokenizer train --input "$work/small.txt" --vocab-size 4294967296 --out "$work/x.json"
expect_fail "vocab above the possible merges" "merges, but" \
  "$anvil" tokenizer train --input "$work/small.txt" --vocab-size 5000 --out "$work/x.json"
expect_fail "train on a missing file" "nope.txt: No such file" \
  "$anvil" tokenizer train --input "$work/nope.txt" --vocab-size 300 --out "$work/x.json"

# ---- data prepare: happy path, determinism, every byte accounted for ----
"$anvil" data prepare --input "$work/small.txt" --vocab-size 360 --out "$work/p1" --split-blank-lines 1 \
  --val-fraction 0.05 --seed 7 --shard-tokens 5000 2>"$work/log"
tail -3 "$work/log"
"$anvil" data prepare --input "$work/small.txt" --tokenizer "$work/p1/tokenizer.json" --out "$work/p2" \
  --split-blank-lines 1 --val-fraction 0.05 --seed 7 --shard-tokens 5000 2>/dev/null
same=1
for f in "$work"/p1/*.bin; do cmp -s "$f" "$work/p2/$(basename "$f")" || same=0; done
[ "$(ls "$work"/p1/*.bin | wc -l)" = "$(ls "$work"/p2/*.bin | wc -l)" ] || same=0
if [ $same = 1 ]; then
  ok "prepare: trained then reloaded tokenizer give identical shards"
else bad "prepare: shards differ between --vocab-size and --tokenizer runs"; fi
# --tokenizer-sample: a sample as large as the input trains the same tokenizer; a small one, another
"$anvil" data prepare --input "$work/small.txt" --vocab-size 360 --out "$work/p3" --split-blank-lines 1 \
  --val-fraction 0.05 --seed 7 --shard-tokens 5000 --tokenizer-sample 100000000 2>/dev/null
"$anvil" data prepare --input "$work/small.txt" --vocab-size 360 --out "$work/p4" --split-blank-lines 1 \
  --val-fraction 0.05 --seed 7 --shard-tokens 5000 --tokenizer-sample $(($(wc -c <"$work/small.txt") / 3)) 2>"$work/log4"
if cmp -s "$work/p1/tokenizer.json" "$work/p3/tokenizer.json" && ! cmp -s "$work/p1/tokenizer.json" "$work/p4/tokenizer.json" &&
  grep -q "counting" "$work/log4"; then ok "--tokenizer-sample: all of a small input trains the same tokenizer, a third of it another"
else bad "--tokenizer-sample"; fi
docs=$(($(meta train.documents "$work/p1") + $(meta val.documents "$work/p1")))
bytes=$(($(meta train.bytes "$work/p1") + $(meta val.bytes "$work/p1")))
want_bytes=$(grep -v '^$' "$work/small.txt" | wc -c)
shards=$(meta train.shards "$work/p1")
tokens=$(meta train.tokens "$work/p1")
echo "  300 paragraphs -> $docs documents, $bytes bytes (non-blank lines hold $want_bytes), $tokens train tokens in $shards shards"
if [ "$docs" = 300 ] && [ "$bytes" = "$want_bytes" ] && [ "$shards" = $(((tokens + 4999) / 5000)) ] &&
  [ "$(meta val.documents "$work/p1")" -ge 1 ]; then ok "prepare: documents, bytes and shard counts"
else bad "prepare: counts"; fi
grep -q '"command": \["anvil", "data", "prepare", "--input"' "$work/p1/meta.json" && ok "meta.json records the command" ||
  bad "meta.json command"

# ---- bad inputs ----
: >"$work/empty1.txt"
: >"$work/empty2.txt"
expect_fail "only empty files (training)" "no text to learn from: 2 files read (2 empty)" \
  "$anvil" data prepare --input "$work/empty1.txt" "$work/empty2.txt" --vocab-size 300 --out "$work/e"
expect_fail "only empty files (tokenizer given)" "no documents left to write" \
  "$anvil" data prepare --input "$work/empty1.txt" --tokenizer "$work/tok1.json" --out "$work/e"
printf 'no trailing newline, \x00 NUL byte, invalid \xff\xfe\xc3 UTF-8 and a lone \r CR' >"$work/raw.txt"
"$anvil" data prepare --input "$work/empty1.txt" "$work/raw.txt" "$work/small.txt" --tokenizer "$work/tok1.json" \
  --out "$work/r" 2>/dev/null
rb=$(($(meta train.bytes "$work/r") + $(meta val.bytes "$work/r")))
want=$(($(wc -c <"$work/raw.txt") + $(wc -c <"$work/small.txt")))
if [ "$rb" = "$want" ] && [ "$(meta empty_files "$work/r")" = 1 ]; then
  ok "empty file skipped and counted; no trailing newline, NUL, invalid UTF-8 kept byte for byte ($rb bytes)"
else bad "raw bytes: $rb vs $want, empty_files $(meta empty_files "$work/r")"; fi

printf '{"text": "good one"}\n{"text": "broken",}\n{"text": "good two"}\n' >"$work/bad.jsonl"
expect_fail "malformed JSON line" "bad.jsonl:2: invalid JSON" \
  "$anvil" data prepare --input "$work/bad.jsonl" --tokenizer "$work/tok1.json" --out "$work/j"
"$anvil" data prepare --input "$work/bad.jsonl" --tokenizer "$work/tok1.json" --out "$work/j" --skip-bad 2>"$work/err"
if [ "$(meta skipped_bad "$work/j")" = 1 ] && grep -q 'skipping .*bad.jsonl:2' "$work/err"; then
  ok "--skip-bad skips the line, names it and counts it"
else bad "--skip-bad"; fi
printf '{"text": "fine"}\n{"body": "where is text"}\n' >"$work/field.jsonl"
expect_fail "missing JSON field" 'field.jsonl:2: no "text" field' \
  "$anvil" data prepare --input "$work/field.jsonl" --tokenizer "$work/tok1.json" --out "$work/j"
expect_fail "prepare vocab below 256 + specials" "below 256 bytes" \
  "$anvil" data prepare --input "$work/small.txt" --vocab-size 200 --out "$work/v"
expect_fail "prepare vocab above the shard limit" "above 4294967295" \
  "$anvil" data prepare --input "$work/small.txt" --vocab-size 5000000000 --out "$work/v"
expect_fail "unwritable output folder" "$work/raw.txt/out" \
  "$anvil" data prepare --input "$work/small.txt" --tokenizer "$work/tok1.json" --out "$work/raw.txt/out"
head -c 2000 "$work/tok1.json" >"$work/truncated.json"
expect_fail "truncated tokenizer file" "truncated.json" \
  "$anvil" data prepare --input "$work/small.txt" --tokenizer "$work/truncated.json" --out "$work/t"
printf '{"model": {"type": "Unigram", "vocab": []}}' >"$work/foreign.json"
expect_fail "foreign tokenizer file" "foreign.json" \
  "$anvil" data prepare --input "$work/small.txt" --tokenizer "$work/foreign.json" --out "$work/t"
# One text file and nothing else: val is its last --val-fraction, cut at a line break.
awk 'BEGIN { for (i = 1; i <= 400; i++) printf "line %d of the only document, and the whale.\n", i }' >"$work/one.txt"
if "$anvil" data prepare --input "$work/one.txt" --vocab-size 300 --val-fraction 0.1 --out "$work/one" 2>"$work/err" &&
  grep -q 'the input is one document' "$work/err" && [ "$(meta val.documents "$work/one")" = 1 ] &&
  [ "$(meta train.documents "$work/one")" = 1 ] &&
  [ $(($(meta train.bytes "$work/one") + $(meta val.bytes "$work/one"))) = "$(wc -c <"$work/one.txt")" ] &&
  [ "$(head -c "$(meta train.bytes "$work/one")" "$work/one.txt" | tail -c 1 | od -An -c | tr -d ' ')" = '\n' ]; then
  vb=$(meta val.bytes "$work/one")
  ok "one text file: train and val of one document, val its last $vb bytes from a line start"
else bad "one text file: $(cat "$work/err")"; fi
"$anvil" data prepare --input "$work/small.txt" --tokenizer "$work/tok1.json" --out "$work/t" 2>"$work/err" &&
  grep -q 'the input is one document' "$work/err" && ok "a single document with a given tokenizer is split too" ||
  bad "single document with --tokenizer: $(cat "$work/err")"

seq 1 120000 | awk '{ printf "w%d ", $1 }' >"$work/many.txt" # 120k distinct words: a 4 MiB word table
expect_fail "allocation failure on a counting thread" "out of memory: word counts needs 4194304 bytes" \
  env ANVIL_ALLOC_LIMIT=3000000 "$anvil" data prepare --input "$work/many.txt" --vocab-size 1000 --out "$work/m" \
  --val-fraction 0

# ---- a single 200 MB line (no newline at all), generated here ----
(set +o pipefail; yes "the whale and the ship, 1851; " | head -c 209715200 | tr -d '\n' >"$work/line.txt")
rss=""
if [ -x /usr/bin/time ]; then
  /usr/bin/time -v "$anvil" data prepare --input "$work/line.txt" --tokenizer "$work/tok1.json" --out "$work/big" \
    --val-fraction 0 2>"$work/err"
  rss=$(awk -F': ' '/Maximum resident/ { printf "%d", $2 / 1024 }' "$work/err")
else
  "$anvil" data prepare --input "$work/line.txt" --tokenizer "$work/tok1.json" --out "$work/big" --val-fraction 0 \
    2>"$work/err"
fi
grep '^prepared' "$work/err" || true
lb=$(wc -c <"$work/line.txt")
bb=$(meta train.bytes "$work/big")
bt=$(meta train.tokens "$work/big")
rm -f "$work/line.txt" "$work"/big/*.bin
echo "  200 MB line: $bb bytes of $lb, $bt tokens, peak RSS ${rss:-?} MiB"
if [ "$bb" = "$lb" ] && [ "$bt" -gt 1000000 ] && { [ -z "$rss" ] || [ "$rss" -lt 1024 ]; }; then
  ok "a single 200 MB line is one document (peak RSS under 1 GiB)"
else bad "200 MB line"; fi

echo "e2e_data_prepare: $passed passed, $failed failed ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
[ "$failed" = 0 ]
