/* Inference speed of anv_model_decode, and the random-weight run it is measured on.
 *
 *   bench_infer make-run --encoder encoder.json --vocab-bpe vocab.bpe --out DIR [--preset gpt2-124m]
 *       writes a loadable run (Hugging Face layout: config.json, model.safetensors, tokenizer.json)
 *       with GPT-2 init weights (seed 1) and GPT-2's tokenizer.
 *   bench_infer time --run DIR [--threads 2] [--prompt 512] [--gen 128] [--gen-prompt 16] [--weights f32|q8]
 *       prompt: one decode call of `prompt` tokens into an empty cache (prefill), tokens/s;
 *       generation: `gen-prompt` tokens prefilled, then `gen` single-token decode steps, each feeding
 *       the argmax of the previous logits, tokens/s of those steps. Prints one JSON object.
 * Token ids are (i * 7919 + 13) mod vocab, as tools/llama_check/speed.mjs feeds llama.cpp. */
#include "anvil/hf_export.h"
#include "anvil/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg(int argc, char **argv, const char *name, const char *def) {
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

static int fail(void) {
    fprintf(stderr, "bench_infer: %s\n", anv_last_error());
    return 1;
}

static int make_run(int argc, char **argv) {
    const char *enc = arg(argc, argv, "--encoder", NULL), *bpe = arg(argc, argv, "--vocab-bpe", NULL);
    const char *out = arg(argc, argv, "--out", NULL), *preset = arg(argc, argv, "--preset", "gpt2-124m");
    if (!enc || !bpe || !out) {
        fprintf(stderr, "usage: bench_infer make-run --encoder encoder.json --vocab-bpe vocab.bpe --out DIR\n");
        return 2;
    }
    anv_config_t cfg;
    anv_tokenizer_t *tok = NULL;
    anv_model_t *m = NULL;
    if (anv_config_preset(preset, &cfg) != 0 || anv_tokenizer_load_gpt2(enc, bpe, &tok) != 0) return fail();
    if (anv_model_create(&cfg, &m) != 0) return anv_tokenizer_free(tok), fail();
    anv_model_init(m, 1);
    int rc = anv_hf_export(m, tok, out);
    anv_model_free(m);
    anv_tokenizer_free(tok);
    return rc != 0 ? fail() : 0;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int time_run(int argc, char **argv) {
    const char *run = arg(argc, argv, "--run", NULL);
    int threads = atoi(arg(argc, argv, "--threads", "2")), n_prompt = atoi(arg(argc, argv, "--prompt", "512"));
    int n_gen = atoi(arg(argc, argv, "--gen", "128")), n_gen_prompt = atoi(arg(argc, argv, "--gen-prompt", "16"));
    const char *weights = arg(argc, argv, "--weights", "f32");
    if (!run || n_prompt < 1 || n_gen < 1 || n_gen_prompt < 1) {
        fprintf(stderr, "usage: bench_infer time --run DIR [--threads 2] [--prompt 512] [--gen 128] [--gen-prompt 16] "
                        "[--weights f32|q8]\n");
        return 2;
    }
    anv_threads_set(threads);
    anv_model_t *m;
    anv_tokenizer_t *tok;
    if (anv_run_load(run, &m, &tok) != 0) return fail();
    if (!strcmp(weights, "q8") && anv_model_quantize_q8(m, NULL) != 0) return fail();
    const anv_config_t *cfg = anv_model_config(m);
    int V = cfg->vocab_size, len = n_prompt > n_gen_prompt + n_gen ? n_prompt : n_gen_prompt + n_gen;
    if (len > cfg->block_size) {
        fprintf(stderr, "bench_infer: %d tokens exceed block_size %d\n", len, cfg->block_size);
        return 1;
    }
    int32_t *ids = malloc((size_t)len * sizeof *ids);
    float *logits = malloc((size_t)V * sizeof *logits);
    anv_kv_cache_t *kv = NULL;
    int rc = 1;
    if (!ids || !logits || anv_kv_cache_create(m, cfg->block_size, &kv) != 0) goto done;
    for (int i = 0; i < len; i++) ids[i] = (int32_t)(((int64_t)i * 7919 + 13) % V);
    double t0 = anv_now();
    if (anv_model_decode(m, kv, ids, n_prompt, logits) != 0) goto done;
    double prompt_s = anv_now() - t0;
    anv_kv_cache_reset(kv);
    if (anv_model_decode(m, kv, ids, n_gen_prompt, logits) != 0) goto done;
    t0 = anv_now();
    for (int i = 0; i < n_gen; i++) {
        int32_t next = argmax(logits, V);
        if (anv_model_decode(m, kv, &next, 1, logits) != 0) goto done;
    }
    double gen_s = anv_now() - t0;
    printf("{\"threads\": %d, \"prompt_tokens\": %d, \"prompt_s\": %.4f, \"prompt_tps\": %.2f, "
           "\"gen_tokens\": %d, \"gen_s\": %.4f, \"gen_tps\": %.2f}\n",
           anv_threads_count(), n_prompt, prompt_s, n_prompt / prompt_s, n_gen, gen_s, n_gen / gen_s);
    rc = 0;
done:
    if (rc) fail();
    anv_kv_cache_free(kv);
    free(ids);
    free(logits);
    anv_model_free(m);
    anv_tokenizer_free(tok);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "make-run")) return make_run(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "time")) return time_run(argc, argv);
    fprintf(stderr, "usage: bench_infer make-run ... | bench_infer time ... (see bench/bench_infer.c)\n");
    return 2;
}
