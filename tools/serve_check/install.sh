#!/usr/bin/env bash
# Installs the pinned OpenAI client (package.json here) into .cache/serve_check once and prints the
# node_modules path. Network is used only when the cache is missing or package.json changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../../.cache/serve_check"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
if ! cmp -s "$here/package.json" "$cache/package.json" || [ ! -d "$cache/node_modules/openai" ]; then
  cp "$here/package.json" "$cache/package.json"
  (cd "$cache" && npm install --no-audit --no-fund --silent >&2)
fi
echo "$cache/node_modules"
