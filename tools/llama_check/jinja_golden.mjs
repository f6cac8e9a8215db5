// Renders every template of tests/golden/jinja with every conversation of its conversations.json, with
// and without add_generation_prompt (bos_token "<s>", eos_token "</s>"), by Hugging Face's Jinja engine
// (@huggingface/jinja, transformers.js's), and writes what each gives to tests/golden/jinja/expected.json:
// [{template, conversation, add_generation_prompt, output} or {..., error: true}]. test_jinja renders the
// same with anvil's engine and compares.
// Usage: node jinja_golden.mjs DIR   (regenerate: tools/npm_cache.sh llama_check, then run it from there)
import {Template} from "@huggingface/jinja";
import {readFileSync, readdirSync, writeFileSync} from "node:fs";

const dir = process.argv[2];
const conversations = JSON.parse(readFileSync(`${dir}/conversations.json`, "utf8"));
const cases = [];
for (const name of readdirSync(dir).filter((f) => f.endsWith(".jinja")).sort()) {
    const template = new Template(readFileSync(`${dir}/${name}`, "utf8"));
    conversations.forEach((messages, conversation) => {
        for (const gen of [false, true]) {
            const c = {template: name, conversation, add_generation_prompt: gen};
            try {
                c.output = template.render({messages, add_generation_prompt: gen, bos_token: "<s>", eos_token: "</s>"});
            } catch (e) {
                c.error = true;
            }
            cases.push(c);
        }
    });
}
writeFileSync(`${dir}/expected.json`, JSON.stringify(cases, null, 1) + "\n");
console.log(`${cases.length} renderings, ${cases.filter((c) => c.error).length} raising`);
