#!/usr/bin/env bash
# BPE training speed and memory: `anvil tokenizer train` vs sentencepiece's spm_train (Debian
# package sentencepiece) on the same ~21.5 MB text: the State of the Union corpus
# (scripts/corpus.sh sotu) split into one sentence per line (spm_train reads one sentence per line
# and drops lines over 4192 bytes; no sentence here is that long), written out twice.
# Prints wall seconds and peak RSS (/usr/bin/time -v) for each tool and the ratios.
# Usage: bench/train_vs_spm.sh [vocab sizes...]   (default: 8000 32000)
# ANVIL (default build/anvil) picks the binary, THREADS (default: all cores) anvil's --threads.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anvil=${ANVIL:-$root/build/anvil}
threads=${THREADS:-$(nproc)}
sizes=("$@")
((${#sizes[@]})) || sizes=(8000 32000)
for tool in "$anvil" spm_train /usr/bin/time /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/install-deps.sh bench; make build)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sotu=$("$root/scripts/corpus.sh" sotu)
/usr/bin/python3 - "$sotu" "$work/corpus.txt" <<'PY'
import glob, re, sys
lines = []
for path in sorted(glob.glob(sys.argv[1] + "/*.txt")):
    text = open(path, encoding="utf-8").read()
    lines += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
body = "\n".join(lines) + "\n"
open(sys.argv[2], "w", encoding="utf-8").write(body * 2)
PY
mb=$(awk -v b="$(stat -c %s "$work/corpus.txt")" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "corpus: SOTU (233 speeches) one sentence per line, twice: $mb MB; anvil --threads $threads; $(nproc) cores"

# Runs a command under /usr/bin/time -v; prints "seconds peak_MiB".
measure() {
  local log=$1; shift
  /usr/bin/time -v "$@" >"$log" 2>&1 || { echo "failed: $*" >&2; tail -5 "$log" >&2; exit 1; }
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i] }
              /Maximum resident set size/ { r = $2 / 1024 }
              END { printf "%.2f %.0f\n", s, r }' "$log"
}

printf "\n%-7s | %-16s | %-16s | %-13s\n" vocab "anvil s / MiB" "spm_train s / MiB" "anvil speedup"
printf -- "--------+------------------+-------------------+--------------\n"
for v in "${sizes[@]}"; do
  read -r as ar < <(measure "$work/anvil.log" "$anvil" tokenizer train --input "$work/corpus.txt" --vocab-size "$v" \
    --out "$work/anvil.json" --threads "$threads")
  read -r ss sr < <(measure "$work/spm.log" spm_train --input="$work/corpus.txt" --model_prefix="$work/spm" \
    --model_type=bpe --input_sentence_size=0 --vocab_size="$v")
  ratio=$(awk -v a="$as" -v s="$ss" 'BEGIN { printf "%.1fx", s / (a > 0 ? a : 0.01) }')
  mem=$(awk -v a="$ar" -v s="$sr" 'BEGIN { printf "%.2f", a / s }')
  printf "%-7s | %6s / %-7s | %7s / %-8s | %s (memory %sx of spm)\n" "$v" "$as" "$ar" "$ss" "$sr" "$ratio" "$mem"
done
