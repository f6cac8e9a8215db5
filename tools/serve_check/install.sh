#!/usr/bin/env bash
# The pinned OpenAI client (package.json here), cached in .cache/serve_check; prints node_modules.
exec "$(dirname "$0")/../npm_cache.sh" serve_check
