/* anvil sample: KV-cached generation from a run, streamed to stdout as it is produced. */
#include "cli.h"

#include "anvil/kernels.h"
#include "anvil/sampler.h"
#include "anvil/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "anvil sample --run RUN [--prompt TEXT] [options]\n"
    "Writes the continuation of the prompt to stdout. The prompt is preceded by the end-of-text token,\n"
    "as every training document is; a prompt longer than the model's block_size keeps its last\n"
    "block_size tokens (with a warning), and a generation longer than block_size slides its window.";

typedef struct {
    anv_model_t *m;
    anv_kv_cache_t *kv;
    int32_t *ctx; /* (block_size) the tokens in the cache */
    int block;
} window_t;

/* Appends one token, sliding the window when the cache is full: the last half block is re-encoded. */
static int feed(window_t *w, const int32_t *tokens, int n, float *logits) {
    int len = anv_kv_cache_len(w->kv);
    if (len + n > w->block) {
        int keep = w->block / 2 > n ? w->block / 2 - n : 0;
        memmove(w->ctx, w->ctx + len - keep, (size_t)keep * sizeof *w->ctx);
        anv_kv_cache_reset(w->kv);
        memcpy(w->ctx + keep, tokens, (size_t)n * sizeof *tokens);
        return anv_model_decode(w->m, w->kv, w->ctx, keep + n, logits);
    }
    memcpy(w->ctx + len, tokens, (size_t)n * sizeof *tokens);
    return anv_model_decode(w->m, w->kv, tokens, n, logits);
}

static int generate(anv_model_t *m, const anv_tokenizer_t *tok, const char *prompt, int max_tokens,
                    const anv_sampler_config_t *sc) {
    const anv_config_t *cfg = anv_model_config(m);
    int block = cfg->block_size, rc = -1;
    int64_t eot = anv_tokenizer_eot(tok);
    anv_tokens_t ids = {0};
    anv_buf_t out = {0};
    anv_sampler_t s = {0};
    window_t w = {m, NULL, NULL, block};
    float *logits = anv_alloc((size_t)cfg->vocab_size * sizeof *logits, "logits");
    w.ctx = anv_alloc((size_t)block * sizeof *w.ctx, "context");
    if (!logits || !w.ctx || anv_kv_cache_create(m, block, &w.kv) != 0 ||
        anv_sampler_init(&s, sc, cfg->vocab_size) != 0)
        goto done;
    if (eot >= 0 && anv_tokens_push(&ids, (uint32_t)eot) != 0) goto done;
    if (anv_tokenizer_encode(tok, prompt, strlen(prompt), &ids) != 0) goto done;
    size_t start = 0;
    if (ids.len > (size_t)block) {
        anv_log(ANV_LOG_WARN, "the prompt has %zu tokens; keeping its last %d (the model's block_size)", ids.len,
                block);
        start = ids.len - (size_t)block;
    }
    for (size_t i = start; i < ids.len; i++) w.ctx[i - start] = (int32_t)ids.ids[i];
    if (anv_model_decode(m, w.kv, w.ctx, (int)(ids.len - start), logits) != 0) goto done;
    double t0 = anv_now();
    int produced = 0;
    for (; produced < max_tokens; produced++) {
        int32_t next = anv_sampler_next(&s, logits);
        if (next == eot) break;
        uint32_t id = (uint32_t)next;
        if (anv_tokenizer_decode(tok, &id, 1, &out) != 0) goto done;
        size_t ready = anv_utf8_ready((const unsigned char *)out.data, out.len);
        if (ready) {
            fwrite(out.data, 1, ready, stdout);
            fflush(stdout);
            memmove(out.data, out.data + ready, out.len - ready);
            out.len -= ready;
        }
        if (produced + 1 < max_tokens && feed(&w, &next, 1, logits) != 0) goto done;
    }
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    if (isatty(1)) fputc('\n', stdout);
    fflush(stdout);
    double secs = anv_now() - t0;
    fprintf(stderr, "sample: %d tokens in %.2f s (%.1f tokens/s)\n", produced, secs, produced / (secs > 0 ? secs : 1));
    rc = 0;
done:
    anv_sampler_free(&s);
    anv_kv_cache_free(w.kv);
    anv_free(w.ctx);
    anv_free(logits);
    anv_tokens_free(&ids);
    anv_buf_free(&out);
    return rc;
}

int cmd_sample(int argc, char **argv) {
    const char *run = NULL, *prompt = "", *device = NULL, *weights = NULL;
    int max_tokens = 200, top_k = 0, threads = 0;
    double temperature = 0.8, top_p = 1.0;
    long long seed = 1337;
    opt_t opts[] = {
        {"--run", OPT_STRING, &run, "run directory (from anvil train or import)"},
        {"--prompt", OPT_STRING, &prompt, "text to continue (default: empty)"},
        {"--max-tokens", OPT_INT, &max_tokens, "tokens to generate at most (default 200)"},
        {"--temperature", OPT_DOUBLE, &temperature, "0 = greedy (default 0.8)"},
        {"--top-k", OPT_INT, &top_k, "sample among the k most likely tokens, 0 = all (default 0)"},
        {"--top-p", OPT_DOUBLE, &top_p, "nucleus sampling mass, 1 = all (default 1)"},
        {"--seed", OPT_LONG, &seed, "sampling seed (default 1337)"},
        {"--threads", OPT_INT, &threads, "threads (default: all cores)"},
        {"--device", OPT_STRING, &device, "cpu (default) or cuda"},
        {"--weights", OPT_STRING, &weights, "f32 (default) or q8: int8 matrices, about 4x less to read per token"},
    };
    const opt_range_t ranges[] = {
        {"--max-tokens", 0, 1 << 24},      {"--temperature", 0, 100},
        {"--top-k", 0, 1 << 24},           {"--top-p", 0, 1},
        {"--seed", 0, 9007199254740992.0}, {"--threads", 0, cli_max_threads()},
    };
    int rc = cli_parse_bounded(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), ranges,
                               (int)(sizeof ranges / sizeof ranges[0]), usage, NULL);
    if (rc != 0) return rc > 0 ? 0 : cli_fail();
    if (!run) return anv_error("--run RUN is required"), cli_fail();
    if (max_tokens < 0) return anv_error("--max-tokens must be >= 0, got %d", max_tokens), cli_fail();
    if (device && anv_device_set(device) != 0) return cli_fail();
    anv_threads_set(threads);
    anv_model_t *m;
    anv_tokenizer_t *tok;
    if (anv_run_load(run, &m, &tok) != 0) return cli_fail();
    if (cli_weights(m, weights) != 0) {
        anv_model_free(m);
        anv_tokenizer_free(tok);
        return cli_fail();
    }
    anv_sampler_config_t sc = {(float)temperature, top_k, (float)top_p, (uint64_t)seed};
    rc = generate(m, tok, prompt, max_tokens, &sc);
    anv_model_free(m);
    anv_tokenizer_free(tok);
    return rc == 0 ? 0 : cli_fail();
}
