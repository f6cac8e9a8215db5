# Shared helpers for the end-to-end tests (source it).

# grammar_corpus N SEED: N deterministic pseudo-English sentences from a small grammar, in documents
# separated by blank lines; no corpus text is committed.
grammar_corpus() {
  awk -v n="$1" -v seed="$2" 'function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  function pick(list,   k, a) { k = split(list, a, " "); return a[int(rnd() * k) + 1] }
  BEGIN {
    for (i = 0; i < n; i++) {
      s = pick("the a one every that this") " " pick("small quiet red old bright heavy green tired clever young") " " \
          pick("cat dog river stone bird garden house child letter machine window forest") " " \
          pick("sees finds carries follows builds watches keeps opens") " " pick("the a one every that this") " " \
          pick("cat dog river stone bird garden house child letter machine window forest")
      if (rnd() < 0.5) s = s " " pick("slowly quickly often never gently")
      line = line (line == "" ? "" : " ") toupper(substr(s, 1, 1)) substr(s, 2) "."
      if (rnd() < 0.2) { print line; print ""; line = "" }
    } }'
}

# --precision auto (train's default) measures fp32 against bf16 at the start of a run; the tests take fp32
# (fp32 seconds 1, bf16 2) so that two runs compared bitwise never differ by a measurement. Tests of auto
# itself set their own.
export ANVIL_TEST_MATMUL_SECONDS=${ANVIL_TEST_MATMUL_SECONDS:-1,2}

# e2e_workdir: sets $anvil (the binary under test), makes a scratch folder $work and enters it; on exit
# the folder and the background job whose pid is in $bg (if any) are removed.
e2e_workdir() {
  anvil=${ANVIL:-${ANVIL_BUILD_DIR:-build}/anvil}
  work=$(mktemp -d)
  bg=
  trap '[ -n "$bg" ] && kill -9 "$bg" 2>/dev/null; rm -rf "$work"' EXIT
  cd "$work"
}

fail() { echo "FAIL: $*"; exit 1; }

# e2e_model_json VOCAB BLOCK: the small model config the end-to-end tests train: GPT-2 (2 layers, 2
# heads, width 64), or with E2E_ARCH=llama a Llama of the same size with grouped-query attention (4
# heads, 2 key/value heads) and an untied head. CMake runs the model-level tests once per architecture.
e2e_model_json() {
  if [ "${E2E_ARCH:-gpt2}" = llama ]; then
    printf '{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, '
    printf '"hidden_size": 64, "intermediate_size": 160, "vocab_size": %d, "block_size": %d, ' "$1" "$2"
    printf '"rope_theta": 10000, "rms_norm_eps": 1e-5, "tie_word_embeddings": false}\n'
  else
    printf '{"n_layer": 2, "n_head": 2, "n_embd": 64, "vocab_size": %d, "block_size": %d}\n' "$1" "$2"
  fi
}

# sft_setup STEPS [SYSTEM]: a tiny base run (`base`: e2e_model_json trained STEPS steps on grammar_corpus
# sentences) and a generated instruction set (which word goes with which noun): sft.jsonl (300 examples)
# and held.jsonl (40), prompt/completion lines and conversations mixed, the conversations opening with the
# system turn SYSTEM when given. Needs $anvil.
sft_setup() {
  grammar_corpus 3000 7 > corpus.txt
  "$anvil" data prepare --input corpus.txt --vocab-size 300 --val-fraction 0.05 --split-blank-lines 1 --out data \
    --threads 1 >/dev/null 2>&1 || fail "data prepare"
  e2e_model_json 300 96 > model.json
  "$anvil" train --data data --config model.json --seq 64 --steps "$1" --lr 3e-3 --eval-every 0 --out base \
    --threads 1 2>base.err || { cat base.err; fail "base run"; }
  SYSTEM=${2:-} /usr/bin/python3 - <<'EOF'
import json, os, random
rng = random.Random(5)
things = "cat dog river stone bird garden house child letter machine window forest".split()
words = "red green old quiet bright heavy tired clever young small slow gentle".split()
pair = dict(zip(things, words))
def line(i):
    t = rng.choice(things)
    q, a = "Which word goes with the %s?" % t, "The %s is %s." % (t, pair[t])
    if i % 2: return {"prompt": q + " ", "completion": a}
    system = [{"role": "system", "content": os.environ["SYSTEM"]}] if os.environ["SYSTEM"] else []
    return {"messages": system + [{"role": "user", "content": q + ("" if system else " ")},
                                  {"role": "assistant", "content": a}]}
with open("sft.jsonl", "w") as f:
    for i in range(300): f.write(json.dumps(line(i)) + "\n")
with open("held.jsonl", "w") as f:
    for i in range(40): f.write(json.dumps(line(i)) + "\n")
EOF
}
