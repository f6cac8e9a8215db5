#!/usr/bin/env bash
# The pinned reference tokenizers (package.json here), cached in .cache/gpt2_parity; prints node_modules.
exec "$(dirname "$0")/../npm_cache.sh" gpt2_parity
