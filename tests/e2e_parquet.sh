#!/usr/bin/env bash
# Parquet and zstd inputs of anvil data prepare, against real producers: the same documents written
# by DuckDB and by arrow-rs (parquet-wasm) for every codec (uncompressed, snappy, gzip, zstd), data
# page v1 and v2, and every string encoding (PLAIN, dictionary, DELTA_LENGTH_BYTE_ARRAY,
# DELTA_BYTE_ARRAY), with nulls, several row groups and pages, and a column inside a struct, give
# shards byte-identical to those of the documents as JSON lines; so do .jsonl.zst (several frames) and
# .jsonl.gz (several members) and a folder of them. Bad input (truncated or corrupt footer, page and
# stream, a missing or non-string column) fails with one line naming the file and where, leaves no
# shard, or with --skip-bad is skipped and counted.
set -euo pipefail
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
anvil=${ANVIL:-$src/build/anvil}
work=$(mktemp -d /tmp/anvil_e2e_parquet.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
meta() { grep -o "\"$1\": [0-9]*" "$2/meta.json" | grep -o '[0-9]*$'; }
# expect_fail DESCRIPTION NEEDLE COMMAND...: exit 1, one "anvil: " line containing NEEDLE, no shard.
expect_fail() {
  local what=$1 needle=$2 rc=0 msg
  shift 2
  rm -rf "$work/bad_out"
  "$@" --out "$work/bad_out" >"$work/out" 2>"$work/err" || rc=$?
  msg=$(grep '^anvil: ' "$work/err" || true)
  echo "  $what: exit $rc: $msg"
  if [ "$rc" = 1 ] && [ "$(echo "$msg" | wc -l)" = 1 ] && [[ "$msg" == *"$needle"* ]] &&
    ! ls "$work/bad_out"/*.bin >/dev/null 2>&1; then ok "$what"
  else bad "$what (want exit 1, '$needle' and no shard)"; cat "$work/err"; fi
}

NODE_PATH=$("$src/tools/parquet_check/install.sh") || { echo "FAIL: cannot install the Parquet writers (tools/parquet_check)"; exit 1; }
export NODE_PATH
node "$src/tools/parquet_check/write.cjs" "$work/pq" 3000
cd "$work"

# ---- the reference: the documents as JSON lines ----
prep() { "$anvil" data prepare --shard-tokens 100000 --val-fraction 0.01 "$@" >"$work/log" 2>&1; }
prep --input pq/docs.jsonl --vocab-size 300 --out ref || { cat "$work/log"; exit 1; }
tok=ref/tokenizer.json
nshards=$(ls ref/*.bin | wc -l)
ndocs=$(wc -l <pq/docs.jsonl)
echo "reference: $ndocs documents, $nshards shards"
# same_as_ref NAME DIR: every shard of ref equals DIR's, and DIR has no other.
same_as_ref() {
  local s
  [ "$(ls "$2"/*.bin | wc -l)" = "$nshards" ] || { bad "$1: $(ls "$2"/*.bin | wc -l) shards, want $nshards"; return; }
  for s in ref/*.bin; do cmp -s "$s" "$2/$(basename "$s")" || { bad "$1: $(basename "$s") differs"; return; }; done
  ok "$1: shards identical to the JSON lines'"
}

# ---- every Parquet variant ----
n_files=0
for f in pq/*.parquet; do
  name=$(basename "$f" .parquet) field=text
  [[ $name == struct_* ]] && field=meta.text
  if prep --input "$f" --tokenizer $tok --out "o_$name" --text-field $field; then
    same_as_ref "$name" "o_$name"
    nulls=$(meta null_values "o_$name")
    [ "$nulls" -gt 0 ] || bad "$name: no null values counted"
  else
    bad "$name: $(tail -1 "$work/log")"
  fi
  n_files=$((n_files + 1))
done
[ "$n_files" -ge 40 ] || bad "only $n_files Parquet files were written"
grep -q 'null values' "$work/log" && ok "the summary counts null values ($(meta null_values o_duckdb_zstd_V1) in each file)"

# ---- compressed JSON lines: zstd in two frames, gzip in two members; a folder of them ----
head -n 1000 pq/docs.jsonl | zstd -q -c >docs.jsonl.zst
tail -n +1001 pq/docs.jsonl | zstd -q -19 -c >>docs.jsonl.zst
head -n 1500 pq/docs.jsonl | gzip -c >docs.jsonl.gz
tail -n +1501 pq/docs.jsonl | gzip -c >>docs.jsonl.gz
# prep_same NAME INPUT: prepared with the reference's tokenizer, the shards equal the reference's.
prep_same() {
  if prep --input "$2" --tokenizer $tok --out "o_$1"; then same_as_ref "$1" "o_$1"
  else bad "$1: $(tail -1 "$work/log")"; fi
}
prep_same "jsonl.zst_in_two_frames" docs.jsonl.zst
prep_same "jsonl.gz_in_two_members" docs.jsonl.gz
mkdir -p folder/a/b && cp docs.jsonl.zst folder/a/b/ && echo "not read" >folder/a/notes.csv
prep_same "a_folder_holding_a_jsonl.zst" folder
mkdir -p folder2/x && cp pq/arrow_zstd_v2_delta.parquet folder2/x/ && cp pq/duckdb_snappy_V1.parquet folder2/y.parquet
if prep --input folder2 --tokenizer $tok --out o_folder2; then
  [ "$(meta documents_read o_folder2)" = $((2 * ndocs)) ] && ok "a folder of Parquet files: both read" ||
    bad "a folder of Parquet files: $(meta documents_read o_folder2) documents read, want $((2 * ndocs))"
else bad "a folder of Parquet files: $(tail -1 "$work/log")"; fi
zstd -q -c pq/docs.jsonl >plain.txt.zst
prep --input plain.txt.zst --tokenizer $tok --out o_txtzst && ok "text .zst" || bad "text .zst: $(tail -1 "$work/log")"

# ---- bad input ----
good=pq/duckdb_zstd_V1.parquet size=$(stat -c %s $good)
head -c $((size - 100)) $good >truncated.parquet
expect_fail "truncated Parquet" "truncated.parquet: not a Parquet file (no PAR1 at its end)" \
  "$anvil" data prepare --input truncated.parquet --tokenizer $tok
# the footer: its last bytes before the length overwritten
footer_len=$(od -An -tu4 -j $((size - 8)) -N4 $good | tr -d ' ')
cp $good corrupt_footer.parquet
printf '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff' | dd of=corrupt_footer.parquet bs=1 seek=$((size - 8 - footer_len + 2)) conv=notrunc 2>/dev/null
expect_fail "corrupt Parquet footer" "corrupt_footer.parquet: corrupt footer" \
  "$anvil" data prepare --input corrupt_footer.parquet --tokenizer $tok
# a compressed page: garbage in the middle of the first row group's text column
cp $good corrupt_page.parquet
head -c 4000 /dev/urandom | dd of=corrupt_page.parquet bs=1 seek=3000 conv=notrunc 2>/dev/null
expect_fail "corrupt Parquet page" "corrupt_page.parquet: row group 0, column \"text\", page at byte" \
  "$anvil" data prepare --input corrupt_page.parquet --tokenizer $tok
cp pq/arrow_snappy_v1_plain.parquet corrupt_snappy.parquet
head -c 2000 /dev/zero | tr '\0' '\377' | dd of=corrupt_snappy.parquet bs=1 seek=20000 conv=notrunc 2>/dev/null
expect_fail "corrupt snappy page" "corrupt_snappy.parquet: row group 0, column \"text\", page at byte" \
  "$anvil" data prepare --input corrupt_snappy.parquet --tokenizer $tok
expect_fail "no such column" 'no column "body" (columns: id, text); choose one with --text-field' \
  "$anvil" data prepare --input $good --tokenizer $tok --text-field body
expect_fail "a column that is not text" 'column "id" holds INT64 values, not strings' \
  "$anvil" data prepare --input $good --tokenizer $tok --text-field id
head -c 20 $good >tiny.parquet
expect_fail "a file too short to be Parquet" "tiny.parquet: not a Parquet file" \
  "$anvil" data prepare --input tiny.parquet --tokenizer $tok
zsize=$(stat -c %s docs.jsonl.zst)
head -c $((zsize / 3)) docs.jsonl.zst >truncated.jsonl.zst
expect_fail "truncated .zst" "truncated.jsonl.zst: truncated zstd stream" \
  "$anvil" data prepare --input truncated.jsonl.zst --tokenizer $tok
cp docs.jsonl.zst corrupt.jsonl.zst
head -c 300 /dev/zero | dd of=corrupt.jsonl.zst bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_fail "corrupt .zst" "corrupt.jsonl.zst: corrupt zstd data between bytes" \
  "$anvil" data prepare --input corrupt.jsonl.zst --tokenizer $tok
{ cat docs.jsonl.gz; printf 'PAR1'; } >trailing.jsonl.gz
expect_fail "data after a gzip stream" "trailing.jsonl.gz: data that is not gzip after the end of the gzip stream" \
  "$anvil" data prepare --input trailing.jsonl.gz --tokenizer $tok

# ---- --skip-bad: the unreadable rest of a file is skipped and counted; the good file is read ----
mkdir -p mixed && cp $good mixed/1_good.parquet && cp corrupt_page.parquet mixed/2_bad.parquet &&
  cp truncated.jsonl.zst mixed/3_bad.jsonl.zst
if prep --input mixed --tokenizer $tok --out o_mixed --skip-bad; then
  sk=$(meta skipped_files o_mixed)
  [ "$sk" = 2 ] && grep -q "skipping the rest of the file: mixed/2_bad.parquet: row group 0" "$work/log" &&
    [ "$(meta documents_read o_mixed)" -ge "$ndocs" ] && ok "--skip-bad: 2 bad files skipped and counted, the good one read" ||
    { bad "--skip-bad: skipped_files $sk"; cat "$work/log"; }
else bad "--skip-bad: $(tail -1 "$work/log")"; fi

echo "e2e_parquet: $passed passed, $failed failed"
[ "$failed" = 0 ]
