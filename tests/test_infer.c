/* KV-cached decoding: logits of anv_model_decode must equal the full forward's (anv_model_logits)
 * at every position, for a chunked prefill followed by one-token steps; a prompt decoded as one batch
 * must give the logits of the same prompt fed one token at a time, and a batch appended to a cache
 * that already holds tokens (at a position that is not a chunk boundary) must match too. All of it again on
 * int8 weights (anv_model_quantize_q8), whose logits must also stay near the fp32 ones. */
#include "anvil/model.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static void test_decode(anv_config_t cfg, int q8) {
    anv_model_t *m;
    CHECK(anv_model_create(&cfg, &m) == 0, "create: %s", anv_last_error());
    if (!m) return;
    printf("%s, %d heads, %d key/value heads, %s head, %s weights:\n", anv_arch_name(cfg.arch), cfg.n_head,
           cfg.n_kv_head, cfg.tie_embeddings ? "tied" : "untied", q8 ? "int8" : "fp32");
    anv_model_init(m, 5);
    /* Weights at twice the init scale, so attention is less uniform than at init. */
    float *p = anv_model_params(m);
    for (size_t i = 0; i < anv_model_n_params(m); i++) p[i] *= 2;
    const int T = 320, V = cfg.vocab_size, prefill = 270; /* prefill spans two chunks of 256 rows */
    int32_t tokens[320];
    anv_rng_t rng;
    anv_rng_seed(&rng, 9);
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)(anv_rng_u64(&rng) % (uint64_t)V);
    float *full = malloc((size_t)T * V * sizeof *full), *got = malloc((size_t)V * sizeof *got);
    CHECK(anv_model_logits(m, tokens, 1, T, full) == 0, "full forward: %s", anv_last_error());
    if (q8) {
        float *f32 = full;
        full = malloc((size_t)T * V * sizeof *full);
        CHECK(anv_model_quantize_q8(m, NULL) == 0, "quantize: %s", anv_last_error());
        CHECK(anv_model_logits(m, tokens, 1, T, full) == 0, "int8 forward: %s", anv_last_error());
        double e = check_rel_err(full, f32, (size_t)T * V);
        printf("infer: int8 weights vs fp32, full forward logits max rel err %.3g\n", e);
        CHECK(e < 4e-2, "int8 logits stray from fp32: %g", e); /* random weights at twice the init scale */
        float loss;
        CHECK(anv_model_forward(m, tokens, tokens + 1, NULL, 1, T - 1, &loss) != 0 &&
                  strstr(anv_last_error(), "int8 weights"),
              "training forward on int8 weights: %s", anv_last_error());
        free(f32);
    }
    anv_kv_cache_t *kv;
    CHECK(anv_kv_cache_create(m, T, &kv) == 0, "cache: %s", anv_last_error());
    double worst = 0;
    CHECK(anv_model_decode(m, kv, tokens, prefill, got) == 0, "prefill: %s", anv_last_error());
    worst = check_rel_err(got, full + (size_t)(prefill - 1) * V, (size_t)V);
    for (int t = prefill; t < T; t++) {
        CHECK(anv_model_decode(m, kv, tokens + t, 1, got) == 0, "decode %d: %s", t, anv_last_error());
        double e = check_rel_err(got, full + (size_t)t * V, (size_t)V);
        worst = e > worst ? e : worst;
    }
    printf("infer: cached decode (prefill %d + %d single steps) vs full forward logits, max rel err %.3g\n", prefill,
           T - prefill, worst);
    /* On int8 weights each row's activations are quantized: where the cached path's fp32 attention differs
     * from the full forward's in the last bit, a value on a rounding boundary takes the neighbouring int8
     * level, which moves the logits by about a level's share (llama.cpp's decoding does the same). */
    const double tolerance = q8 ? 4e-2 : 1e-5;
    CHECK(worst < tolerance, "decode logits match the full forward: %g", worst);
    CHECK(anv_kv_cache_len(kv) == T, "cache holds %d tokens", anv_kv_cache_len(kv));
    CHECK(anv_model_decode(m, kv, tokens, 1, got) != 0 && strstr(anv_last_error(), "exceed"),
          "overflowing the cache is an error: %s", anv_last_error());
    /* The prompt token by token (the one-row path) vs the batched prefill (the matrix-product path). */
    float *batched = malloc((size_t)V * sizeof *batched);
    anv_kv_cache_reset(kv);
    CHECK(anv_model_decode(m, kv, tokens, prefill, batched) == 0, "batched prefill");
    anv_kv_cache_reset(kv);
    for (int t = 0; t < prefill; t++) CHECK(anv_model_decode(m, kv, tokens + t, 1, got) == 0, "single step %d", t);
    double e_seq = check_rel_err(got, batched, (size_t)V);
    printf("infer: %d-token prompt token by token vs as one batch, last logits max rel err %.3g\n", prefill, e_seq);
    CHECK(e_seq < 1e-5, "token-by-token prompt matches the batch: %g", e_seq);
    /* 10 single steps, then a batch of 270 at position 10 (chunks at 10 and 266). */
    anv_kv_cache_reset(kv);
    for (int t = 0; t < 10; t++) CHECK(anv_model_decode(m, kv, tokens + t, 1, got) == 0, "single step %d", t);
    CHECK(anv_model_decode(m, kv, tokens + 10, 270, got) == 0, "batch after singles: %s", anv_last_error());
    double e_mid = check_rel_err(got, full + (size_t)279 * V, (size_t)V);
    printf("infer: 10 single steps + a 270-token batch vs full forward at position 279, max rel err %.3g\n", e_mid);
    CHECK(e_mid < tolerance, "batch appended mid-sequence matches the full forward: %g", e_mid);
    /* The logits of every position at once (the head in passes of fewer rows than a chunk). */
    float *all = malloc((size_t)T * V * sizeof *all);
    anv_kv_cache_reset(kv);
    CHECK(anv_model_decode_all(m, kv, tokens, T, all) == 0, "decode all: %s", anv_last_error());
    double e_all = check_rel_err(all, full, (size_t)T * V);
    printf("infer: logits of all %d positions in one call vs full forward, max rel err %.3g\n", T, e_all);
    CHECK(e_all < tolerance, "decode_all matches the full forward: %g", e_all);
    free(all);
    free(batched);
    /* After a reset the cache reproduces the first position exactly. */
    anv_kv_cache_reset(kv);
    CHECK(anv_model_decode(m, kv, tokens, 1, got) == 0, "decode after reset");
    double e0 = check_rel_err(got, full, (size_t)V);
    CHECK(e0 < 1e-5, "position 0 after reset: %g", e0);
    int32_t bad = V;
    CHECK(anv_model_decode(m, kv, &bad, 1, got) != 0, "token outside the vocabulary rejected");
    anv_kv_cache_free(kv);
    free(full);
    free(got);
    anv_model_free(m);
}

int main(void) {
    for (int q8 = 0; q8 < 2; q8++) {
        test_decode(anv_config_gpt2(2, 4, 64, 100, 320),
                    q8); /* n_layer, n_head, n_embd, vocab (padded to 128), block */
        /* Llama: grouped-query heads, an untied head, and Llama 3's RoPE scaling with a short original context
         * so that positions past it matter. */
        anv_config_t llama = anv_config_llama(2, 4, 2, 64, 96, 100, 320);
        llama.tie_embeddings = 0;
        llama.rope_scaling = (anv_rope_scaling_t){1, 4.0f, 1.0f, 4.0f, 32};
        test_decode(llama, q8);
    }
    return check_done("test_infer");
}
