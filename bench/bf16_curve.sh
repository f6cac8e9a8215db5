#!/usr/bin/env bash
# bf16 mixed precision against fp32 on the demo: the same data, seed and hyperparameters as `make demo`
# (Moby Dick, 4096-token BPE, `small`, B=8, T=256), STEPS optimizer steps (default 500) once with
# --precision fp32 and once with bf16. Prints the largest relative gap between the two loss curves,
# per step and over a 20-step moving average, the final validation losses, and the tokens/s of each.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anvil="$root/build/anvil"
steps=${STEPS:-500}
work=${WORK:-$(mktemp -d)}
text=$("$root/scripts/corpus.sh" moby-dick)
[ -d "$work/data" ] || "$anvil" data prepare --input "$text" --vocab-size 4096 --split-blank-lines 5 \
  --val-fraction 0.05 --out "$work/data" >/dev/null
for p in fp32 bf16; do
  rm -rf "$work/$p"
  start=$SECONDS
  "$anvil" train --data "$work/data" --out "$work/$p" --preset small --batch 8 --seq 256 --steps "$steps" \
    --lr 2e-3 --warmup 30 --min-lr 1e-4 --eval-every "$steps" --save-every "$steps" --precision "$p" 2>/dev/null
  echo "$p: $((SECONDS - start)) s"
done
/usr/bin/python3 - "$work/fp32/log.jsonl" "$work/bf16/log.jsonl" <<'PY'
import json, sys
def curve(path):
    loss, val, tps = {}, None, []
    for line in open(path):
        r = json.loads(line)
        if "loss" in r: loss[r["step"]] = r["loss"]; tps.append(r.get("tokens_per_s", 0))
        if "val_loss" in r: val = r["val_loss"]
    tps.sort()
    return loss, val, tps[len(tps) // 2] if tps else 0
a, va, ta = curve(sys.argv[1])
b, vb, tb = curve(sys.argv[2])
steps = sorted(set(a) & set(b))
gap = max(abs(b[s] - a[s]) / a[s] for s in steps)
w = 20
def smooth(c): return [sum(c[s] for s in steps[i:i + w]) / w for i in range(len(steps) - w + 1)]
sa, sb = smooth(a), smooth(b)
sgap = max(abs(y - x) / x for x, y in zip(sa, sb))
print(f"steps compared: {len(steps)}")
print(f"max relative loss gap bf16 vs fp32: per step {100 * gap:.2f}%, {w}-step average {100 * sgap:.2f}%")
print(f"final val loss: fp32 {va:.4f}, bf16 {vb:.4f} ({100 * (vb - va) / va:+.2f}%)")
print(f"median tokens/s: fp32 {ta:.0f}, bf16 {tb:.0f} (bf16/fp32 {tb / ta:.2f}x)")
PY
