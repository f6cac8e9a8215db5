// Load test of `anvil serve` (tests/e2e_serve.sh): TOTAL greedy completions from CONC concurrent
// clients (every fourth one streamed), each answer compared with anvil sample's text for its prompt.
// Prints requests/s and latency percentiles; exits 1 on any wrong or failed answer.
// Usage: node load.cjs BASE_URL API_KEY MODEL CASES_JSON [TOTAL=200] [CONC=8]   (Node >= 18, no packages)
"use strict";
const fs = require("fs");

const [base, apiKey, model, casesPath, totalArg, concArg] = process.argv.slice(2);
const cases = JSON.parse(fs.readFileSync(casesPath, "utf8"));
const total = Number(totalArg ?? 200), conc = Number(concArg ?? 8);
const headers = { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` };

/* Text of an SSE completion stream; throws on bad framing. */
function sseText(body) {
  if (!body.endsWith("\n\n")) throw new Error("stream does not end with a blank line");
  const events = body.slice(0, -2).split("\n\n");
  if (events[events.length - 1] !== "data: [DONE]") throw new Error("stream does not end with data: [DONE]");
  let text = "";
  for (const ev of events.slice(0, -1)) {
    if (!ev.startsWith("data: ") || ev.includes("\n")) throw new Error(`bad event ${JSON.stringify(ev)}`);
    text += JSON.parse(ev.slice(6)).choices[0].text;
  }
  return text;
}

async function one(i) {
  const c = cases.items[i % cases.items.length], stream = i % 4 === 3;
  const res = await fetch(`${base}/completions`, {
    method: "POST", headers,
    body: JSON.stringify({ model, prompt: c.prompt, max_tokens: cases.max_tokens, temperature: 0, stream }),
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`status ${res.status}: ${body}`);
  const text = stream ? sseText(body) : JSON.parse(body).choices[0].text;
  if (text !== c.expected) throw new Error(`prompt ${JSON.stringify(c.prompt)}: got ${JSON.stringify(text)}, expected ${JSON.stringify(c.expected)}`);
}

async function main() {
  const lat = [];
  let next = 0, wrong = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => {
    for (let i; (i = next++) < total;) {
      const s = performance.now();
      try {
        await one(i);
      } catch (e) {
        if (++wrong <= 5) console.log(`FAIL: load: request ${i}: ${e.message}`);
      }
      lat.push(performance.now() - s);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1);
  console.log(`load: ${total} requests (${cases.max_tokens} tokens each, 1 in 4 streamed) from ${conc} clients in ` +
              `${secs.toFixed(2)} s: ${(total / secs).toFixed(1)} requests/s, latency p50 ${pct(0.5)} ms, ` +
              `p99 ${pct(0.99)} ms; ${total - wrong}/${total} answers equal anvil sample's`);
  process.exit(wrong ? 1 : 0);
}
main();
