#!/usr/bin/env bash
# Installs the pinned reference packages (package.json here) into .cache/gpt2_parity once and prints
# the node_modules path. Network is used only when the cache is missing or package.json changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../../.cache/gpt2_parity"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
if ! cmp -s "$here/package.json" "$cache/package.json" || [ ! -d "$cache/node_modules/tiktoken" ] ||
  [ ! -d "$cache/node_modules/gpt-tokenizer" ] || [ ! -d "$cache/node_modules/gpt-3-encoder" ] || [ ! -d "$cache/node_modules/tokenizers" ]; then
  cp "$here/package.json" "$cache/package.json"
  (cd "$cache" && npm install --no-audit --no-fund --silent >&2)
fi
echo "$cache/node_modules"
