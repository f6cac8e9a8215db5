// Log-probabilities over HTTP (tests/e2e_serve_logprobs.sh): `anvil serve` against the plain PyTorch
// values of tools/eval_reference.py (EXPECTED: {prompt, ids, tokens, token_logprobs, top_logprobs}).
//  1. lm-evaluation-harness's local-completions loglikelihood request, byte for byte its shape (token ids,
//     max_tokens 1, logprobs 1, echo), scored the way the harness scores it (token_logprobs[ctxlen:-1],
//     greedy when each equals the top alternative);
//  2. the npm openai client: echo + logprobs 5 + max_tokens 0 on the text, every token's value and its
//     5 alternatives;
//  3. bad logprobs values answered 400.
// Usage: node logprobs.cjs BASE_URL MODEL EXPECTED_JSON   (NODE_PATH: tools/serve_check/install.sh)
"use strict";
const fs = require("fs");
const { OpenAI } = require("openai");

const [base, model, expectedPath] = process.argv.slice(2);
const want = JSON.parse(fs.readFileSync(expectedPath, "utf8"));
const tol = 1e-4;
let failed = 0, worst = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAIL"}: logprobs: ${what}`);
  if (!ok) failed++;
};
const close = (a, b) => {
  const d = Math.abs(a - b);
  worst = Math.max(worst, d);
  return d <= tol;
};

async function main() {
  // 1. The harness's request: {"model", "prompt": [[ids]], "temperature": 0, "max_tokens": 1, "logprobs": 1,
  //    "seed", "echo": true}; context = all but the last 4 ids, continuation = the last 4.
  const body = { model, prompt: [want.ids], temperature: 0, max_tokens: 1, logprobs: 1, seed: 1234, echo: true };
  const res = await fetch(`${base}/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const out = await res.json();
  check(res.status === 200, `harness request answered ${res.status}`);
  const lp = out.choices[0].logprobs, n = want.ids.length;
  check(lp.token_logprobs.length === n + 1 && lp.tokens.length === n + 1 && lp.top_logprobs.length === n + 1 &&
        lp.text_offset.length === n + 1, `${n} prompt tokens and 1 generated`);
  check(lp.token_logprobs[0] === null && lp.top_logprobs[0] === null, "the first prompt token has no log-probability");
  let ok = true;
  for (let i = 1; i < n; i++) {
    ok = ok && close(lp.token_logprobs[i], want.token_logprobs[i]);
    const best = (o) => Object.entries(o).reduce((a, b) => (b[1] > a[1] ? b : a)); // key order is not rank order in JS
    const [top, value] = best(lp.top_logprobs[i]), [wtop, wvalue] = best(want.top_logprobs[i]);
    const good = close(lp.token_logprobs[i], want.token_logprobs[i]) && Object.keys(lp.top_logprobs[i]).length === 1 &&
                 top === wtop && close(value, wvalue);
    if (!good && ok) console.log(`  position ${i}: ${lp.token_logprobs[i]} ${JSON.stringify(lp.top_logprobs[i])}, PyTorch ` +
                                 `${want.token_logprobs[i]} ${JSON.stringify(want.top_logprobs[i])}`);
    ok = ok && good;
  }
  check(ok, "every prompt token's log-probability and top alternative match PyTorch's");
  const ctxlen = n - 4, cont = lp.token_logprobs.slice(ctxlen, -1), tops = lp.top_logprobs.slice(ctxlen, -1);
  const sum = cont.reduce((a, b) => a + b, 0), wsum = want.token_logprobs.slice(ctxlen).reduce((a, b) => a + b, 0);
  const greedy = cont.every((t, i) => t === Math.max(...Object.values(tops[i])));
  const wgreedy = want.token_logprobs.slice(ctxlen).every((t, i) => t === Math.max(...Object.values(want.top_logprobs[ctxlen + i])));
  check(close(sum, wsum) && greedy === wgreedy, `harness loglikelihood ${sum.toFixed(6)} (PyTorch ${wsum.toFixed(6)}), greedy ${greedy}`);

  // 2. The openai client, text prompt, echo, 5 alternatives, nothing generated.
  const client = new OpenAI({ baseURL: base, apiKey: "unused", maxRetries: 0, timeout: 30000 });
  const r = await client.completions.create({ model, prompt: want.prompt, echo: true, logprobs: 5, max_tokens: 0 });
  const c = r.choices[0], l = c.logprobs;
  check(c.text === want.prompt && r.usage.completion_tokens === 0, `echo with max_tokens 0: ${JSON.stringify(c.text)}`);
  check(JSON.stringify(l.tokens) === JSON.stringify(want.tokens), "the tokens are the prompt's");
  ok = l.token_logprobs.length === n - 1;
  for (let i = 0; ok && i < n - 1; i++) {
    ok = close(l.token_logprobs[i], want.token_logprobs[i + 1]);
    const got = l.top_logprobs[i], w = want.top_logprobs[i + 1];
    ok = ok && Object.keys(got).length === Object.keys(w).length && Object.keys(w).every((k) => k in got && close(got[k], w[k]));
    if (!ok) console.log(`  token ${i}: ${l.token_logprobs[i]} ${JSON.stringify(got)}, PyTorch ${want.token_logprobs[i + 1]} ${JSON.stringify(w)}`);
  }
  check(ok, "openai client: every token (the first too: the end-of-text token precedes the text) and its 5 alternatives");
  check(l.text_offset[0] === 0 && l.text_offset.every((o, i) => i === 0 || o === l.text_offset[i - 1] + Buffer.byteLength(l.tokens[i - 1])),
        "text offsets");

  // 3. Bad values.
  for (const bad of [21, -1, 1.5, "2"]) {
    try {
      await client.completions.create({ model, prompt: "a", logprobs: bad, max_tokens: 1 });
      check(false, `logprobs ${JSON.stringify(bad)} accepted`);
    } catch (e) {
      check(e.status === 400 && e.param === "logprobs", `logprobs ${JSON.stringify(bad)}: ${e.status} ${e.message}`);
    }
  }
  try {
    await client.completions.create({ model, prompt: "a", logprobs: 1, max_tokens: 1, stream: true });
    check(false, "logprobs with stream accepted");
  } catch (e) {
    check(e.status === 400, `logprobs with stream: ${e.status}`);
  }
  console.log(`logprobs: max |anvil - PyTorch| ${worst.toExponential(2)} (tol ${tol})`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL: logprobs: ${e.stack || e}`);
  process.exit(1);
});
