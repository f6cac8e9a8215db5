#!/usr/bin/env bash
# Installs what anvil needs on a fresh Debian 12 machine (as root), skipping what is already there.
# Usage: scripts/install-deps.sh [build|test|demo|bench|reference]
set -euo pipefail
what=${1:-build}
pkgs=(build-essential cmake libutf8proc-dev zlib1g-dev libzstd-dev libsnappy-dev libcld2-dev libopenblas-dev libopenblas0-openmp libmicrohttpd-dev)
# Node.js may come from elsewhere than Debian (its npm then conflicts with Debian's): only add it if absent.
command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
case "$what" in
  test) pkgs+=(clang clang-format-14 libclang-rt-14-dev time openmpi-bin libopenmpi-dev iproute2 chromium zstd) ;;
  bench) pkgs+=(python3-torch python3-numpy sentencepiece time) ;;
  reference) pkgs+=(python3-torch python3-numpy python3-regex) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "need root to apt-get install: ${missing[*]}" >&2; exit 1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
