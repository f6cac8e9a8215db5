// Loads a GGUF file in llama.cpp (through node-llama-cpp, CPU only) and renders a conversation with
// the chat template it carries (tokenizer.chat_template), by Hugging Face's own Jinja engine
// (@huggingface/jinja, the one transformers.js and node-llama-cpp use). Prints one JSON object:
//   template    the template text, as llama.cpp's metadata reader gives it
//   eot         tokenizer.ggml.eot_token_id and its token text (null when absent)
//   rendered    the conversation with add_generation_prompt false
//   prompt      the conversation without its last (assistant) turn, add_generation_prompt true
// Usage: node chat.mjs --model FILE.gguf --messages FILE.json   (a JSON array of {role, content})
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import {Template} from "@huggingface/jinja";
import {readFileSync} from "node:fs";

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
if (!args.model || !args.messages) {
    console.error("usage: node chat.mjs --model FILE.gguf --messages FILE.json");
    process.exit(2);
}
const llama = await getLlama({build: "never", gpu: false, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
const tok = model.fileInfo.metadata.tokenizer;
const source = tok.chat_template;
if (typeof source !== "string") {
    console.error(`${args.model}: no tokenizer.chat_template`);
    process.exit(1);
}
const eotId = tok.ggml.eot_token_id;
const eosText = tok.ggml.tokens[tok.ggml.eos_token_id];
const messages = JSON.parse(readFileSync(args.messages, "utf8"));
const template = new Template(source);
const render = (msgs, gen) => template.render({messages: msgs, add_generation_prompt: gen, eos_token: eosText,
                                              bos_token: tok.ggml.tokens[tok.ggml.bos_token_id]});
console.log(JSON.stringify({
    template: source,
    eot: eotId === undefined ? null : {id: eotId, text: tok.ggml.tokens[eotId]},
    rendered: render(messages, false),
    prompt: render(messages.slice(0, -1), true),
}));
await model.dispose();
