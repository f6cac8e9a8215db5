#!/usr/bin/env bash
# anvil data prepare with the quality filters, end to end, on a generated web-like corpus: prose pages
# are kept, and each planted kind of bad page (too short, symbol soup, bullet lists, repeated lines,
# boilerplate, lorem ipsum, code, no punctuation) is dropped for the rule that catches it, logged in
# --rejected and counted in meta.json; --filter-param moves a threshold; bad filter options fail with
# one clear line. Then --lang (CLD2), --blocklist and --pii: pages in other languages and with listed
# phrases are dropped, and the planted e-mail addresses, public IPs and phone numbers are gone from the
# shards while private IPs stay.
set -euo pipefail
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
anvil=${ANVIL:-$src/build/anvil}
work=$(mktemp -d /tmp/anvil_e2e_filters.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }

# web.jsonl and expected.txt ("line reason" for every planted bad page; prose pages are not listed)
/usr/bin/python3 - <<'EOF'
import json, random
rng = random.Random(3)
syl = "ka lo mi ren tas vu pel dor sin ma".split()
vocab = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(400)]
stop = "the be to of and that have with".split()
def sentence():
    w = [rng.choice(stop) if rng.random() < 0.3 else rng.choice(vocab) for _ in range(rng.randint(8, 16))]
    return " ".join(w).capitalize() + "."
def prose(n_par=3):
    return "\n\n".join(" ".join(sentence() for _ in range(4)) + "\n" + " ".join(sentence() for _ in range(3))
                       for _ in range(n_par))
pages, expected = [], []
def bad(text, reason):
    pages.append(text); expected.append((len(pages), reason))
for i in range(120):
    pages.append(prose())
    k = i % 12
    if k == 0: bad("I am here. You are there. We go now. They stay on. It is so.", "gopher_quality:min_words")
    if k == 1: bad("\n".join("\u2022 The %s and the %s of %s." % (rng.choice(vocab), rng.choice(vocab), rng.choice(vocab)) for _ in range(30)), "gopher_quality:bullet_lines")
    if k == 2: bad(" ".join("The #%s is #%s." % (rng.choice(vocab), rng.choice(vocab)) for _ in range(30)), "gopher_quality:hash_word_ratio")
    if k == 3: bad(prose(1) + "\n" + "\n".join(["Click here to read more of the story and that is all."] * 20), "gopher_repetition:dup_line_frac")
    if k == 4: bad(prose(2) + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit, and the rest of it.", "c4:lorem_ipsum")
    if k == 5: bad(prose(2) + "\nThe function is int main() { return 0; } and that is all.", "c4:curly_bracket")
    if k == 6: bad("\n".join(" ".join(rng.choice(vocab) for _ in range(6)) for _ in range(40)), "c4:min_sentences")
    if k == 7: bad(" ".join("%d %d %d the %d." % tuple(rng.randrange(1000, 9999) for _ in range(4)) for _ in range(30)), "gopher_quality:alpha_words")
    if k == 8: bad(prose(3) + "\nRead the next part of the story.\nRead the next part of the story.", "fineweb:dup_line_chars")
with open("web.jsonl", "w") as f:
    for p in pages: f.write(json.dumps({"text": p}) + "\n")
with open("expected.txt", "w") as f:
    for line, reason in expected: f.write("%d %s\n" % (line, reason))
EOF
n_bad=$(wc -l <expected.txt)
"$anvil" data prepare --input web.jsonl --vocab-size 300 --out out --c4 --gopher-quality --gopher-repetition \
  --fineweb --rejected rejected.jsonl 2>log || { cat log; exit 1; }
cat log
/usr/bin/python3 - <<'EOF' && ok "every planted bad page is dropped for its rule, every prose page kept" || bad "rejected log"
import json
got = {}
for l in open("rejected.jsonl"):
    r = json.loads(l); got[r["line"]] = r
want = dict((int(a), b) for a, b in (l.split() for l in open("expected.txt")))
wrong = [(line, reason, got.get(line, {}).get("reason")) for line, reason in want.items() if got.get(line, {}).get("reason") != reason]
extra = sorted(set(got) - set(want))
assert not wrong, wrong[:5]
assert not extra, [(l, got[l]["reason"], got[l]["value"]) for l in extra[:5]]
meta = json.load(open("out/meta.json"))
assert meta["dropped_filters"] == len(want), meta["dropped_filters"]
assert sum(meta["dropped_by_filter"].values()) == len(want), meta["dropped_by_filter"]
assert meta["train"]["documents"] + meta["val"]["documents"] == 120, meta
assert set(meta["quality_filters"]) == {"c4", "gopher_quality", "gopher_repetition", "fineweb"}
print("dropped by rule:", meta["dropped_by_filter"])
EOF
grep -q "filters: $n_bad dropped: " log && ok "the summary lists the drops by rule" || bad "summary"
# a threshold moved: short pages pass when 5 words are enough
"$anvil" data prepare --input web.jsonl --tokenizer out/tokenizer.json --out out2 --gopher-quality \
  --filter-param gopher_quality.min_words=5 --rejected rejected2.jsonl 2>log2 || { cat log2; exit 1; }
grep -q min_words rejected2.jsonl && bad "--filter-param gopher_quality.min_words=5 ignored" ||
  ok "--filter-param moves a threshold (no page dropped for min_words at 5)"
grep -q '"min_words": 5' out2/meta.json && ok "meta.json records the thresholds used" || bad "meta.json thresholds"
# bad options
for args in "--filter-param gopher_quality.min_words=x|the value must be a number" \
  "--filter-param c4.min_words=3|the filter \"c4\" is not chosen" \
  "--filter-param gopher_quality.words=3|has no parameter \"words\"" \
  "--filter-param nodot|expected FILTER.PARAM=VALUE"; do
  opt=${args%%|*} needle=${args#*|} rc=0
  "$anvil" data prepare --input web.jsonl --tokenizer out/tokenizer.json --out out3 --gopher-quality $opt 2>err || rc=$?
  if [ $rc = 1 ] && grep -q "^anvil: .*$needle" err; then ok "bad option $opt: $(cat err)"; else bad "bad option $opt: exit $rc $(cat err)"; fi
done
# ---- language, blocklist and personal data ----
/usr/bin/python3 - <<'EOF'
import json
en = "The river carries the stones down to the harbour, and the people of the village watch it with care every day. "
fr = "La rivière porte les pierres jusqu'au port, et les gens du village la regardent avec soin chaque jour. "
de = "Der Fluss trägt die Steine hinunter zum Hafen, und die Leute im Dorf sehen ihm jeden Tag aufmerksam zu. "
docs = []
for i in range(30):
    docs.append(en * 3 + "Write to reader%d@news.example.org or visit 8.8.%d.8 today; the printer is at 192.168.1.%d and 10.0.0.%d. Call +1 415-555-%04d." % (i, i, i, i, 2000 + i))
    if i % 5 == 0: docs.append(fr * 3)
    if i % 6 == 0: docs.append(de * 3)
    if i % 7 == 0: docs.append(en * 2 + "It mentions the Forbidden Phrase once.")
with open("mixed.jsonl", "w") as f:
    for d in docs: f.write(json.dumps({"text": d}) + "\n")
open("block.txt", "w").write("forbidden phrase\n")
EOF
"$anvil" data prepare --input mixed.jsonl --tokenizer out/tokenizer.json --out mixed --lang en,de --blocklist block.txt \
  --pii --pii-phones --rejected mixed.rejected.jsonl --val-fraction 0 2>log3 || { cat log3; exit 1; }
cat log3
# the shards' text: every token decoded
/usr/bin/python3 -c '
import struct, sys, glob
for p in sorted(glob.glob("mixed/train_*.bin")):
    b = open(p, "rb").read()
    magic, version, count = struct.unpack("<3i", b[:12])
    fmt = "<%d%s" % (count, "H" if version == 1 else "I")
    print(" ".join(map(str, struct.unpack(fmt, b[1024:1024 + count * (2 if version == 1 else 4)]))))
' | "$anvil" tokenizer decode --tokenizer out/tokenizer.json >mixed.txt
grep -q "news.example.org" mixed.txt && bad "an e-mail address is left in the shards" || ok "no planted e-mail address in the shards"
grep -Eq "8\.8\.[0-9]+\.8" mixed.txt && bad "a public IP address is left in the shards" || ok "no planted public IP address in the shards"
[ "$(grep -o "192\.168\.1\.[0-9]*" mixed.txt | wc -l)" = 30 ] && [ "$(grep -o "10\.0\.0\.[0-9]*" mixed.txt | wc -l)" = 30 ] &&
  ok "the 60 private IP addresses are kept" || bad "private IP addresses: $(grep -c 192.168 mixed.txt)"
grep -q "415-555" mixed.txt && bad "a phone number is left" || ok "no planted phone number in the shards"
grep -q "replaced: 30 e-mail addresses, 30 IP addresses, 30 phone numbers" log3 && ok "the summary counts the replacements" ||
  bad "replacement counts"
/usr/bin/python3 - <<'EOF' && ok "French pages dropped as language:fr, German kept, blocklisted pages dropped" || bad "language and blocklist drops"
import json
reasons = {}
for l in open("mixed.rejected.jsonl"):
    r = json.loads(l); reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
assert reasons == {"language:fr": 6, "blocklist": 5}, reasons
meta = json.load(open("mixed/meta.json"))
assert meta["pii_replaced"] == {"emails": 30, "ips": 30, "phones": 30}, meta["pii_replaced"]
assert meta["train"]["documents"] == 30 + 5, meta["train"]
EOF
# the filters run on all threads over batches of documents: 1 and 3 threads give the same output
same() { for f in "$1"/* "$1.rejected.jsonl"; do cmp -s "$f" "${f/$1/$2}" || { echo "${f/$1/$2} differs"; return 1; }; done; }
for t in 1 3; do
  "$anvil" data prepare --input web.jsonl mixed.jsonl --vocab-size 300 --out "t$t" --c4 --gopher-quality \
    --gopher-repetition --fineweb --lang en,de --blocklist block.txt --pii --pii-phones --dedup docs lines \
    --rejected "t$t.rejected.jsonl" --threads $t 2>/dev/null || bad "every filter on $t threads"
done
sed -i '/"command"/d' t1/meta.json t3/meta.json
same t1 t3 && ok "every filter on 1 and 3 threads: the same shards, meta.json and rejected log" || bad "1 vs 3 threads"
echo "e2e_quality_filters: $passed passed, $failed failed"
[ "$failed" = 0 ]
