#!/usr/bin/env bash
# anvil eval --task against the plain PyTorch scorer: tests/golden/eval holds a GPT-2 and a Llama model
# (Hugging Face directories), task files in every format and what tools/eval_reference.py computed for
# each (regenerate: /usr/bin/python3 tools/eval_reference.py generate tests/golden/eval). Every
# per-example log-probability within 1e-4, identical predictions; the same output on 1 and 2 threads;
# RUN/eval/TASK.json; gzip task files; --limit; bad input: one line naming the file and line, exit 1.
set -eu
. "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/.." && pwd)
golden="$src/tests/golden/eval"
e2e_workdir

for arch in gpt2 llama; do
  "$anvil" import --from hf "$golden/$arch" --out "$arch" > /dev/null || fail "import $arch"
  while read -r task file stride; do
    opt=() suffix=
    [ -n "$stride" ] && opt=(--stride "$stride") suffix=.stride$stride
    out="$arch.$file$suffix"
    "$anvil" eval --run "$arch" --task "$task" --data "$golden/$file" "${opt[@]}" --out "$out" > "$out.txt" 2> err ||
      fail "$arch $task $file: $(cat err)"
    head -c ${#task} "$out.txt" | grep -qx "$task" || fail "$arch $task: the result line does not start with the task"
    /usr/bin/python3 "$src/tools/eval_compare.py" "$golden/$arch.$file$suffix.expected" "$out" ||
      fail "$arch $task $file: anvil differs from the PyTorch scorer"
    [ -f "$arch/eval/$task.json" ] || fail "$arch $task: no $arch/eval/$task.json"
  done <<'EOF'
hellaswag hellaswag.jsonl
hellaswag hellaswag.txt
mc mc.jsonl
lambada lambada.jsonl
text text.jsonl
text text.txt
text text.txt 24
EOF
done
grep -q 'acc .* ± .* | acc_norm .* ± .* | acc_token_mean .* ± ' gpt2.mc.jsonl.txt || fail "mc line: $(cat gpt2.mc.jsonl.txt)"
grep -q '^lambada: acc .* | perplexity ' gpt2.lambada.jsonl.txt || fail "lambada line: $(cat gpt2.lambada.jsonl.txt)"
grep -q '^text: loss .* | perplexity .* | bits_per_byte ' gpt2.text.txt.txt || fail "text line"
grep -q '5 examples, 1 contexts cut to fit the block' gpt2.mc.jsonl.txt || fail "the cut context is not counted"
grep -q '"acc_norm_stderr"' gpt2/eval/mc.json || fail "eval/mc.json: $(cat gpt2/eval/mc.json)"

# The model card of an exported run lists the saved results (an imported model: no training).
"$anvil" export --run gpt2 --format hf --out card > /dev/null 2>&1 || fail "export hf"
grep -q '^model-index:' card/README.md && grep -q '^      type: hellaswag$' card/README.md &&
  grep -q "^| mc | \`mc.jsonl\` | acc_norm | " card/README.md && grep -q '^Not trained by anvil' card/README.md ||
  fail "model card: $(cat card/README.md)"

# One thread gives what two give; a gzip file what the plain one gives; --limit the first examples.
"$anvil" eval --run llama --task mc --data "$golden/mc.jsonl" --threads 1 --out one.jsonl > /dev/null
cmp -s one.jsonl llama.mc.jsonl || fail "1 and 2 threads differ"
gzip -c "$golden/mc.jsonl" > mc.jsonl.gz
"$anvil" eval --run llama --task mc --data mc.jsonl.gz --out gz.jsonl > /dev/null
cmp -s gz.jsonl llama.mc.jsonl || fail "the .gz task file scores differently"
"$anvil" eval --run llama --task mc --data "$golden/mc.jsonl" --limit 2 --out two.jsonl > two.txt
[ "$(wc -l < two.jsonl)" = 2 ] && grep -q '2 examples' two.txt || fail "--limit 2: $(cat two.txt)"

# Bad input: one line naming the file and line, exit 1, and no eval result replaced.
bad() { # FILE TASK EXPECTED-TEXT [options]
  local file=$1 task=$2 want=$3
  shift 3
  cp gpt2/eval/mc.json before.json
  if "$anvil" eval --run gpt2 --task "$task" --data "$file" "$@" > /dev/null 2> err; then fail "$file: accepted"; fi
  [ "$(wc -l < err)" = 1 ] || fail "$file: not one line: $(cat err)"
  grep -qF "$want" err || fail "$file: expected '$want' in: $(cat err)"
  cmp -s before.json gpt2/eval/mc.json || fail "$file: eval/mc.json changed"
}
printf '{"context": "a", "choices": ["b", "c"], "answer": 0}\n{"context": "a", "choices": ["b", "c"], "answer": 2}\n' > range.jsonl
bad range.jsonl mc 'range.jsonl:2: "answer" must be an index of the 2 choices'
printf '{"context": "a", "choices": ["b", "c"], "answer": 0}\n\n{"context": "a", "choices": [1, "c"]\n' > broken.jsonl
bad broken.jsonl mc 'broken.jsonl:3'
printf '{"context": "a", "choices": ["b", 5], "answer": 0}\n' > type.jsonl
bad type.jsonl mc 'type.jsonl:1: "choices"[1] is a number, not a string'
printf '{"ctx": "a", "endings": ["b", "c"]}\n' > nolabel.jsonl
bad nolabel.jsonl hellaswag 'nolabel.jsonl:1: no "label" field'
printf 'context\n1\na\nb\nc\nd\ncontext\n7\na\nb\nc\nd\n' > seven.txt
bad seven.txt hellaswag "seven.txt:7: the second line of an example must be the right ending's index"
printf 'context\n1\na\nb\n' > short.txt
bad short.txt hellaswag 'short.txt:1: the last example has 4 of its 6 lines'
printf '{"text": "oneword"}\n' > word.jsonl
bad word.jsonl lambada 'word.jsonl:1: "text" has no last word after a space'
: > empty.jsonl
bad empty.jsonl mc 'empty.jsonl: no examples'
bad missing.jsonl mc 'missing.jsonl: cannot open'
bad "$golden/mc.jsonl" unknown 'unknown task'
bad "$golden/text.txt" text 'stride 65: must be 1 to block_size 64' --stride 65
# --skip-bad: malformed examples counted and left out.
cat range.jsonl broken.jsonl > mixed.jsonl
"$anvil" eval --run gpt2 --task mc --data mixed.jsonl --skip-bad > skip.txt 2> skip.err || fail "--skip-bad: $(cat skip.err)"
grep -q '2 examples, 2 malformed skipped' skip.txt && grep -q 'mixed.jsonl:2' skip.err || fail "--skip-bad: $(cat skip.txt skip.err)"
long=$(printf 'word %.0s' $(seq 80))
printf '{"context": "a", "choices": ["%s", "b"], "answer": 0}\n' "$long" > long.jsonl
bad long.jsonl mc 'long.jsonl: line 1: a continuation of'
echo "e2e_eval: ok"
