#!/usr/bin/env bash
# anvil bench train: a tiny run prints the measured peak, the step rate with % of peak, the memory
# budget and the peak RSS against it, in fp32 and in bf16, and with --profile each kernel's time;
# --precision auto (the default) takes the precision the measurement finds faster (bf16 by 5% at least),
# both ways (the measurement injected); no share of a peak above 100%; bad options exit non-zero with one line naming
# the problem.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
e2e_workdir

# every share of a peak printed in FILE is at most 100%
shares_at_most_100() {
  grep -oE '[0-9.]+% of (the best )?peak' "$1" | awk '{ if ($1 + 0 > 100) { print "share above 100%: " $0; bad = 1 } }
    END { exit bad }' || fail "a share of the peak above 100% in $1"
}
"$anvil" bench train --preset tiny --batch 2 --seq 32 --threads 2 --steps 2 --warmup 1 --precision fp32 >out.txt \
  2>err.txt || fail "bench train exited $?: $(cat err.txt)"
shares_at_most_100 out.txt
cat out.txt
grep -Eq '^machine: .* measured fp32 FMA peak [0-9.]+ GFLOP/s' out.txt || fail "no measured peak"
grep -Eq 'activation memory per token [0-9.]+ KiB' out.txt || fail "no activation memory per token"
grep -Eq '^train step B=2 T=32 fp32: .* [0-9.]+ tokens/s, [0-9.]+ GFLOP/s, [0-9.]+% of peak' out.txt ||
  fail "no step rate"
grep -Eq '^memory budget: [0-9.]+ MiB = parameters' out.txt || fail "no memory budget"
grep -Eq '^peak RSS: [0-9.]+ MiB = [0-9.]+ MiB before the model .* \+ [0-9.]+ MiB for training = [0-9.]+ x budget' \
  out.txt || fail "no peak RSS"
[ "$(grep -c 'step [0-9]' err.txt)" = 3 ] || fail "expected 3 step lines on stderr: $(cat err.txt)"
"$anvil" bench train --preset tiny --batch 2 --seq 32 --threads 2 --steps 2 --warmup 1 --precision bf16 >out.txt \
  2>err.txt || fail "bench train bf16 exited $?: $(cat err.txt)"
grep -Eq '^train step B=2 T=32 bf16: .* [0-9.]+ tokens/s' out.txt || fail "no bf16 step rate: $(cat out.txt)"
shares_at_most_100 out.txt
# the faster precision by the (injected) measurement, "fp32 seconds,bf16 seconds"; bf16 only where it saves
# at least 5% (ANV_BF16_MIN_SHARE)
for case in 1,2:fp32 2,1:bf16 1,0.97:fp32 1,0.94:bf16; do
  seconds=${case%:*} want=${case#*:}
  ANVIL_TEST_MATMUL_SECONDS=$seconds "$anvil" bench train --preset tiny --batch 2 --seq 32 --threads 2 --steps 1 \
    --warmup 0 >out.txt 2>err.txt || fail "bench train auto exited $?: $(cat err.txt)"
  grep -q "^precision auto: $want " out.txt && grep -Eq "^train step B=2 T=32 $want: " out.txt ||
    fail "auto with $seconds did not take $want: $(cat out.txt)"
done
# the unit of the bf16 products, where vdpbf16ps and the FMAs compete (AVX512_BF16 without AMX): vdpbf16ps
# where it does at least 0.75x the FMAs' work per second, the FMAs below (the rate ratio injected)
if grep -q avx512_bf16 /proc/cpuinfo && ! grep -q amx_bf16 /proc/cpuinfo; then
  for case in 2.0:vdpbf16ps 0.76:vdpbf16ps 0.74:fp32_FMAs 0.48:fp32_FMAs; do
    ratio=${case%:*} unit=${case#*:}
    ANVIL_TEST_DOT_OVER_FMA=$ratio "$anvil" bench train --preset tiny --batch 2 --seq 32 --threads 2 --steps 1 \
      --warmup 0 --precision bf16 >out.txt 2>err.txt || fail "bench train bf16 exited $?: $(cat err.txt)"
    grep -q "; bf16 products on ${unit/_/ }[ ,]" out.txt || fail "vdpbf16ps at ${ratio}x the FMAs: not on $unit: $(cat out.txt)"
    shares_at_most_100 out.txt
  done
fi
env -u ANVIL_TEST_MATMUL_SECONDS "$anvil" bench train --preset tiny --batch 2 --seq 32 --threads 2 --steps 1 \
  --warmup 0 >out.txt 2>err.txt || fail "bench train auto exited $?: $(cat err.txt)"
grep "^precision auto: .*, measured)" out.txt || fail "no measured auto line: $(cat out.txt)"
# the choice agrees with the seconds
sed -nE 's/^precision auto: ([a-z0-9]+) \(a step.s matrix products ([0-9.e+-]+) s in bf16, ([0-9.e+-]+) s in fp32.*/\1 \2 \3/p' \
  out.txt | awk '{ if (($1 == "bf16") != ($2 <= 0.95 * $3)) { print "inconsistent: " $0; exit 1 } }
    END { if (NR != 1) { print "auto line not parsed"; exit 1 } }' ||
  fail "auto's choice does not follow its seconds: $(cat out.txt)"
shares_at_most_100 out.txt

# --profile: each kernel's calls and time per step; the shares and the time outside the kernels add up to
# the step. tiny has 4 layers: 4 attention calls and 16 linear layers per step.
"$anvil" bench train --preset tiny --batch 2 --seq 32 --threads 2 --steps 1 --warmup 1 --profile 2 >out.txt \
  2>err.txt || fail "bench train --profile exited $?: $(cat err.txt)"
sed -n '/^profile of 2 more steps on cpu/,$p' out.txt | tee profile.txt
calls() { awk -v k="$1" '$1 == k { print $2 }' profile.txt; }
[ "$(calls attention_forward)" = 4.0 ] && [ "$(calls attention_backward)" = 4.0 ] || fail "attention calls per step"
[ "$(calls matmul_forward)" = 16.0 ] && [ "$(calls matmul_backward)" = 16.0 ] || fail "matmul calls per step"
awk '/^  [a-z_]+ +[0-9.]+ +[0-9.]+ +[0-9.]+%$/ { k += $4 } /^  outside the kernels/ { o = $5 }
     END { exit !(k + o > 99 && k + o < 101 && k > 50) }' profile.txt ||
  fail "kernel shares and the time outside them do not add up to the step, or the kernels are under half of it"

expect() { # NAME SUBSTRING -- command...
  local name=$1 want=$2 rc=0; shift 3
  "$@" >/dev/null 2>err.txt || rc=$?
  [ "$rc" != 0 ] && [ "$rc" -lt 128 ] || fail "$name: exit $rc"
  [ "$(wc -l <err.txt)" = 1 ] || fail "$name: expected one line, got: $(cat err.txt)"
  grep -q "^anvil: .*$want" err.txt || fail "$name: '$(cat err.txt)' does not name '$want'"
  echo "ok  $name: $(cat err.txt)"
}
expect "no preset" "needs --preset" -- "$anvil" bench train --batch 2
expect "unknown preset" "huge" -- "$anvil" bench train --preset huge
expect "seq over block_size" "--seq <= 256" -- "$anvil" bench train --preset tiny --seq 257
expect "zero steps" "--steps 0: out of range" -- "$anvil" bench train --preset tiny --steps 0
expect "bad precision" "precision fp8: expected auto, fp32 or bf16" -- "$anvil" bench train --preset tiny --precision fp8
expect "bad device" "device 'tpu'" -- "$anvil" bench train --preset tiny --device tpu
rc=0
"$anvil" bench nothing 2>err.txt || rc=$?
[ "$rc" = 2 ] && grep -q "unknown bench subcommand 'nothing'" err.txt || fail "unknown subcommand: $(cat err.txt)"
echo "e2e_bench: all passed"
