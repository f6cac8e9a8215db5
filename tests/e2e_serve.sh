#!/usr/bin/env bash
# End to end: `anvil serve` on a tiny model trained here, on a free loopback port, checked with curl
# (health, models, completions, chat, SSE streaming, stop strings, seeds, auth, malformed and huge
# requests, slow clients, a client that hangs up mid-stream), with the official OpenAI Node client
# (a completion, a chat, a streamed chat), a load test (200 requests from 8 concurrent clients whose
# greedy answers must equal `anvil sample --temperature 0`), then SIGTERM with a request in flight:
# the request completes and the server exits 0. Skips (77) when anvil was built without libmicrohttpd.
set -euo pipefail
anvil=${ANVIL:-${ANVIL_BUILD_DIR:-build}/anvil}
source "$(dirname "$0")/lib.sh" # e2e_model_json
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill -9 "$server" 2>/dev/null; exec 3>&- 4>&- 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
fail() { echo "FAIL: $*"; [ -f serve.err ] && tail -20 serve.err; exit 1; }
ok() { echo "ok: [$(( $(date +%s) - start ))s] $*"; }
start=$(date +%s)

probe=$("$anvil" serve --run "$work" 2>&1 || true)
if [[ "$probe" == *"without an HTTP library"* ]]; then
  echo "SKIP: anvil was built without libmicrohttpd (apt-get install libmicrohttpd-dev, then rebuild)"
  exit 77
fi
NODE_PATH=$("$src/tools/serve_check/install.sh") || fail "cannot install the openai npm package (tools/serve_check)"
export NODE_PATH

# ---- a tiny model: pseudo-English from a small grammar (no corpus text is committed) ----
awk -v n=6000 'function rnd() { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 }
function pick(w,   k, a) { k = split(w, a, " "); return a[int(rnd() * k) + 1] }
BEGIN { s = 7
  for (i = 0; i < n; i++) {
    line = pick("The A My Our") " " pick("farmer baker sailor teacher painter") " " pick("likes paints sells finds") " " \
           pick("the a my") " " pick("blue old new tall") " " pick("boat house tree lamp chair") "."
    print line; if (rnd() < 0.02) print ""
  } }' > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.15 --split-blank-lines 1 --out data \
  --threads 1 >/dev/null 2>&1 || fail "data prepare"
e2e_model_json 300 128 > model.json
"$anvil" train --data data --config model.json --batch 8 --seq 128 --steps 80 --lr 3e-3 --warmup 10 \
  --eval-every 1000 --save-every 1000 --threads 1 --out tiny >train.log 2>&1 || { cat train.log; fail "train"; }
ok "tiny model trained in $(( $(date +%s) - start )) s"

# ---- expected greedy outputs from anvil sample ----
prompts=("The farmer" "A sailor likes" "My teacher paints the" "Our baker" "The painter sells a blue" "A" "My old"
         "The tall boat")
max=24
for i in "${!prompts[@]}"; do
  "$anvil" sample --run tiny --prompt "${prompts[$i]}" --temperature 0 --max-tokens $max --threads 1 \
    >"expected.$i" 2>/dev/null || fail "sample"
done
node -e '
  const fs = require("fs"), prompts = JSON.parse(process.argv[1]);
  const items = prompts.map((p, i) => ({ prompt: p, expected: fs.readFileSync(`expected.${i}`, "utf8") }));
  fs.writeFileSync("cases.json", JSON.stringify({ max_tokens: Number(process.argv[2]), items }));
' "$(printf '%s\n' "${prompts[@]}" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trimEnd().split("\n"))))')" $max

# ---- the server ----
key=test-key-123
"$anvil" serve --run tiny --host 127.0.0.1 --port 0 --api-key $key --max-concurrency 2 --threads 2 --timeout 2 \
  --max-tokens-limit 20000 --drain 60 >serve.out 2>serve.err &
server=$!
for _ in $(seq 100); do grep -q "listening on" serve.err && break; kill -0 $server 2>/dev/null || break; sleep 0.1; done
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' serve.err)
[ -n "$port" ] || fail "server did not start"
base=http://127.0.0.1:$port
ok "server listening on port $port"
auth=(-H "Authorization: Bearer $key")

# req METHOD PATH [curl args...]: body to resp, prints the status
req() { local m=$1 p=$2; shift 2; curl -s -o resp -w '%{http_code}' -X "$m" "${auth[@]}" "$@" "$base$p"; }
post() { req POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }
# field EXPR: a value of the JSON in resp (JavaScript expression on o)
field() { node -e 'const o = JSON.parse(require("fs").readFileSync("resp", "utf8"));
  const v = eval(process.argv[1]); process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));' "$1"; }
expect_error() { # STATUS PARAM WHAT: an OpenAI error {"error": {"message", "type", "param", "code"}}
  local e
  e=$(field '[typeof o.error.message, o.error.type, o.error.param ?? "", o.error.code ?? "", o.error.message].join("|")') ||
    fail "$3: not JSON: $(head -c 200 resp)"
  [ "$s" = "$1" ] || fail "$3: status $s, expected $1: $(cat resp)"
  IFS='|' read -r mt type param code msg <<<"$e"
  [ "$mt" = string ] && [ -n "$type" ] || fail "$3: not an OpenAI error: $(cat resp)"
  [ -z "$2" ] || [ "$param" = "$2" ] || fail "$3: param '$param', expected '$2'"
  ok "$3 -> $s $type${code:+ ($code)}: $msg"
}

s=$(req GET /health); [ "$s" = 200 ] && [ "$(field o.status)" = ok ] || fail "health: $s"
s=$(req GET /v1/models); [ "$s" = 200 ] && [ "$(field 'o.data[0].id')" = tiny ] || fail "models: $s $(cat resp)"
ok "health and models (id tiny)"

# ---- auth ----
s=$(curl -s -o resp -w '%{http_code}' "$base/v1/models"); expect_error 401 "" "no API key"
s=$(curl -s -o resp -w '%{http_code}' -H "Authorization: Bearer wrong" -d '{"prompt":"a"}' "$base/v1/completions")
expect_error 401 "" "wrong API key"

# ---- completions: greedy equals anvil sample ----
body() { node -e 'console.log(JSON.stringify(Object.assign({prompt: process.argv[1]}, JSON.parse(process.argv[2]))))' "$@"; }
s=$(post /v1/completions "$(body "${prompts[0]}" "{\"max_tokens\": $max, \"temperature\": 0}")")
[ "$s" = 200 ] || fail "completion: $s $(cat resp)"
[ "$(field o.choices[0].text)" = "$(cat expected.0)" ] || fail "completion text '$(field o.choices[0].text)' != sample's '$(cat expected.0)'"
[ "$(field 'o.object + " " + o.choices[0].finish_reason + " " + (o.usage.prompt_tokens + o.usage.completion_tokens === o.usage.total_tokens) + " " + o.id.startsWith("cmpl-")')" = "text_completion length true true" ] ||
  fail "completion fields: $(cat resp)"
ok "completion equals anvil sample --temperature 0: '$(cat expected.0)'"
"$anvil" sample --run tiny --prompt "${prompts[1]}" --temperature 0 --max-tokens 300 --threads 1 >expected.long 2>/dev/null
s=$(post /v1/completions "$(body "${prompts[1]}" '{"max_tokens": 300, "temperature": 0}')")
[ "$(field o.choices[0].text)" = "$(cat expected.long)" ] || fail "300-token completion differs from anvil sample's"
ok "300 tokens (past the 128-token block: the window slides) equal anvil sample's"
s=$(post /v1/completions "$(body "${prompts[0]}" "{\"max_tokens\": 3, \"temperature\": 0, \"echo\": true}")")
[[ "$(field o.choices[0].text)" == "${prompts[0]}"* ]] || fail "echo: $(cat resp)"
s=$(post /v1/completions '{"prompt": [0, 1, 2], "max_tokens": 2, "temperature": 0}')
[ "$s" = 200 ] && [ "$(field o.usage.prompt_tokens)" = 3 ] || fail "token-id prompt: $s $(cat resp)"
ok "echo and token-id prompts"

# stop string: cut the greedy text at a piece of it that spans tokens
exp0=$(cat expected.0); stop=${exp0:5:4}; before=${exp0%%"$stop"*}
s=$(post /v1/completions "$(body "${prompts[0]}" "{\"max_tokens\": $max, \"temperature\": 0, \"stop\": [\"zzz\", $(node -e 'console.log(JSON.stringify(process.argv[1]))' "$stop")]}")")
[ "$(field o.choices[0].text)" = "$before" ] && [ "$(field o.choices[0].finish_reason)" = stop ] ||
  fail "stop '$stop': got '$(field o.choices[0].text)' ($(field o.choices[0].finish_reason)), expected '$before'"
ok "stop string '$stop' cuts the text to '$before' (finish_reason stop)"

# seeds: same seed, same text
seeded='{"prompt": "The", "max_tokens": 20, "temperature": 1.0, "top_k": 50, "top_p": 0.95, "min_p": 0.01, "repetition_penalty": 1.1, "seed": 1234}'
post /v1/completions "$seeded" >/dev/null; a=$(field o.choices[0].text)
post /v1/completions "$seeded" >/dev/null; b=$(field o.choices[0].text)
[ -n "$a" ] && [ "$a" = "$b" ] || fail "seeded sampling is not reproducible: '$a' vs '$b'"
ok "seed 1234 reproduces '$a'"

# ---- chat ----
chat='{"model": "tiny", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who likes boats?"}], "max_tokens": 16, "temperature": 0}'
s=$(post /v1/chat/completions "$chat"); [ "$s" = 200 ] || fail "chat: $s $(cat resp)"
[ "$(field 'o.object + " " + o.choices[0].message.role + " " + typeof o.choices[0].message.content')" = "chat.completion assistant string" ] ||
  fail "chat fields: $(cat resp)"
reply=$(field o.choices[0].message.content)
ok "chat reply: '$reply' ($(field o.choices[0].finish_reason))"

# ---- streaming: SSE framing, [DONE], same text as without stream ----
sse_text() { node -e '
  const b = require("fs").readFileSync("resp", "utf8"), chat = process.argv[1] === "chat";
  if (!b.endsWith("\n\n")) throw new Error("no blank line at the end");
  const ev = b.slice(0, -2).split("\n\n");
  if (ev.pop() !== "data: [DONE]") throw new Error("no data: [DONE] at the end");
  let t = "", fin = null;
  for (const e of ev) {
    if (!e.startsWith("data: ") || e.includes("\n")) throw new Error("bad event " + JSON.stringify(e));
    const o = JSON.parse(e.slice(6)), c = o.choices[0];
    if (o.object !== (chat ? "chat.completion.chunk" : "text_completion")) throw new Error("bad object " + o.object);
    t += chat ? (c.delta.content ?? "") : c.text; fin = c.finish_reason ?? fin;
  }
  process.stdout.write(ev.length + " " + fin + " " + t);' "$1"; }
s=$(req POST /v1/completions -N --data-binary "$(body "${prompts[0]}" "{\"max_tokens\": $max, \"temperature\": 0, \"stream\": true}")")
[ "$s" = 200 ] || fail "stream: $s"
out=$(sse_text completion) || fail "completion stream framing: $(head -c 400 resp)"
[ "${out#* length }" = "$(cat expected.0)" ] || fail "streamed text '${out#* length }' != '$(cat expected.0)'"
ok "streamed completion: ${out%% *} events + [DONE], text equals the greedy one"
s=$(req POST /v1/chat/completions -N --data-binary "${chat%\}}, \"stream\": true}")
out=$(sse_text chat) || fail "chat stream framing: $(head -c 400 resp)"
[ "${out#* * }" = "$reply" ] || fail "streamed chat '${out#* * }' != '$reply'"
ok "streamed chat: ${out%% *} events + [DONE], same reply"

# ---- malformed requests: 4xx with an OpenAI error, the server keeps serving ----
s=$(post /v1/completions '{"prompt": "a", "max_tokens": 2'); expect_error 400 "" "truncated JSON"
s=$(post /v1/completions 'not json at all'); expect_error 400 "" "not JSON"
s=$(post /v1/completions '[1, 2]'); expect_error 400 "" "JSON array body"
s=$(post /v1/completions ''); expect_error 400 "" "empty body"
s=$(post /v1/completions '{"max_tokens": 2}'); expect_error 400 prompt "missing prompt"
s=$(post /v1/completions '{"prompt": 5}'); expect_error 400 prompt "prompt of the wrong type"
s=$(post /v1/completions '{"prompt": "a", "max_tokens": "ten"}'); expect_error 400 max_tokens "max_tokens a string"
s=$(post /v1/completions '{"prompt": "a", "max_tokens": 2.5}'); expect_error 400 max_tokens "max_tokens not an integer"
s=$(post /v1/completions '{"prompt": "a", "max_tokens": 20001}'); expect_error 400 max_tokens "max_tokens over the limit"
s=$(post /v1/completions '{"prompt": "a", "temperature": "hot"}'); expect_error 400 temperature "temperature a string"
s=$(post /v1/completions '{"prompt": "a", "temperature": -1}'); expect_error 400 temperature "negative temperature"
s=$(post /v1/completions '{"prompt": "a", "stop": [1]}'); expect_error 400 stop "stop not strings"
s=$(post /v1/completions '{"prompt": "a", "stream": "yes"}'); expect_error 400 stream "stream not a boolean"
s=$(post /v1/completions '{"prompt": "a", "n": 2}'); expect_error 400 n "n = 2"
s=$(post /v1/completions '{"prompt": ["a", "b"]}'); expect_error 400 prompt "two prompts"
s=$(post /v1/completions '{"prompt": [1, 99999]}'); expect_error 400 prompt "token id outside the vocabulary"
s=$(post /v1/completions "{\"prompt\": \"a\", \"x\": $(printf '[%.0s' $(seq 300))$(printf ']%.0s' $(seq 300))}")
expect_error 400 "" "JSON nested 300 deep"
s=$(post /v1/chat/completions '{"messages": []}'); expect_error 400 messages "no messages"
s=$(post /v1/chat/completions '{"messages": [{"role": "wizard", "content": "hi"}]}'); expect_error 400 messages "unknown role"
s=$(post /v1/completions "$(body "$(printf 'the blue boat %.0s' $(seq 40))" '{}')"); expect_error 400 prompt "prompt longer than the context"
[ "$code" = context_length_exceeded ] || fail "long prompt: code '$code'"
head -c 2000000 /dev/zero | tr '\0' ' ' > huge.json
s=$(req POST /v1/completions -H 'Content-Type: application/json' --data-binary @huge.json); expect_error 413 "" "2 MB body"
s=$(req POST /v1/completions -H 'Transfer-Encoding: chunked' --data-binary @huge.json); expect_error 413 "" "2 MB chunked body"
s=$(req GET /v1/completions); expect_error 405 "" "GET on completions"
s=$(req GET /v1/nothing); expect_error 404 "" "unknown URL"
s=$(post /v1/completions '{"prompt": "The", "max_tokens": 2, "temperature": 0, "frobnicate": {"x": [1, null]}, "user": "u", "logit_bias": null}')
[ "$s" = 200 ] || fail "unknown fields: $s $(cat resp)"
ok "unknown fields are ignored (200)"

# ---- slow clients: half a request, or nothing at all, is dropped after --timeout 2 s ----
exec 3<>/dev/tcp/127.0.0.1/$port
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{"pro' $key >&3
exec 4<>/dev/tcp/127.0.0.1/$port
t0=$(date +%s.%N)
s=$(req GET /health); [ "$s" = 200 ] || fail "health while two clients stall: $s"
timeout 10 cat <&3 >/dev/null || fail "half-sent request was not dropped within 10 s"
timeout 10 cat <&4 >/dev/null || fail "silent connection was not dropped within 10 s"
exec 3>&- 4>&-
ok "stalled connections dropped after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s, served meanwhile"

# ---- clients that hang up: their generations are cancelled at the next token ----
long='{"prompt": "The", "max_tokens": 20000, "temperature": 0'
curl -s -N -m 0.5 "${auth[@]}" -d "$long, \"stream\": true}" "$base/v1/completions" >/dev/null || true
curl -s -m 0.5 "${auth[@]}" -d "$long}" "$base/v1/completions" >/dev/null || true
for _ in $(seq 50); do [ "$(grep -c 'cancelled after' serve.err)" = 2 ] && break; sleep 0.1; done
[ "$(grep -c 'cancelled after' serve.err)" = 2 ] || fail "hung-up generations were not cancelled"
s=$(req GET /health); [ "$s" = 200 ] || fail "health after hang-ups: $s"
ok "hung-up clients (streamed and not): generations cancelled: $(grep -o 'cancelled after [0-9]* tokens' serve.err | tr '\n' ' ')"

# ---- the official OpenAI Node client ----
node "$src/tools/serve_check/client.cjs" "$base/v1" $key tiny cases.json || fail "openai client"

# ---- load: 200 requests from 8 concurrent clients ----
node "$src/tools/serve_check/load.cjs" "$base/v1" $key tiny cases.json 200 8 || fail "load test"

# ---- bad command lines: one clear line, non-zero exit ----
bad_cli() { # EXPECTED-MESSAGE ARGS...
  local want=$1 rc=0; shift
  "$anvil" serve "$@" >cli.out 2>&1 || rc=$?
  [ $rc != 0 ] && grep -q "$want" cli.out || fail "anvil serve $*: exit $rc, $(cat cli.out)"
  ok "anvil serve $* -> $(head -1 cli.out)"
}
bad_cli "does not exist" --run "$work/missing"
bad_cli "port" --run tiny --port 70000
bad_cli "not an IPv4 or IPv6 address" --run tiny --host not-an-address --port 0
bad_cli "cannot listen" --run tiny --port "$port"
bad_cli "unknown option" --run tiny --frobnicate

# ---- SIGTERM with a request in flight: it completes, the server exits 0 ----
curl -s -o inflight.json "${auth[@]}" -d "$long}" "$base/v1/completions" &
client=$!
sleep 0.3
kill -TERM $server
wait $client || fail "in-flight request failed during shutdown"
rc=0; wait $server || rc=$?
server=
[ $rc = 0 ] || fail "server exited $rc after SIGTERM"
grep -q "stopping: 1 requests in flight" serve.err || fail "the request was not in flight at SIGTERM: $(grep stopping serve.err)"
cp inflight.json resp
[ "$(field o.usage.completion_tokens)" = 20000 ] || fail "in-flight request was cut: $(head -c 300 inflight.json)"
grep -q "anvil serve: stopped" serve.err || fail "no clean stop message"
! curl -s -m 1 "$base/health" >/dev/null || fail "server still answers after exit"
ok "SIGTERM: the request in flight finished (20000 tokens), exit 0"
echo "e2e_serve: all checks passed in $(( $(date +%s) - start )) s"
