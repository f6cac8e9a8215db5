#!/usr/bin/env bash
# Supervised fine-tuning end to end: a tiny base model trained on generated sentences is fine-tuned
# with `anvil train --init-from BASE --sft` on a generated instruction set (which word goes with which
# noun; prompt/completion lines and chat conversations mixed) whose validation examples are held out:
#   - the masked validation loss (reply tokens only) falls well below the base model's on the same
#     examples (anvil eval of BASE on RUN/sft), for the plain and the chatml templates and for a Jinja
#     template file (--chat-template FILE, Hugging Face's chat_template form);
#   - a run stopped after some steps and resumed ends bitwise as the uninterrupted one (epochs reshuffled);
#   - anvil serve renders chat messages with the run's template and the reply ends where training taught;
#   - the GGUF export's tokenizer.chat_template, read by llama.cpp (node-llama-cpp) and rendered by
#     Hugging Face's Jinja engine, gives the text anvil rendered;
#   - bad input fails with one line naming the file and line (unknown role, empty completion), and
#     --sft without --init-from or with --data is refused.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
src=${ANVIL_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
e2e_workdir

sft_setup 30 "Answer briefly."
# a template file in Hugging Face's Jinja, laid out with trim_blocks/lstrip_blocks as real ones are
cat > turns.jinja <<'EOF'
{% for message in messages %}
    {% if message['role'] == 'assistant' %}
<|assistant|>
{{ message['content'] | trim }}{{ eos_token }}
    {% else %}
<|{{ message['role'] }}|>
{{ message['content'] | trim }}
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|assistant|>
{% endif %}
EOF
val_loss() { grep -o 'val loss [0-9.]*' | head -1 | grep -o '[0-9.]*$'; }
for chat in plain chatml turns.jinja; do
  "$anvil" train --init-from base --sft sft.jsonl --sft-val held.jsonl --chat-template "$chat" --out "ft_$chat" \
    --batch 8 --epochs 3 --lr 1e-3 --eval-every 0 --threads 1 2>"ft_$chat.err" || { cat "ft_$chat.err"; fail "--sft $chat"; }
  grep "^fine-tuning data" "ft_$chat.err"
  before=$("$anvil" eval --run base --data "ft_$chat/sft" --batch 8 --threads 1 2>&1 | val_loss)
  after=$("$anvil" eval --run "ft_$chat" --batch 8 --threads 1 2>&1 | val_loss)
  echo "$chat: held-out masked loss (reply tokens only): base $before, fine-tuned $after"
  awk -v b="$before" -v a="$after" 'BEGIN { exit !(a < b / 2) }' || fail "$chat: fine-tuning did not halve the loss"
done

# stopped with SIGINT in the second epoch and resumed: bitwise the uninterrupted ft_plain
losses() { grep -o '"step":[0-9]*,"loss":[^,]*' "$1/log.jsonl"; }
epoch=$(( $(losses ft_plain | wc -l) / 3 ))
"$anvil" train --init-from base --sft sft.jsonl --sft-val held.jsonl --chat-template plain --out part --batch 8 \
  --epochs 3 --lr 1e-3 --eval-every 0 --threads 1 --save-every 5 2>part.err & bg=$!
for _ in $(seq 3000); do grep -q "\"step\":$((epoch + 3)),\"loss\"" part/log.jsonl 2>/dev/null && break; sleep 0.1; done
kill -INT "$bg"; rc=0; wait "$bg" || rc=$?; bg=
[ "$rc" = 130 ] || { cat part.err; fail "SIGINT: exit $rc"; }
stopped=$(grep -o 'saved at step [0-9]*' part.err)
"$anvil" train --out part --resume 2>part2.err || { cat part2.err; fail "resume"; }
[ "$(losses part)" = "$(losses ft_plain)" ] || fail "the resumed run's losses differ from the uninterrupted run's"
cmp -s part/model.safetensors ft_plain/model.safetensors || fail "the resumed run's weights differ"
echo "SIGINT ($stopped, epoch 2 of 3) + resume: all $(losses part | wc -l) losses and the weights bitwise equal"

# served: /v1/chat/completions renders the messages with the run's template (plain: the user's text,
# then the reply) and stops at the end-of-text token the fine-tuning taught
if [[ "$(ldd "$anvil")" == *libmicrohttpd* ]] && command -v curl >/dev/null; then
 for run in ft_plain ft_turns.jinja; do
  "$anvil" serve --run "$run" --port 0 --threads 1 2>serve.err & bg=$!
  for _ in $(seq 100); do grep -q "listening on" serve.err && break; sleep 0.1; done
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' serve.err)
  grep -q "rendered with the ${run/ft_plain/plain}" serve.err && [ "$run" = ft_plain ] ||
    grep -q "rendered with the .*$run/sft/chat_template.jinja template" serve.err ||
    { cat serve.err; fail "serve did not take the run's template"; }
  reply=$(curl -s "localhost:$port/v1/chat/completions" -d '{"messages": [{"role": "user", "content":
    "Which word goes with the cat? "}], "max_tokens": 40, "temperature": 0}')
  kill "$bg"; wait "$bg" 2>/dev/null || true; bg=
  echo "$run served reply: $(echo "$reply" | grep -o '"content":"[^"]*"'), $(echo "$reply" | grep -o '"finish_reason":"[a-z]*"')"
  if [ "$run" = ft_plain ]; then # the reply ends where training taught
    echo "$reply" | grep -q '"content":"The [^"]*\."' && echo "$reply" | grep -q '"finish_reason":"stop"' &&
      echo "$reply" | grep -q '"prompt_tokens":[0-9]*,' || fail "chat reply: $reply"
  else # the template file's prompt: the 42 tokens its training examples hold before a reply, then "The"
    echo "$reply" | grep -q '"content":"The ' && echo "$reply" | grep -q '"prompt_tokens":42,' ||
      fail "chat reply: $reply"
  fi
 done
fi

# exported: the GGUF carries the template; llama.cpp's reader finds it and Hugging Face's Jinja engine
# renders a conversation with it exactly as anvil rendered the training examples
if command -v node >/dev/null && [ -z "${ANVIL_E2E_NO_NODE:-}" ]; then
  cache=$(dirname "$("$src/tools/npm_cache.sh" llama_check --omit=optional)")
  cp "$src/tools/llama_check/chat.mjs" "$cache/chat.mjs"
  printf '%s' '[{"role": "user", "content": "Which word goes with the cat? "},
    {"role": "assistant", "content": "The cat is red."}]' > conv.json
  for chat in plain chatml turns.jinja; do
    "$anvil" export --run "ft_$chat" --format gguf --out "$chat.gguf" 2>/dev/null || fail "export $chat"
    node "$cache/chat.mjs" --model "$chat.gguf" --messages conv.json > "$chat.chat.json" || fail "llama.cpp: $chat"
    CHAT=$chat /usr/bin/python3 - <<'EOF' || fail "the exported $chat template renders otherwise than anvil"
import json, os
chat = os.environ["CHAT"]
r = json.load(open(chat + ".chat.json"))
q, a = "Which word goes with the cat? ", "The cat is red."
e = "<|endoftext|>"  # as bos_token, which the export sets to the end-of-text token
want = {"plain": (e + q + a + e, e + q),
        "chatml": (e + "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n%s<|im_end|>\n" % (q, a),
                   e + "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n" % q),
        "turns.jinja": ("<|user|>\n%s\n<|assistant|>\n%s%s\n" % (q.strip(), a, e),
                        "<|user|>\n%s\n<|assistant|>\n" % q.strip())}[chat]
assert (r["rendered"], r["prompt"]) == want, (r["rendered"], r["prompt"], want)
print("%s: llama.cpp reads tokenizer.chat_template (%d bytes), eot %s; Jinja renders %r" %
      (chat, len(r["template"]), r["eot"], r["rendered"]))
EOF
  done
fi

# bad input: one line naming the file and line
cp sft.jsonl bad.jsonl
echo '{"messages": [{"role": "robot", "content": "beep"}]}' >> bad.jsonl
rc=0; "$anvil" train --init-from base --sft bad.jsonl --out bad1 2>err || rc=$?
[ "$rc" = 1 ] && grep -q 'bad.jsonl:301: message 1: unknown role "robot"' err || { cat err; fail "unknown role"; }
echo "unknown role: $(cat err)"
echo '{"prompt": "x", "completion": ""}' > empty.jsonl
rc=0; "$anvil" train --init-from base --sft empty.jsonl --out bad2 2>err || rc=$?
[ "$rc" = 1 ] && grep -q 'empty.jsonl:1: an empty completion' err || { cat err; fail "empty completion"; }
rc=0; "$anvil" train --sft sft.jsonl --out bad3 2>err || rc=$?
[ "$rc" = 1 ] && grep -q 'give --init-from' err || { cat err; fail "--sft without --init-from"; }
rc=0; "$anvil" train --init-from base --sft sft.jsonl --data data --out bad4 2>err || rc=$?
[ "$rc" = 1 ] && grep -q 'instead of --data' err || { cat err; fail "--sft with --data"; }
mkdir foreign && touch foreign/notes.txt
rc=0; "$anvil" train --init-from base --sft sft.jsonl --out foreign 2>err || rc=$?
[ "$rc" = 1 ] && grep -q 'holds files but no anvil run' err && [ ! -e foreign/sft ] || { cat err; fail "foreign --out"; }
echo "PASS"
