#!/usr/bin/env bash
# anvil dashboard in real Chromium (Debian's, headless): two tiny runs (one with samples, one with a saved
# evaluation) under a folder; the rendered page names both runs, holds the five charts, the evaluation
# and a sample; one run then trains further while the dashboard runs, and the page shows its new step; a
# screenshot is taken and its size checked; the API key is enforced. Skips (77) without libmicrohttpd or
# Chromium.
set -eu
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)
e2e_workdir
if "$anvil" dashboard --runs "$work/none" 2>&1 | grep -q "without an HTTP library"; then
  echo "SKIP: anvil was built without libmicrohttpd"
  exit 77
fi
browser=$(command -v chromium || true)
[ -n "$browser" ] || { echo "SKIP: no chromium (apt-get install chromium)"; exit 77; }

grammar_corpus 3000 5 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --split-blank-lines 1 --val-fraction 0.1 --out data \
  --threads 1 > /dev/null 2>&1 || fail "data prepare"
e2e_model_json 300 64 > model.json
mkdir runs
"$anvil" train --data data --config model.json --out runs/alpha --batch 4 --seq 64 --steps 30 --eval-every 10 \
  --sample-prompt "The small cat" --sample-tokens 12 --threads 1 > alpha.log 2>&1 || fail "train alpha: $(cat alpha.log)"
grep -q '"sample":' runs/alpha/log.jsonl || fail "no sample in alpha's log"
grep -q 'sample: ' alpha.log || fail "train did not print its samples"
"$anvil" train --data data --config model.json --out runs/group/beta --batch 4 --seq 64 --steps 20 --eval-every 10 \
  --threads 1 > beta.log 2>&1 || fail "train beta: $(cat beta.log)"
printf 'The cat.\n' > t.txt
"$anvil" eval --run runs/group/beta --task text --data t.txt > /dev/null 2>&1 || fail "eval"

key=k3y
"$anvil" dashboard --runs runs --port 0 --api-key $key 2> dash.err &
bg=$!
for _ in $(seq 100); do grep -q "dashboard of" dash.err && break; sleep 0.1; done
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' dash.err)
[ -n "$port" ] || fail "the dashboard did not start: $(cat dash.err)"
url="http://127.0.0.1:$port/?key=$key"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/runs")" = 401 ] || fail "no key: not 401"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/runs")" = 200 ] ||
  fail "Bearer key refused"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/log?run=../data&key=$key")" = 404 ] ||
  fail "a path outside the runs was served"

render() { # DOM after the page's first refreshes
  timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$work/profile" \
    --virtual-time-budget=5000 --dump-dom "$url" 2> /dev/null
}
render > dom1.html
[ -n "${DASHBOARD_DEBUG:-}" ] && cp dom1.html "$DASHBOARD_DEBUG"
grep -q 'data-run="alpha"' dom1.html && grep -q 'data-run="group/beta"' dom1.html || fail "the page does not name both runs"
[ "$(grep -o '<svg class="chart" data-title="[a-zA-Z]' dom1.html | wc -l)" = 5 ] || fail "not the five charts"
grep -q '<polyline' dom1.html || fail "no curve drawn"
grep -q '<tr class="eval"><td class="text">group/beta</td><td class="text">text</td>' dom1.html || fail "the eval is not shown"
grep -q 'class="sample"' dom1.html && grep -q 'alpha, step 30' dom1.html || fail "no sample shown"
grep -q '<td class="step">30 / 30</td>' dom1.html || fail "alpha's step is not 30 / 30"

# alpha trains on while the dashboard runs: the page shows its new step.
"$anvil" train --out runs/alpha --resume --steps 40 --threads 1 > resume.log 2>&1 || fail "resume: $(cat resume.log)"
render > dom2.html
grep -q '<td class="step">40 / 40</td>' dom2.html || fail "the page does not show alpha's new step 40"

timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$work/profile" \
  --virtual-time-budget=5000 --window-size=1280,1600 --screenshot="$work/shot.png" "$url" > /dev/null 2>&1 || true
size=$(stat -c %s shot.png 2> /dev/null || echo 0)
[ "$size" -gt 20000 ] || fail "screenshot of $size bytes"
[ -n "${DASHBOARD_SHOT:-}" ] && cp shot.png "$DASHBOARD_SHOT"
kill "$bg"
wait "$bg" 2> /dev/null || true
bg=
echo "e2e_dashboard: ok (screenshot $size bytes)"
