#!/usr/bin/env bash
# Installs the pinned Parquet writers (package.json here) into .cache/parquet_check once and prints the
# node_modules path. Network is used only when the cache is missing or package.json changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/../../.cache/parquet_check"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
if ! cmp -s "$here/package.json" "$cache/package.json" || [ ! -d "$cache/node_modules/parquet-wasm" ]; then
  cp "$here/package.json" "$cache/package.json"
  (cd "$cache" && npm install --no-audit --no-fund --silent >&2)
fi
echo "$cache/node_modules"
