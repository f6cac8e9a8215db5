// The official OpenAI Node client against `anvil serve` (tests/e2e_serve.sh): a completion, a chat, a
// streamed chat, and errors surfacing as the client's typed errors.
// Usage: node client.cjs BASE_URL API_KEY MODEL CASES_JSON   (NODE_PATH: tools/serve_check/install.sh)
"use strict";
const fs = require("fs");
const { OpenAI } = require("openai");

const [base, apiKey, model, casesPath] = process.argv.slice(2);
const cases = JSON.parse(fs.readFileSync(casesPath, "utf8")); // {max_tokens, items: [{prompt, expected}]}
const client = new OpenAI({ baseURL: base, apiKey, maxRetries: 0, timeout: 30000 });
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAIL"}: openai client: ${what}`);
  if (!ok) failed++;
};

async function main() {
  const c = cases.items[0];
  const r = await client.completions.create({ model, prompt: c.prompt, max_tokens: cases.max_tokens, temperature: 0 });
  check(r.choices[0].text === c.expected,
        `completion of ${JSON.stringify(c.prompt)} equals anvil sample's: ${JSON.stringify(r.choices[0].text)}`);
  const u = r.usage;
  check(u.completion_tokens > 0 && u.total_tokens === u.prompt_tokens + u.completion_tokens,
        `completion usage ${JSON.stringify(u)}`);

  const messages = [{ role: "system", content: "You write short sentences." }, { role: "user", content: "Tell me about the dog." }];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0 });
  const msg = chat.choices[0].message, finish = chat.choices[0].finish_reason;
  check(msg.role === "assistant" && typeof msg.content === "string" && ["stop", "length"].includes(finish),
        `chat reply ${JSON.stringify(msg.content)} (${finish})`);

  const stream = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0, stream: true,
                                                        stream_options: { include_usage: true } });
  let text = "", sfinish = null, usage = null, chunks = 0;
  for await (const ch of stream) {
    chunks++;
    if (ch.usage) usage = ch.usage;
    for (const choice of ch.choices) {
      text += choice.delta.content ?? "";
      if (choice.finish_reason) sfinish = choice.finish_reason;
    }
  }
  check(text === msg.content && sfinish === finish, `streamed chat (${chunks} chunks) equals the non-streamed reply`);
  check(usage && usage.completion_tokens === chat.usage.completion_tokens, `streamed usage ${JSON.stringify(usage)}`);

  try {
    await client.completions.create({ model, prompt: "x", n: 2 });
    check(false, "n = 2 is refused");
  } catch (e) {
    check(e.status === 400 && e.param === "n", `n = 2 is refused: ${e.status} ${e.message}`);
  }
  try {
    await new OpenAI({ baseURL: base, apiKey: "wrong-key", maxRetries: 0 }).models.list();
    check(false, "a wrong API key is refused");
  } catch (e) {
    check(e.status === 401 && e.code === "invalid_api_key", `a wrong API key is refused: ${e.status} ${e.message}`);
  }
  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id === model, `models list: ${models.data.map((m) => m.id)}`);
}

main().then(() => process.exit(failed ? 1 : 0), (e) => {
  console.log("FAIL: openai client:", e);
  process.exit(1);
});
