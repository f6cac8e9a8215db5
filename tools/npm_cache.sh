#!/usr/bin/env bash
# Installs the pinned npm packages of tools/NAME/package.json into .cache/NAME once and prints the
# node_modules path. Network is used only when the cache lacks one of the packages or its
# package.json differs. Tests run in parallel share a cache, so an install holds a lock on it. Extra arguments go to npm install (e.g. --omit=optional).
# Usage: tools/npm_cache.sh NAME [NPM_ARGS...]
set -euo pipefail
tools=$(cd "$(dirname "$0")" && pwd)
name=$1
shift
cache="$tools/../.cache/$name"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
exec 9>"$cache.lock"
flock 9
complete() {
  cmp -s "$tools/$name/package.json" "$cache/package.json" &&
    node -e 'const fs = require("fs"), dir = process.argv[1];
      const deps = Object.keys(JSON.parse(fs.readFileSync(dir + "/package.json")).dependencies || {});
      process.exit(deps.every((d) => fs.existsSync(dir + "/node_modules/" + d)) ? 0 : 1)' "$cache"
}
if ! complete; then
  cp "$tools/$name/package.json" "$cache/package.json"
  (cd "$cache" && npm install --no-audit --no-fund --silent "$@" >&2)
fi
echo "$cache/node_modules"
