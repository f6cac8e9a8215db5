#!/usr/bin/env bash
# The pinned Parquet writers (package.json here), cached in .cache/parquet_check; prints node_modules.
exec "$(dirname "$0")/../npm_cache.sh" parquet_check
