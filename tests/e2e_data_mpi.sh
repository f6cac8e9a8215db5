#!/usr/bin/env bash
# anvil data prepare under mpirun: the ranks split the input files, exact, line and near-duplicate
# deduplication are global, and the output equals one process's byte for byte (tokenizer, every shard,
# meta.json, the rejected log), with 2 and 3 ranks, with a tokenizer trained or given, and for a
# single text file (one rank reads nothing). A corrupt file in the last rank's part fails every rank
# with one line naming it, and leaves an earlier good output as it was.
# Skips (77) when anvil is built without MPI or mpirun is missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir

if [[ "$(ldd "$anvil")" != *libmpi* ]]; then echo "SKIP: anvil is built without MPI"; exit 77; fi
command -v mpirun >/dev/null || { echo "SKIP: mpirun is missing (Debian: openmpi-bin)"; exit 77; }
command -v zstd >/dev/null || { echo "SKIP: zstd is missing"; exit 77; }
mpi() { local n=$1; shift; local a=(mpirun -np "$n" --oversubscribe --mca btl self,vader)
  [ "$(id -u)" = 0 ] && a+=(--allow-run-as-root); "${a[@]}" "$@"; }

# Eight files (JSONL, gzip, zstd, text) of English-like documents. Later files hold exact copies and
# near-copies (2 words changed) of documents in the first ones, every document ends with one of a few
# boilerplate lines, some are junk for the quality filters, some carry e-mail addresses.
/usr/bin/python3 - <<'EOF'
import json, random, gzip, os
rng = random.Random(11)
words = ("the of and to in that it was for on are as with his they at be this from have or by one had not but what "
         "all were when we there can an your which their said if do will each about how up out them then she many "
         "some so these would other into has more her two like him see time could no make than first been its who now "
         "people my made over did down only way find use may water long little very after words called just where most "
         "know river stone garden window forest letter machine bright quiet heavy clever young green small old").split()
def sentence():
    s = " ".join(rng.choice(words) for _ in range(rng.randint(8, 16)))
    return s[0].upper() + s[1:] + "."
def doc():
    return " ".join(sentence() for _ in range(rng.randint(15, 25)))
footers = ["Copyright 2024 Example Press. All rights reserved.", "Subscribe to our newsletter for weekly stories.",
           "Share this article with your friends and family."]
os.makedirs("in", exist_ok=True)
originals, files = [], []
for f in range(8):
    docs = []
    for i in range(rng.randint(25, 70)):
        d = doc()
        if rng.random() < 0.15:
            d += "\nWrite to editor%d@example.com for questions about this story." % rng.randint(1, 99)
        if rng.random() < 0.1:
            d = "lorem ipsum dolor sit amet {} {} {}"  # junk: C4 drops it
        d += "\n" + rng.choice(footers)
        docs.append(d)
        if f < 3: originals.append(d)
    if f >= 4:  # copies of the first files' documents, in the later ranks' parts
        for _ in range(6):
            docs.insert(rng.randrange(len(docs) + 1), rng.choice(originals))
        for _ in range(6):
            w = rng.choice(originals).split(" ")
            for _ in range(2):
                w[rng.randrange(len(w) // 2)] = rng.choice(words).upper()
            docs.insert(rng.randrange(len(docs) + 1), " ".join(w))
    files.append(docs)
for f, docs in enumerate(files):
    lines = "".join(json.dumps({"text": d}) + "\n" for d in docs)
    if f == 2:
        with gzip.open("in/f2.jsonl.gz", "wt") as out: out.write(lines)
    elif f == 6:
        with open("in/f6.txt", "w") as out: out.write("\n\n\n".join(docs) + "\n")
    else:
        with open("in/f%d.jsonl" % f, "w") as out: out.write(lines)
EOF
zstd -q --rm in/f5.jsonl
cat > single.txt < <(grammar_corpus 3000 5)
ls in

args=(--input in --vocab-size 400 --dedup docs lines --near-dedup --c4 --pii --val-fraction 0.1 --shard-tokens 4000
      --split-blank-lines 2)
"$anvil" data prepare "${args[@]}" --out one --rejected one.rejected.jsonl --threads 1 2>one.log ||
  { cat one.log; fail "one process"; }
cat one.log
meta() { grep -o "\"$1\": [0-9]*" "$2/meta.json" | grep -o '[0-9]*$'; }
for k in dropped_duplicates dropped_near_duplicates duplicate_lines_removed; do
  [ "$(meta $k one)" -gt 0 ] || fail "the corpus should exercise $k"
done

# same_output A B [rejected-A rejected-B]: every file of A equals B's (meta.json but for the command,
# whose --out differs).
same_output() {
  local a=$1 b=$2 f n=0
  [ "$(cd "$a" && ls | sort)" = "$(cd "$b" && ls | sort)" ] || fail "$b has other files than $a: $(ls "$b")"
  for f in "$a"/*; do
    if [ "${f##*/}" = meta.json ]; then
      diff <(grep -v '"command"' "$f") <(grep -v '"command"' "$b/meta.json") || fail "$b/meta.json differs from $f"
    else
      cmp -s "$f" "$b/${f##*/}" || fail "$b/${f##*/} differs from $f"
    fi
    n=$((n + 1))
  done
  if [ $# -gt 2 ]; then cmp -s "$3" "$4" || fail "$4 differs from $3"; fi
  echo "$b: all $n files byte-identical to $a's${3:+, and the rejected log}"
}

for n in 2 3; do
  mpi "$n" "$anvil" data prepare "${args[@]}" --out "r$n" --rejected "r$n.rejected.jsonl" --threads 1 2>"r$n.log" ||
    { cat "r$n.log"; fail "mpirun -np $n"; }
  grep -q "data prepare over $n ranks" "r$n.log" || { cat "r$n.log"; fail "no line about the $n ranks"; }
  [ "$(grep -c '^prepared' "r$n.log")" = 1 ] || fail "the summary should come from rank 0 only"
  same_output one "r$n" one.rejected.jsonl "r$n.rejected.jsonl"
  ls -A "r$n" | grep -q rank && fail "a rank's temporary file stayed in r$n"
  ls | grep -q 'rejected.jsonl.rank' && fail "a rank's temporary rejected file stayed behind"
done
echo "dropped across ranks: $(meta dropped_duplicates r3) duplicates, $(meta dropped_near_duplicates r3) near-duplicates, $(meta duplicate_lines_removed r3) boilerplate lines"

# a tokenizer given instead of trained
"$anvil" data prepare --input in --tokenizer one/tokenizer.json --dedup --out given1 --threads 1 2>/dev/null ||
  fail "one process, tokenizer given"
mpi 2 "$anvil" data prepare --input in --tokenizer one/tokenizer.json --dedup --out given2 --threads 1 2>given2.log ||
  { cat given2.log; fail "2 ranks, tokenizer given"; }
same_output given1 given2

# one text file: rank 1 reads nothing, and the single document is split as one process splits it
"$anvil" data prepare --input single.txt --vocab-size 300 --out single1 --threads 1 2>/dev/null || fail "single file"
mpi 2 "$anvil" data prepare --input single.txt --vocab-size 300 --out single2 --threads 1 2>single2.log ||
  { cat single2.log; fail "2 ranks, single file"; }
grep -q '"val_from_single_document": true' single2/meta.json || fail "the single document was not split"
same_output single1 single2

# a corrupt zstd file in the last rank's part: every rank fails, the error names it, r2 stays as it was
cp -r r2 r2.before
printf '\x28\xb5\x2f\xfd garbage' > in/z9.jsonl.zst
rc=0; mpi 2 "$anvil" data prepare "${args[@]}" --out r2 --threads 1 2>bad.log || rc=$?
[ "$rc" != 0 ] || fail "a corrupt input did not fail the job"
grep -q 'z9.jsonl.zst' bad.log || { cat bad.log; fail "the error does not name the corrupt file"; }
echo "corrupt input: $(grep -m1 'z9.jsonl.zst' bad.log)"
same_output r2.before r2
ls -A r2 | grep -q rank && fail "a rank's temporary file stayed in r2 after the failure"
echo "PASS"
