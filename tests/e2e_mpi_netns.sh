#!/usr/bin/env bash
# Two "machines" without machines: two network namespaces joined by a veth pair, each with its own
# link-local address (169.254.77.1 and .2, which exist only inside these namespaces). mpirun runs in the
# first; it starts the second rank's daemon in the second namespace through a launch agent (what ssh
# does between real hosts), and the ranks talk over MPI's TCP transport on the veth only. The 20 losses
# must match one process reading the same global batch, and the veth must have carried the gradients.
# Skips (77) without MPI, without root or where namespaces cannot be made; bounded (timeout) and cleans
# up the namespaces on any exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
anvil=${ANVIL:-${ANVIL_BUILD_DIR:-build}/anvil}
anvil=$(realpath "$anvil")
skip() { echo "SKIP: $*"; exit 77; }
[[ "$(ldd "$anvil")" == *libmpi* ]] || skip "anvil is built without MPI"
command -v mpirun >/dev/null || skip "mpirun is missing (Debian: openmpi-bin)"
command -v ip >/dev/null || skip "ip is missing (Debian: iproute2)"
[ "$(id -u)" = 0 ] || skip "making network namespaces needs root"

work=$(mktemp -d)
na=anvil$$a nb=anvil$$b
cleanup() {
  ip netns del "$na" 2>/dev/null || true
  ip netns del "$nb" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

ip netns add "$na" 2>err && ip netns add "$nb" 2>>err || skip "cannot make network namespaces here: $(head -1 err)"
ip link add "v$$a" netns "$na" type veth peer name "v$$b" netns "$nb" 2>err || skip "cannot make a veth pair: $(head -1 err)"
ip -n "$na" addr add 169.254.77.1/30 dev "v$$a"
ip -n "$nb" addr add 169.254.77.2/30 dev "v$$b"
for ns in "$na" "$nb"; do ip -n "$ns" link set lo up; done
ip -n "$na" link set "v$$a" up
ip -n "$nb" link set "v$$b" up
echo "namespaces $na (169.254.77.1) and $nb (169.254.77.2) joined by a veth pair"

# The launch agent mpirun calls instead of ssh: "agent HOST COMMAND..." runs COMMAND on that "host".
cat > agent.sh <<AGENT
#!/bin/sh
host=\$1; shift
case "\$host" in
  169.254.77.1) ns=$na ;;
  169.254.77.2) ns=$nb ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x agent.sh

grammar_corpus 2000 11 > corpus.txt
"$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
  --threads 2 >/dev/null 2>&1 || fail "data prepare"
echo '{"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab_size": 300, "block_size": 64}' > model.json
args=(--data data --config model.json --seq 64 --steps 20 --lr 3e-3 --warmup 5 --eval-every 0 --eval-batches 1
      --threads 1 --batch 4)
"$anvil" train "${args[@]}" --total-batch-tokens 512 --out one 2>one.err || { cat one.err; fail "1 process"; }

rx() { ip -n "$na" -s link show "v$$a" | awk 'f { print $1; exit } /RX:/ { f = 1 }'; }
rx0=$(rx)
net=169.254.77.0/30
rc=0
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 ip netns exec "$na" \
  mpirun -np 2 -H 169.254.77.1:1,169.254.77.2:1 --mca plm_rsh_agent "$work/agent.sh" \
  --mca btl self,tcp --mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net" \
  "$anvil" train "${args[@]}" --out two >two.out 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat two.out; fail "mpirun across the namespaces exited $rc"; }
bytes=$(( $(rx) - rx0 ))
losses() { grep -o '"step":[0-9]*,"loss":[^,]*' "$1/log.jsonl" | sed 's/.*"loss"://'; }
[ "$(losses two | wc -l)" = 20 ] || fail "the 2-namespace run logged $(losses two | wc -l) steps"
rel=$(paste <(losses one) <(losses two) | awk '{ d = $1 - $2; d = d < 0 ? -d : d; if (d / $1 > m) m = d / $1 }
  END { printf "%.2e", m }')
same=$([ "$(losses one)" = "$(losses two)" ] && echo bitwise || echo "not bitwise")
echo "2 ranks in 2 namespaces over TCP vs 1 process (2 x 4 rows): max relative loss difference $rel ($same)"
awk -v r="$rel" 'BEGIN { exit !(r <= 1e-6) }' || fail "losses differ by $rel"
# Each step all-reduces N floats: rank 0 receives 2 (p-1)/p * 4 N = 4 N bytes (p = 2).
mb=$(grep -o 'AdamW state [0-9.]* MB per rank' two.out | grep -o '[0-9.]*')
need=$(awk -v mb="$mb" 'BEGIN { printf "%d", 20 * 4 * (mb * 1e6 / 8) }')
echo "the veth of rank 0 received $bytes bytes; 20 all-reduces of the gradients need at least $need"
[ "$bytes" -ge $(( need * 9 / 10 )) ] || fail "the gradients did not travel over the veth"
echo "e2e_mpi_netns: passed"
