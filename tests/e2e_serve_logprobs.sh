#!/usr/bin/env bash
# Log-probabilities over HTTP, as evaluation harnesses need them: `anvil serve` on the GPT-2 and Llama
# models of tests/golden/eval answers lm-evaluation-harness's local-completions request (echo, logprobs,
# token ids) and the npm openai client with the log-softmax that tools/eval_reference.py computed in
# PyTorch, within 1e-4 (tools/serve_check/logprobs.cjs). Skips (77) without libmicrohttpd.
set -eu
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)
e2e_workdir
if "$anvil" serve --run . 2>&1 | grep -q "without an HTTP library"; then
  echo "SKIP: anvil was built without libmicrohttpd"
  exit 77
fi
NODE_PATH=$("$src/tools/serve_check/install.sh") || fail "cannot install the openai npm package (tools/serve_check)"
export NODE_PATH
for arch in gpt2 llama; do
  "$anvil" import --from hf "$src/tests/golden/eval/$arch" --out "$arch" > /dev/null || fail "import $arch"
  "$anvil" serve --run "$arch" --host 127.0.0.1 --port 0 --threads 1 > serve.out 2> serve.err &
  bg=$!
  for _ in $(seq 100); do grep -q "listening on" serve.err && break; sleep 0.1; done
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' serve.err)
  [ -n "$port" ] || fail "$arch: the server did not start: $(cat serve.err)"
  node "$src/tools/serve_check/logprobs.cjs" "http://127.0.0.1:$port/v1" "$arch" \
    "$src/tests/golden/eval/$arch.logprobs.expected" || fail "$arch: log-probabilities over HTTP"
  kill "$bg"
  wait "$bg" 2>/dev/null || true
  bg=
done
echo "e2e_serve_logprobs: ok"
