#!/usr/bin/env bash
# anvil scale run end to end on a tiny budget: an IsoFLOP ladder of 3 levels x 4 sizes on generated text,
# its fit, plots, a check run and a plan from the fitted law. A ladder killed with SIGKILL part-way and
# run again keeps its finished runs as they were and ends with exactly the points of an uninterrupted
# ladder; SIGINT stops it with a checkpoint and a message; bad budgets and foreign directories are
# refused in one line.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir

grammar_corpus 6000 42 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 2 > /dev/null 2>&1 || fail "data prepare"
args=(scale run --data data --budget-flops 3e11 --seq 32 --batch 4 --sizes 4 --level-ratio 2 --min-steps 5
      --check 2 --threads 1)

# ---- uninterrupted ----
"$anvil" "${args[@]}" --out whole > whole.txt 2> whole.err || fail "scale run: $(tail -3 whole.err)"
runs=$(grep -c '"name"' whole/ladder.json)
[ "$runs" -ge 9 ] || fail "a ladder of 3 levels x 4 sizes has only $runs runs"
for l in 0 1 2; do
  [ "$(grep -c "\"level\": $l" whole/ladder.json)" -ge 3 ] || fail "level $l has fewer than 3 runs"
done
[ "$(wc -l < whole/points.csv)" -eq $((runs + 1)) ] || fail "points.csv does not hold every run"
head -1 whole/points.csv | grep -qx 'params,tokens,loss' || fail "points.csv header"
for key in E A B alpha beta; do grep -q "\"$key\"" whole/fit.json || fail "fit.json has no $key"; done
grep -q '<circle' whole/isoflop.svg && grep -q 'fitted frontier' whole/isoflop.svg || fail "isoflop.svg"
[ "$(grep -c '<circle' whole/prediction.svg)" -ge "$runs" ] || fail "prediction.svg does not show every run"
grep -q '"predicted"' whole/check.json && grep -q 'check at 2x' whole.txt || fail "no check run"
# its longest runs read the data many times: the fit and the check count those tokens at their worth
grep -q 'epochs of the' whole.err || fail "the tiny ladder no longer repeats its data: $(grep note whole.err)"
grep -q '"unique_tokens"' whole/fit.json && grep -q 'tokens worth' whole.txt ||
  fail "the ladder repeated its data, yet the fit is not on what its tokens were worth"
grep -q 'plan from the fitted law' whole.txt && grep -q '^N_opt ' whole.txt && grep -q 'recommended' whole.txt ||
  fail "no plan from the fitted law"
"$anvil" scale fit --points whole/points.csv --resamples 20 > refit.txt || fail "scale fit of points.csv"
# each run is evaluated along the way, and its point is the lowest of its validation losses
lowest() { grep -o '"val_loss":[^,}]*' "$1" | cut -d: -f2 | sort -g | head -1; }
evals=0
for log in whole/runs/c[0-9]*/log.jsonl; do
  low=$(lowest "$log")
  cut -d, -f3 whole/points.csv | awk -v l="$low" 'NR > 1 && ($1 - l) ^ 2 < 1e-14 { found = 1 } END { exit !found }' ||
    fail "$log: its lowest validation loss $low is not in points.csv"
  evals=$((evals + $(grep -c '"val_loss"' "$log")))
done
[ "$evals" -gt $((2 * runs)) ] || fail "the runs were evaluated $evals times in all"
[ "$(lowest whole/runs/check-2x/log.jsonl)" = "$(grep -o '"measured": [^,]*' whole/check.json | cut -d' ' -f2 |
  xargs printf '%.9g')" ] || fail "check.json does not measure the check's lowest validation loss"
grep -q '"final"' whole/check.json || fail "check.json has no final validation loss"
# the check reads its data more often than the ladder's runs of its size did, and says so
grep -q 'the check reads its data .* times, the ladder.s runs of .* at most .*: what repeated tokens are worth at its size is extrapolated' whole.err ||
  fail "no note that the check extrapolates in epochs: $(grep check whole.err)"

# the check trains the ladder's own shape nearest N_opt when one lies within 1.25x of it (a new shape's depth is
# not in the law), and says which
line=$(grep '^check: check-2x' whole.err) || fail "no check line"
n_opt=$(sed -nE 's/.*N_opt ([0-9.e+]+):.*/\1/p' <<<"$line")
check_shape=$(grep -oE '"n_(layer|embd)": [0-9]+' whole/configs/check-2x.json | tr -d '\n ')
near=$(cut -d, -f1 whole/points.csv | awk -v n="$n_opt" 'NR > 1 && $1 <= 1.25 * n && $1 * 1.25 >= n { print $1 }')
if [ -n "$near" ]; then
  grep -q 'the shape of ladder run c' <<<"$line" || fail "ladder runs of $near parameters lie near N_opt $n_opt: $line"
  found=0
  for c in whole/configs/c*.json; do
    [ "$(grep -oE '"n_(layer|embd)": [0-9]+' "$c" | tr -d '\n ')" = "$check_shape" ] && found=1
  done
  [ "$found" = 1 ] || fail "the check's shape $check_shape is no ladder run's"
else
  grep -q 'a shape no ladder run trained' <<<"$line" || fail "no ladder run lies near N_opt $n_opt: $line"
fi

# ---- killed part-way, then continued ----
"$anvil" "${args[@]}" --out killed > /dev/null 2> killed.err &
bg=$!
for _ in $(seq 1 600); do
  [ -f killed/points.csv ] && [ "$(wc -l < killed/points.csv)" -ge 4 ] && break
  sleep 0.05
done
kill -9 "$bg" 2> /dev/null || fail "the ladder finished before it could be killed"
wait "$bg" 2> /dev/null || true
bg=
first=$(md5sum < killed/runs/c0-n0/log.jsonl)
"$anvil" "${args[@]}" --out killed > killed.txt 2> killed2.err || fail "continuing: $(tail -3 killed2.err)"
grep -q 'continuing its ladder' killed2.err || fail "the second run does not continue the ladder"
[ "$(md5sum < killed/runs/c0-n0/log.jsonl)" = "$first" ] || fail "a finished run was trained again"
cmp -s whole/points.csv killed/points.csv || fail "the continued ladder differs: $(diff whole/points.csv killed/points.csv)"
cmp -s whole/fit.json killed/fit.json || fail "the continued ladder's fit differs"

# ---- SIGINT: checkpoint, message, status 130 ----
"$anvil" "${args[@]}" --out stopped > /dev/null 2> stopped.err &
bg=$!
for _ in $(seq 1 600); do [ -f stopped/runs/c0-n1/log.jsonl ] && break; sleep 0.05; done
kill -INT "$bg"
status=0
wait "$bg" || status=$?
bg=
[ "$status" -eq 130 ] || fail "SIGINT: status $status, want 130"
grep -q 'run the same command to continue' stopped.err || fail "SIGINT: no message: $(tail -2 stopped.err)"

# ---- bad input ----
expect_error() { # expect_error PATTERN COMMAND...
  local pattern=$1
  shift
  if "$@" > out.txt 2> err.txt; then fail "$* succeeded"; fi
  [ "$(grep -c '^anvil: ' err.txt)" -eq 1 ] || fail "$*: not one error line: $(cat err.txt)"
  grep -q -- "$pattern" err.txt || fail "$*: '$(cat err.txt)' does not say '$pattern'"
}
expect_error 'budget too small' "$anvil" scale run --data data --budget-flops 1e8 --out small
expect_error 'give one of --budget-hours or --budget-flops' "$anvil" scale run --data data --out neither
expect_error 'needs --data' "$anvil" scale run --budget-flops 1e12 --out nodata
mkdir foreign && echo mine > foreign/notes.txt
expect_error 'holds files but no anvil run' "$anvil" "${args[@]}" --out foreign
[ "$(cat foreign/notes.txt)" = mine ] || fail "a foreign directory was changed"
echo "e2e_scale_run: ok"
