// Times llama.cpp (node-llama-cpp's prebuilt CPU binaries) on a GGUF file, as bench/bench_infer.c
// times anvil: prompt = one evaluation of --prompt tokens into an empty sequence, tokens/s;
// generation = --gen-prompt tokens evaluated, then --gen tokens generated greedily one at a time,
// tokens/s of those. Token ids are (i * 7919 + 13) mod vocab. Prints one JSON object.
// Usage: node speed.mjs --model FILE.gguf [--threads 2] [--prompt 512] [--gen 128] [--gen-prompt 16]
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const args = {threads: "2", prompt: "512", gen: "128", "gen-prompt": "16"};
for (let i = 2; i < process.argv.length; i += 2) {
    const key = process.argv[i].replace(/^--/, "");
    if (!["model", "threads", "prompt", "gen", "gen-prompt"].includes(key) || i + 1 >= process.argv.length) {
        console.error(`speed.mjs: bad argument '${process.argv[i]}'`);
        process.exit(2);
    }
    args[key] = process.argv[i + 1];
}
if (!args.model) {
    console.error("usage: node speed.mjs --model FILE.gguf [--threads 2] [--prompt 512] [--gen 128] [--gen-prompt 16]");
    process.exit(2);
}
const threads = parseInt(args.threads, 10), nPrompt = parseInt(args.prompt, 10);
const nGen = parseInt(args.gen, 10), nGenPrompt = parseInt(args["gen-prompt"], 10);

const llama = await getLlama({build: "never", gpu: false, logLevel: LlamaLogLevel.error, maxThreads: threads});
const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
const context = await model.createContext({
    contextSize: model.trainContextSize,
    batchSize: Math.max(nPrompt, nGenPrompt),
    flashAttention: false,
    threads: {ideal: threads, min: threads},
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
});
const seq = context.getSequence();
const vocab = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 50257;
const ids = n => Array.from({length: n}, (_, i) => (i * 7919 + 13) % vocab);

let t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(ids(nPrompt));
const promptS = (performance.now() - t0) / 1000;
await seq.clearHistory();

const genPrompt = ids(nGenPrompt);
await seq.evaluateWithoutGeneratingNewTokens(genPrompt.slice(0, -1));
// The prompt's last token starts the generation; evaluate() then yields each next token (greedy)
// and feeds it back, one decode per token. Timed from the first generated token on, as anvil.
let got = -1; // decodes since the first yield
for await (const _ of seq.evaluate(genPrompt.slice(-1), {temperature: 0})) {
    if (++got === 0) t0 = performance.now();
    else if (got === nGen) break;
}
const genS = (performance.now() - t0) / 1000;
console.log(JSON.stringify({threads, prompt_tokens: nPrompt, prompt_s: +promptS.toFixed(4),
    prompt_tps: +(nPrompt / promptS).toFixed(2), gen_tokens: got, gen_s: +genS.toFixed(4),
    gen_tps: +(got / genS).toFixed(2)}));
await context.dispose();
await model.dispose();
await llama.dispose();
