#!/usr/bin/env bash
# anvil data prepare --near-dedup, --dedup lines|paragraphs and --rejected, end to end: in a generated JSONL corpus with planted
# near-copies (a few words changed), exact copies and short documents, every near-copy is dropped and
# logged with the line of the document it copies, the originals and unrelated documents are kept, and
# the kept set is the same whether the tokenizer is trained first (three passes) or given (two).
set -euo pipefail
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
anvil=${ANVIL:-$src/build/anvil}
work=$(mktemp -d /tmp/anvil_e2e_near.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
meta() { grep -o "\"$1\": [0-9]*" "$2/meta.json" | grep -o '[0-9]*$'; }

# 300 originals of 300 random words; after them, near-copies of every 5th (2 words changed: J about
# 0.93), exact
# copies of every 7th, and 10 short documents. planted.txt: "copy_line original_line kind".
/usr/bin/python3 - <<'EOF'
import json, random
rng = random.Random(7)
vocab = ["w%d" % i for i in range(20000)]
docs, planted = [], []
for i in range(300):
    docs.append([rng.choice(vocab) for _ in range(300)])
originals = list(docs)
lines = [" ".join(d) for d in docs]
for i, d in enumerate(originals):
    if i % 5 == 0:
        c = list(d)
        for _ in range(2):
            c[rng.randrange(len(c))] = rng.choice(vocab).upper()
        lines.append(" ".join(c)); planted.append((len(lines), i + 1, "near-duplicate"))
    if i % 7 == 0:
        lines.append(lines[i]); planted.append((len(lines), i + 1, "duplicate"))
for i in range(10):
    lines.append("tiny %d" % i); planted.append((len(lines), 0, "min_chars"))
with open("corpus.jsonl", "w") as f:
    for t in lines: f.write(json.dumps({"text": t}) + "\n")
with open("planted.txt", "w") as f:
    for p in planted: f.write("%d %d %s\n" % p)
EOF
n_near=$(grep -c near-duplicate planted.txt)
n_dup=$(grep -c ' duplicate' planted.txt)
"$anvil" data prepare --input corpus.jsonl --vocab-size 300 --out trained --dedup --near-dedup --min-chars 20 \
  --rejected trained.rejected.jsonl --val-fraction 0.05 2>trained.log || { cat trained.log; exit 1; }
cat trained.log
[ "$(meta dropped_near_duplicates trained)" = "$n_near" ] && ok "$n_near near-copies dropped" ||
  bad "near-duplicates dropped: $(meta dropped_near_duplicates trained), planted $n_near"
[ "$(meta dropped_duplicates trained)" = "$n_dup" ] && ok "$n_dup exact copies dropped" ||
  bad "duplicates dropped: $(meta dropped_duplicates trained), planted $n_dup"
kept=$(/usr/bin/python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); print(m["train"]["documents"] + m["val"]["documents"])' trained/meta.json)
[ "$kept" = 300 ] && ok "the 300 originals are kept" || bad "kept documents: $kept, want 300"
# every planted document is in the log, with the reason and (for copies) the original's line
/usr/bin/python3 - trained.rejected.jsonl planted.txt <<'EOF' && ok "the rejected log names each dropped document, its reason and the line kept" || bad "the rejected log"
import json, sys
got = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    assert r["source"] == "corpus.jsonl", r
    got[r["line"]] = r
planted = [l.split() for l in open(sys.argv[2])]
assert len(got) == len(planted), (len(got), len(planted))
for line, orig, kind in planted:
    r = got[int(line)]
    assert r["reason"] == kind, (line, r)
    if kind == "min_chars":
        assert r["value"] < 20 and "kept_line" not in r, r
    else:
        assert r["kept_line"] == int(orig) and r["kept_source"] == "corpus.jsonl", (line, orig, r)
        assert (r["value"] == 1) if kind == "duplicate" else (0.8 <= r["value"] < 1), r
print("rejected log: %d lines, all as planted" % len(got))
EOF
"$anvil" data prepare --input corpus.jsonl --tokenizer trained/tokenizer.json --out given --dedup --near-dedup \
  --min-chars 20 --rejected given.rejected.jsonl --val-fraction 0.05 2>given.log || { cat given.log; exit 1; }
same=1
for s in trained/*.bin; do cmp -s "$s" "given/$(basename "$s")" || same=0; done
cmp -s trained.rejected.jsonl given.rejected.jsonl || same=0
[ $same = 1 ] && ok "the same shards and log with the tokenizer given (two passes) as trained (three)" ||
  bad "shards or log differ between two and three passes"
grep -q "dropped: 10 empty or short, $n_dup duplicates, $n_near near-duplicates" trained.log &&
  ok "the summary counts each filter's drops" || bad "summary line"
# --dedup lines / paragraphs: a footer shared by 50 pages stays in the first only, a line repeated inside
# one page stays, a page of nothing but seen lines goes; --dedup docs lines does both
/usr/bin/python3 - <<'EOF'
import json
with open("pages.jsonl", "w") as f:
    for i in range(50):
        body = "Page %d tells its own story about the river number %d.\nIt goes on for a while, page %d." % (i, i, i)
        if i == 7: body += "\nThis line is said twice.\nThis line is said twice."
        f.write(json.dumps({"text": body + "\n\nSubscribe to our newsletter for more stories.\nShare this page."}) + "\n")
    f.write(json.dumps({"text": "Subscribe to our newsletter for more stories.\nShare this page."}) + "\n")
    f.write(json.dumps({"text": "Page 3 tells its own story about the river number 3.\nIt goes on for a while, page 3.\n\nSubscribe to our newsletter for more stories.\nShare this page."}) + "\n")
EOF
"$anvil" data prepare --input pages.jsonl --tokenizer trained/tokenizer.json --out lines --dedup lines \
  --rejected lines.rejected.jsonl --val-fraction 0 2>lines.log || { cat lines.log; exit 1; }
"$anvil" data prepare --input pages.jsonl --tokenizer trained/tokenizer.json --out paras --dedup docs paragraphs \
  --rejected paras.rejected.jsonl --val-fraction 0 2>paras.log || { cat paras.log; exit 1; }
/usr/bin/python3 - <<'EOF' && ok "--dedup lines and paragraphs: boilerplate removed after its first page, repeats inside a page kept, a page of it dropped" || bad "--dedup lines / paragraphs"
import json
m = json.load(open("lines/meta.json"))
# 49 pages lose 2 footer lines, the footer-only page loses 2 (and goes), page 3's copy loses all 4
assert m["duplicate_lines_removed"] == 49 * 2 + 2 + 4, m["duplicate_lines_removed"]
assert m["dropped_by_filter"] == {"duplicate_lines": 2}, m["dropped_by_filter"]
assert m["train"]["documents"] == 50, m["train"]
p = json.load(open("paras/meta.json"))
# paragraphs: 49 footers; the footer-only page goes for its paragraph; page 3's copy is a duplicate document
assert p["duplicate_lines_removed"] == 49 + 1, p["duplicate_lines_removed"]
assert p["dropped_duplicates"] == 1 and p["dropped_by_filter"] == {"duplicate_lines": 1}, p
reasons = sorted(json.loads(l)["reason"] for l in open("paras.rejected.jsonl"))
assert reasons == ["duplicate", "duplicate_lines"], reasons
EOF
# a rejected log that cannot be written: the run fails and leaves no shard
mkdir ro && chmod 500 ro
if [ "$(id -u)" != 0 ]; then
  if "$anvil" data prepare --input corpus.jsonl --tokenizer trained/tokenizer.json --out noshards \
    --near-dedup --rejected ro/rejected.jsonl 2>err.log; then bad "unwritable rejected log accepted"
  elif ls noshards/*.bin >/dev/null 2>&1; then bad "shards left after a failed run"
  else ok "an unwritable rejected log: $(grep anvil: err.log)"; fi
fi
echo "e2e_near_dedup: $passed passed, $failed failed"
[ "$failed" = 0 ]
