#!/usr/bin/env bash
# LoRA end to end (GPT-2, and Llama with E2E_ARCH=llama): a tiny base model trained on generated
# sentences is fine-tuned with `anvil train --init-from BASE --sft FILE --lora-rank 8` on a generated
# instruction set:
#   - the held-out masked loss falls well below the base's, while the base run's files stay untouched;
#   - the run's checkpoint and optimizer state hold the adapters only: their sizes are printed and
#     checked against the adapter count (4 and 8 bytes per adapter float), far below the base's;
#   - stopped after a step and resumed: the losses and the adapters bitwise those of the uninterrupted run
#     (with --lora-dropout, so the masks are drawn again the same);
#   - `anvil sample`, `anvil eval` and `anvil serve` load the base with the adapters;
#   - real llama.cpp (node-llama-cpp) with the base's GGUF plus the adapter GGUF (`--format gguf-lora`)
#     agrees with `anvil logits` and greedy-decodes exactly what `anvil sample` does; the merged
#     export (`--merge`) too; without the adapter llama.cpp's logits differ (the adapter does something);
#   - with packed rows (--sft-pack) it learns too, and resumes bitwise;
#   - bf16 LoRA also learns; 2 accumulated micro-batches, and under mpirun (when built with MPI) 2 ranks
#     with ZeRO-1, follow 1 process with the whole batch (every trained token weighs the same);
#   - bad input: a base that moved or changed, targets the architecture lacks, a rank out of range,
#     --lora-rank without --init-from, a plain export of a LoRA run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
e2e_workdir

sft_setup 200
base_sum=$(cat base/* 2>/dev/null | md5sum)
lora=(--init-from base --sft sft.jsonl --sft-val held.jsonl --chat-template plain --batch 8 --epochs 3 --lr 1e-2
      --eval-every 0 --save-every 10 --threads 1 --lora-rank 8 --lora-dropout 0.1)
"$anvil" train "${lora[@]}" --out ft 2>ft.err || { cat ft.err; fail "LoRA run"; }
grep "^LoRA r=8" ft.err || { cat ft.err; fail "no LoRA line"; }
[ "$(cat base/* | md5sum)" = "$base_sum" ] || fail "the LoRA run changed its base run's files"
val_loss() { grep -o 'val loss [0-9.]*' | head -1 | grep -o '[0-9.]*$'; }
before=$("$anvil" eval --run base --data ft/sft --batch 8 --threads 1 2>&1 | val_loss)
after=$("$anvil" eval --run ft --batch 8 --threads 1 2>&1 | val_loss)
echo "held-out masked loss: base $before, LoRA $after"
awk -v b="$before" -v a="$after" 'BEGIN { exit !(a < b / 1.8) }' || fail "LoRA did not lower the loss enough"

# sizes: the checkpoint is the adapters (4 bytes each), the optimizer state twice that; both small
n=$(sed -n 's/.*: \([0-9]*\) adapter parameters.*/\1/p' ft.err)
adapter=$(stat -c %s ft/adapter_model.safetensors) optim=$(stat -c %s ft/optim.safetensors)
full=$(stat -c %s base/model.safetensors)
echo "sizes: $n adapter floats; adapter_model.safetensors $adapter bytes, optim.safetensors $optim bytes;" \
  "the base's model.safetensors $full bytes"
[ ! -e ft/model.safetensors ] || fail "a LoRA run wrote model.safetensors"
awk -v n="$n" -v a="$adapter" -v o="$optim" -v f="$full" 'BEGIN { ha = a - 4 * n; ho = o - 8 * n;
  exit !(n > 0 && ha > 0 && ha < 16384 && ho > 0 && ho < 32768 && 4 * a < f) }' || fail "sizes out of proportion"
grep -q "\"peft_type\": \"LORA\"" ft/adapter_config.json && grep -q "\"r\": 8," ft/adapter_config.json &&
  grep -q "\"lora_dropout\": 0.1" ft/adapter_config.json ||
  fail "adapter_config.json: $(cat ft/adapter_config.json)"

# stopped after a step and resumed: bitwise the uninterrupted run
losses() { grep -o '"step":[0-9]*,"loss":[^,]*' "$1/log.jsonl"; }
resumes_bitwise() { # RUN STEP TRAIN_ARGS...: RUN's arguments stopped at STEP (in RUN_part) and resumed
  local run=$1 step=$2 rc=0; shift 2
  ANVIL_TEST_STOP_AT_STEP=$step "$anvil" train "$@" --out "${run}_part" 2>"${run}_part.err" || rc=$?
  grep -q "saved at step $step" "${run}_part.err" || { cat "${run}_part.err"; fail "$run: stop at step $step (exit $rc)"; }
  "$anvil" train --out "${run}_part" --resume 2>"${run}_part2.err" || { cat "${run}_part2.err"; fail "$run: resume"; }
  [ "$(losses "${run}_part")" = "$(losses "$run")" ] || fail "$run: the resumed run's losses differ from the uninterrupted run's"
  cmp -s "${run}_part/adapter_model.safetensors" "$run/adapter_model.safetensors" || fail "$run: the resumed run's adapters differ"
  echo "$run: stopped at step $step + resume: all $(losses "$run" | wc -l) losses and the adapters bitwise equal"
}
resumes_bitwise ft 40 "${lora[@]}"

# packed rows (--sft-pack): several examples per row of the block size, attention within each; learns as
# the padded run does, and resumes bitwise
packed=("${lora[@]}" --sft-pack --batch 2)
"$anvil" train "${packed[@]}" --out pk 2>pk.err || { cat pk.err; fail "packed LoRA run"; }
grep "several examples packed per row" pk.err || { cat pk.err; fail "no packing line"; }
pk=$("$anvil" eval --run pk --batch 8 --threads 1 2>&1 | val_loss)
echo "packed rows: held-out masked loss $pk"
awk -v b="$before" -v a="$pk" 'BEGIN { exit !(a < b / 1.8) }' || fail "packed LoRA did not lower the loss enough"
resumes_bitwise pk 30 "${packed[@]}"

# anvil serve on the LoRA run (the base with the adapters)
prompt="Which word goes with the cat? "
"$anvil" sample --run ft --prompt "$prompt" --temperature 0 --max-tokens 12 --threads 1 >sample.txt 2>/dev/null ||
  fail "sample on the LoRA run"
echo "anvil sample: $(cat sample.txt)"
grep -q "^The cat is red\." sample.txt || fail "the LoRA run did not learn the reply"
if [[ "$(ldd "$anvil")" == *libmicrohttpd* ]] && command -v curl >/dev/null; then
  "$anvil" serve --run ft --port 0 --threads 1 2>serve.err & bg=$!
  for _ in $(seq 100); do grep -q "listening on" serve.err && break; sleep 0.1; done
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' serve.err)
  reply=$(curl -s "localhost:$port/v1/completions" -d "{\"prompt\": \"$prompt\", \"max_tokens\": 12, \"temperature\": 0}")
  kill "$bg"; wait "$bg" 2>/dev/null || true; bg=
  echo "$reply" | grep -q '"text":"The cat is red\.' || fail "served completion: $reply"
fi

# llama.cpp: the base's GGUF + the adapter GGUF, and the merged model, against anvil
if command -v node >/dev/null; then
  cache=$(dirname "$("$src/tools/npm_cache.sh" llama_check --omit=optional)")
  cp "$src/tools/llama_check/check.mjs" "$cache/check.mjs"
  tol=1e-4; [ "${E2E_ARCH:-gpt2}" = gpt2 ] && tol=5e-3 # ggml's CPU GELU rounds its input to fp16
  "$anvil" export --run base --format gguf --out base.gguf 2>/dev/null || fail "export base"
  "$anvil" export --run ft --format gguf-lora --out adapter.gguf 2>/dev/null || fail "export --format gguf-lora"
  "$anvil" export --run ft --merge --format gguf --out merged.gguf 2>/dev/null || fail "export --merge"
  "$anvil" logits --run ft --prompt "$prompt" --out logits.json 2>/dev/null
  "$anvil" sample --run ft --prompt "$prompt" --temperature 0 --max-tokens 16 >greedy.txt 2>/dev/null
  for kind in adapter merged; do
    model=(--model base.gguf --lora adapter.gguf); [ $kind = merged ] && model=(--model merged.gguf)
    node "$cache/check.mjs" "${model[@]}" --prompt "$prompt" --n 16 --anvil logits.json --tol "$tol" \
      >"llama_$kind.json" 2>"llama_$kind.log" || { cat "llama_$kind.log"; fail "llama.cpp with the $kind"; }
    node -e 'const fs = require("fs"), [file, want] = process.argv.slice(1);
      const got = JSON.parse(fs.readFileSync(file, "utf8")).text, ref = fs.readFileSync(want, "utf8");
      if (got !== ref) { console.error(`llama.cpp greedy ${JSON.stringify(got)} != anvil ${JSON.stringify(ref)}`); process.exit(1); }' \
      "llama_$kind.json" greedy.txt || fail "llama.cpp's greedy text with the $kind"
    echo "llama.cpp with the $kind ($(stat -c %s "$kind.gguf") bytes): $(cat "llama_$kind.log"); greedy text equal"
  done
  node "$cache/check.mjs" --model base.gguf --prompt "$prompt" --n 1 --anvil logits.json --tol "$tol" >/dev/null \
    2>base_only.log && fail "llama.cpp without the adapter agrees with the LoRA run: the adapter is not applied"
  echo "without the adapter: $(grep -o 'relative [^ ]*' base_only.log)"
fi

# bf16 LoRA learns too
"$anvil" train "${lora[@]}" --precision bf16 --out bf 2>bf.err || { cat bf.err; fail "bf16 LoRA run"; }
bf=$("$anvil" eval --run bf --batch 8 --threads 1 2>&1 | val_loss)
echo "bf16 LoRA: held-out masked loss $bf"
awk -v b="$before" -v a="$bf" 'BEGIN { exit !(a < b / 1.8) }' || fail "bf16 LoRA did not lower the loss enough"

# fine-tuning rows hold different numbers of trained tokens: every one weighs the same however the
# global batch is split, so 1 process with 2 accumulated micro-batches of 4 rows, and 2 ranks (ZeRO-1)
# of 4 rows each, follow 1 process with 8 rows
short=(--init-from base --sft sft.jsonl --sft-val held.jsonl --chat-template plain --seq 64 --steps 12 --lr 1e-2
       --eval-every 6 --threads 1 --lora-rank 4
       --lora-targets "$( [ "${E2E_ARCH:-gpt2}" = gpt2 ] && echo c_attn,c_fc || echo q,v,down)")
all_losses() { grep -o '"loss":[0-9.]*\|"val_loss":[0-9.]*' "$1/log.jsonl" | sed 's/.*://'; }
follows() { # what against
  paste <(all_losses one) <(all_losses "$1") | awk -v what="$2" '{ d = $1 - $2; d = d < 0 ? -d : d;
    r = d / $1; if (r > m) m = r; n++ } END { printf "%s against 1 process: %d losses, max relative difference %.1e\n",
    what, n, m; exit !(n == 14 && m < 1e-5) }' || fail "$2 diverges from 1 process"
}
"$anvil" train "${short[@]}" --batch 8 --keep-best --out one 2>one.err || { cat one.err; fail "1-process LoRA"; }
# --keep-best: the best checkpoint of a LoRA run is its adapters, loaded on the base like the run's
[ -s one/best/adapter_model.safetensors ] && [ -s one/best/adapter_config.json ] && [ ! -e one/best/model.safetensors ] ||
  fail "one/best does not hold the adapters alone: $(ls one/best)"
"$anvil" sample --run one/best --prompt "$prompt" --temperature 0 --max-tokens 4 > /dev/null 2> best.err ||
  fail "sample --run one/best: $(cat best.err)"
"$anvil" train "${short[@]}" --batch 4 --total-batch-tokens 512 --out acc 2>acc.err || { cat acc.err; fail "accumulated"; }
follows acc "2 accumulated micro-batches"
if [[ "$(ldd "$anvil")" == *libmpi* ]] && command -v mpirun >/dev/null; then
  mpi=(mpirun -np 2 --oversubscribe --mca btl self,vader)
  [ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
  "${mpi[@]}" "$anvil" train "${short[@]}" --batch 4 --zero 1 --out two >two.err 2>&1 || { cat two.err; fail "mpirun LoRA"; }
  follows two "2 ranks (ZeRO-1)"
fi

# bad input: one line naming the file or the option
expect_error() { # pattern command...
  local pattern=$1 rc=0; shift
  "$@" >err.txt 2>&1 || rc=$?
  [ "$rc" != 0 ] && [ "$(wc -l <err.txt)" = 1 ] && grep -q -- "$pattern" err.txt || { cat err.txt; fail "expected '$pattern'"; }
  echo "refused: $(cat err.txt)"
}
targets=q,wq; [ "${E2E_ARCH:-gpt2}" = gpt2 ] && targets=c_fc,wq
expect_error "has no LoRA target 'wq'" "$anvil" train "${lora[@]}" --lora-targets "$targets" --out bad1
[ ! -e bad1 ] || fail "a refused LoRA run left files in bad1"
expect_error "rank 999 is outside" "$anvil" train "${lora[@]}" --lora-rank 999 --out bad2
expect_error "name it with --init-from" "$anvil" train --data data --config model.json --lora-rank 4 --out bad3
expect_error "a LoRA run; export its adapters" "$anvil" export --run ft --format gguf --out x.gguf
expect_error "not a LoRA run" "$anvil" export --run base --format gguf-lora --out x.gguf
mv base base.moved
expect_error "base run .*/base is missing" "$anvil" sample --run ft --prompt x --max-tokens 1
mv base.moved base
"$anvil" train --out base --resume --steps 201 --threads 1 2>/dev/null || fail "continuing the base"
expect_error "changed since the adapters were trained" "$anvil" sample --run ft --prompt x --max-tokens 1
expect_error "changed since the adapters were trained" "$anvil" train --out ft --resume --steps 200
