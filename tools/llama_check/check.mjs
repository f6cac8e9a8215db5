// Loads a GGUF file in llama.cpp (through node-llama-cpp, CPU only, f32 KV cache, no flash attention)
// and reports, as one JSON object on stdout, what llama.cpp makes of a prompt:
//   prompt  llama.cpp's token ids of the prompt text (special-token text not parsed)
//   tokens  what is fed to the model: end-of-text, then the prompt (as `anvil sample` and `anvil logits` do)
//   logits  the raw next-token logits after them (whole vocabulary, by id)
//   greedy  --n tokens by argmax over raw logits (lowest id on ties), stopping after end-of-text
//   text    the greedy tokens detokenized
// With --anvil FILE (the JSON of `anvil logits`), it also prints the comparison to stderr and exits
// non-zero when the tokens differ or max|logit diff| / max|anvil logit| exceeds --tol; with --encode
// FILE (the output of `anvil tokenizer encode`), likewise when the prompt's ids differ from it. With
// --lora FILE, the context applies that LoRA adapter GGUF (scale 1) to the model.
// Usage: node check.mjs --model FILE.gguf --prompt TEXT [--n 32] [--anvil FILE] [--tol 5e-3] [--encode FILE]
//                       [--lora FILE]
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import {readFileSync} from "node:fs";

const args = {n: "32", tol: "5e-3"};
for (let i = 2; i < process.argv.length; i += 2) {
    const key = process.argv[i].replace(/^--/, "");
    if (!["model", "prompt", "n", "anvil", "tol", "encode", "lora"].includes(key) || i + 1 >= process.argv.length) {
        console.error(`check.mjs: bad argument '${process.argv[i]}'`);
        process.exit(2);
    }
    args[key] = process.argv[i + 1];
}
if (!args.model || args.prompt === undefined) {
    console.error("usage: node check.mjs --model FILE.gguf --prompt TEXT [--n 32] [--anvil FILE] [--tol 5e-3] [--encode FILE]");
    process.exit(2);
}

const llama = await getLlama({build: "never", gpu: false, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
const context = await model.createContext({
    contextSize: model.trainContextSize,
    flashAttention: false,
    threads: 1,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    ...(args.lora ? {lora: {adapters: [{filePath: args.lora}]}} : {}),
});
const seq = context.getSequence();
const eos = model.tokens.eos;

// Dense logits by token id from node-llama-cpp's Map.
function dense(map) {
    let max = 0;
    for (const id of map.keys()) max = Math.max(max, id);
    const out = new Array(max + 1).fill(0);
    for (const [id, v] of map) out[id] = v;
    return out;
}
function argmax(v) {
    let best = 0;
    for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
    return best;
}

const prompt = model.tokenize(args.prompt, false);
const tokens = eos === null || eos === undefined ? prompt : [eos, ...prompt];
const input = tokens.map((t, i) => (i === tokens.length - 1 ? [t, {generateNext: {logits: true}}] : t));
let res = await seq.controlledEvaluate(input);
const logits = dense(res[tokens.length - 1].next.logits);
const greedy = [];
let next = logits;
const n = parseInt(args.n, 10);
while (greedy.length < n && tokens.length + greedy.length < model.trainContextSize) {
    const t = argmax(next);
    greedy.push(t);
    if (t === eos) break;
    res = await seq.controlledEvaluate([[t, {generateNext: {logits: true}}]]);
    next = dense(res[0].next.logits);
}
const result = {prompt, tokens, logits, greedy, text: model.detokenize(greedy, false)};
console.log(JSON.stringify(result));

let failed = false;
if (args.anvil) {
    const ref = JSON.parse(readFileSync(args.anvil, "utf8"));
    const sameTokens = JSON.stringify(ref.tokens) === JSON.stringify(tokens);
    let diff = 0, scale = 0;
    for (let i = 0; i < ref.logits.length; i++) {
        diff = Math.max(diff, Math.abs((logits[i] ?? NaN) - ref.logits[i]) || (logits[i] === undefined ? Infinity : 0));
        scale = Math.max(scale, Math.abs(ref.logits[i]));
    }
    const rel = diff / scale;
    console.error(`llama.cpp vs anvil: prompt tokens ${sameTokens ? "identical" : "DIFFER"} (${tokens.length}: ` +
        `llama.cpp ${JSON.stringify(tokens.slice(0, 12))}, anvil ${JSON.stringify(ref.tokens.slice(0, 12))}); ` +
        `vocab ${ref.logits.length} vs ${logits.length}; last-position logits max abs diff ${diff.toExponential(3)}, ` +
        `max |logit| ${scale.toFixed(3)}, relative ${rel.toExponential(3)} (tol ${args.tol}); ` +
        `argmax anvil ${argmax(ref.logits)} llama.cpp ${argmax(logits)}`);
    failed = !sameTokens || !(rel <= parseFloat(args.tol)) || ref.logits.length !== logits.length;
}
if (args.encode) {
    const ids = readFileSync(args.encode, "utf8").trim().split(/\s+/).filter(x => x !== "").map(Number);
    const same = JSON.stringify(ids) === JSON.stringify(prompt);
    console.error(`tokenize: anvil tokenizer encode vs llama.cpp: ${ids.length} vs ${prompt.length} ids, ` +
        `${same ? "identical" : "DIFFER: anvil " + JSON.stringify(ids) + " llama.cpp " + JSON.stringify(prompt)}`);
    failed = failed || !same;
}
await context.dispose();
await model.dispose();
await llama.dispose();
process.exit(failed ? 1 : 0);
