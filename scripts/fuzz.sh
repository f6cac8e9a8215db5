#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang + ASan/UBSan and runs each one for a
# bounded time, seeded from tests/fuzz/corpus/<target>/ when present. Fails on any crash or leak.
# FUZZ_SECONDS (default 20) sets the time per target. FUZZ_SEED (default 1) fixes libFuzzer's random
# seed, so that `make test` explores the same inputs on every run and a finding reproduces; FUZZ_SEED=0
# draws a new seed each time, for longer hunts (e.g. FUZZ_SECONDS=600 FUZZ_SEED=0 scripts/fuzz.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${FUZZ_SECONDS:-20}
seed=${FUZZ_SEED:-1}
build="$root/build-fuzz"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DANVIL_FUZZ=ON \
  -DANVIL_SANITIZE=ON >/dev/null
targets=$(cd "$root/tests/fuzz" 2>/dev/null && ls fuzz_*.c 2>/dev/null | sed 's/\.c$//' || true)
[ -n "$targets" ] || { echo "fuzz: no targets"; exit 0; }
cmake --build "$build" -j "$(nproc)" --target $targets >/dev/null
passed=0 failed=0
for t in $targets; do
  work=$(mktemp -d)
  seeds=()
  [ -d "$root/tests/fuzz/corpus/$t" ] && seeds=("$root/tests/fuzz/corpus/$t")
  if (cd "$work" && "$build/$t" -seed="$seed" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=0 "$work" "${seeds[@]}" >"$work/log" 2>&1); then
    runs=$(grep -o 'DONE.*' "$work/log" | tail -1 || true)
    echo "fuzz $t: ok for ${secs}s ${runs}"
    passed=$((passed + 1))
  else
    echo "fuzz $t: FAILED"; tail -40 "$work/log"
    failed=$((failed + 1))
  fi
  rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
