/* GPT-2 model against PyTorch (tests/golden/gpt_*.safetensors, made by tools/torch_reference.py):
 * logits, loss, every parameter gradient, and 10 AdamW steps with clipping and warmup + cosine; plus
 * gradient accumulation, determinism, initialisation, presets, config files and bad input. */
#include "anvil/model.h"
#include "anvil/optim.h"
#include "check.h"
#include "golden_io.h"
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The golden file's model config, from its metadata. */
/* Creates the golden file's model and loads tensors "<prefix><HF name>" into its parameter block. */
static anv_model_t *load_model(anv_safetensors_t *st, const char *prefix) {
    anv_config_t cfg = golden_config(st);
    anv_model_t *m;
    if (anv_model_create(&cfg, &m)) {
        fprintf(stderr, "%s\n", anv_last_error());
        exit(1);
    }
    char name[128];
    for (int i = 0; i < anv_model_n_tensors(m); i++) {
        const anv_param_t *t = anv_model_tensor(m, i);
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        int64_t shape[2] = {t->shape[0], t->shape[1]};
        CHECK(anv_safetensors_read_f32(st, name, t->ndim, shape, anv_model_params(m) + t->offset) == 0, "%s",
              anv_last_error());
    }
    return m;
}

/* Compares every tensor of block (params or grads layout) with golden "<prefix><name>"; returns the
 * largest error. */
static double compare_tensors(anv_safetensors_t *st, anv_model_t *m, const float *block, const char *prefix,
                              double tol) {
    double worst = 0;
    char name[128];
    for (int i = 0; i < anv_model_n_tensors(m); i++) {
        const anv_param_t *t = anv_model_tensor(m, i);
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        double e = golden_compare(st, name, name, block + t->offset, t->numel, tol);
        worst = e > worst ? e : worst;
    }
    return worst;
}

/* The padding rows of wte and of an untied head (and of their gradients) stay exactly zero: the floats
 * between the end of each tensor and the start of the next (or the block's end). */
static void check_padding(anv_model_t *m, const char *when) {
    int bad = 0;
    for (int t = 0; t < anv_model_n_tensors(m); t++) {
        const anv_param_t *p = anv_model_tensor(m, t);
        size_t end = t + 1 < anv_model_n_tensors(m) ? anv_model_tensor(m, t + 1)->offset : anv_model_n_params(m);
        for (size_t i = p->offset + p->numel; i < end; i++)
            bad += anv_model_params(m)[i] != 0.0f || anv_model_grads(m)[i] != 0.0f;
    }
    CHECK(bad == 0, "%s: %d non-zero padding values in the embedding or head rows or their gradients", when, bad);
}

static void test_golden(const char *file) {
    anv_safetensors_t *st = golden_open(file);
    anv_model_t *m = load_model(st, "init.");
    const anv_config_t *c = anv_model_config(m);
    int B = golden_meta_int(st, "B"), T = golden_meta_int(st, "T"), V = c->vocab_size;
    printf("%s: %s L=%d NH=%d NKV=%d C=%d F=%d V=%d (padded %d) block=%d %s head, B=%d T=%d\n", file,
           anv_arch_name(c->arch), c->n_layer, c->n_head, c->n_kv_head, c->n_embd, c->n_ff, V,
           anv_config_padded_vocab(c), c->block_size, c->tie_embeddings ? "tied" : "untied", B, T);
    if (c->arch == ANV_ARCH_LLAMA) {
        float inv_freq[64];
        anv_config_rope_inv_freq(c, inv_freq);
        golden_compare(st, "RoPE inv_freq", "inv_freq", inv_freq, (size_t)anv_config_head_size(c) / 2, 1e-6);
    }
    int32_t *inputs = golden_i32(st, "inputs", NULL), *targets = golden_i32(st, "targets", NULL);

    float *logits = malloc(sizeof(float) * B * T * V);
    CHECK(anv_model_logits(m, inputs, B, T, logits) == 0, "%s", anv_last_error());
    golden_compare(st, "logits", "logits", logits, (size_t)B * T * V, 1e-5);

    float loss;
    anv_model_zero_grad(m);
    CHECK(anv_model_forward(m, inputs, targets, NULL, B, T, &loss) == 0, "%s", anv_last_error());
    golden_compare(st, "loss", "loss", &loss, 1, 1e-5);
    CHECK(anv_model_backward(m, 1.0f) == 0, "%s", anv_last_error());
    compare_tensors(st, m, anv_model_grads(m), "grad.", 1e-4);
    check_padding(m, "after backward");

    /* Determinism: the same forward and backward again gives the same bits. */
    size_t n = anv_model_n_params(m);
    float *g1 = malloc(sizeof(float) * n);
    memcpy(g1, anv_model_grads(m), sizeof(float) * n);
    anv_model_zero_grad(m);
    anv_model_forward(m, inputs, targets, NULL, B, T, &loss);
    anv_model_backward(m, 1.0f);
    CHECK(!memcmp(g1, anv_model_grads(m), sizeof(float) * n), "gradients differ between identical runs");

    /* Accumulation: two half-scaled backward passes add up to one full one. */
    anv_model_zero_grad(m);
    for (int k = 0; k < 2; k++) {
        anv_model_forward(m, inputs, targets, NULL, B, T, &loss);
        anv_model_backward(m, 0.5f);
    }
    double acc_err = check_rel_err(anv_model_grads(m), g1, n);
    printf("  %-44s rel err %.2e (tol 1e-06)\n", "2 x backward(0.5) vs backward(1)", acc_err);
    CHECK(acc_err <= 1e-6, "accumulated gradients rel err %.3e", acc_err);
    free(g1);

    /* Training: 10 steps of AdamW with global-norm clipping and warmup + cosine. */
    anv_model_free(m);
    m = load_model(st, "init.");
    int steps = golden_meta_int(st, "steps");
    anv_adamw_config_t oc = golden_adamw_config(st);
    anv_schedule_t sched = golden_schedule(st);
    float clip = (float)golden_meta_double(st, "clip");
    anv_adamw_t opt;
    CHECK(anv_adamw_init(&opt, anv_model_n_params(m)) == 0, "%s", anv_last_error());
    float *losses = malloc(sizeof(float) * steps), *norms = malloc(sizeof(float) * steps);
    float *lrs = malloc(sizeof(float) * steps);
    for (int s = 0; s < steps; s++) {
        anv_model_zero_grad(m);
        anv_model_forward(m, inputs, targets, NULL, B, T, &losses[s]);
        anv_model_backward(m, 1.0f);
        norms[s] = anv_clip_grad_norm(anv_model_grads(m), anv_model_n_params(m), clip);
        lrs[s] = anv_schedule_lr(&sched, s);
        anv_adamw_step(&opt, m, &oc, lrs[s]);
    }
    golden_compare(st, "10 losses", "losses", losses, steps, 1e-5);
    golden_compare(st, "10 gradient norms (before clipping)", "grad_norms", norms, steps, 1e-5);
    golden_compare(st, "10 learning rates", "lrs", lrs, steps, 1e-6);
    compare_tensors(st, m, anv_model_params(m), "final.", 1e-4);
    check_padding(m, "after 10 AdamW steps");
    anv_adamw_free(&opt);
    free(losses), free(norms), free(lrs), free(logits), free(inputs), free(targets);
    anv_model_free(m);
    anv_safetensors_close(st);
}

/* Other thread counts agree to rounding; an ignored-everything batch has loss 0 and no gradient. */
static void test_threads_and_ignored(void) {
    anv_config_t cfg = anv_config_gpt2(2, 2, 32, 100, 16);
    anv_model_t *m;
    CHECK(anv_model_create(&cfg, &m) == 0, "%s", anv_last_error());
    anv_model_init(m, 3);
    int32_t in[2 * 16], tg[2 * 16];
    for (int i = 0; i < 32; i++) in[i] = (i * 37) % 100, tg[i] = (i * 11 + 5) % 100;
    int threads = anv_threads_count();
    float l_many, l_one;
    anv_model_forward(m, in, tg, NULL, 2, 16, &l_many);
    anv_threads_set(1);
    anv_model_forward(m, in, tg, NULL, 2, 16, &l_one);
    anv_threads_set(threads);
    double e = fabs((double)l_many - l_one) / fabs((double)l_one);
    printf("  %-44s rel err %.2e\n", "loss, 1 thread vs default threads", e);
    CHECK(e < 1e-6, "loss differs across thread counts by %.3e", e);

    for (int i = 0; i < 32; i++) tg[i] = -1;
    float loss = 1;
    anv_model_zero_grad(m);
    CHECK(anv_model_forward(m, in, tg, NULL, 2, 16, &loss) == 0 && loss == 0.0f, "all-ignored loss %g", loss);
    CHECK(anv_model_backward(m, 1.0f) == 0, "%s", anv_last_error());
    int nz = 0;
    for (size_t i = 0; i < anv_model_n_params(m); i++) nz += anv_model_grads(m)[i] != 0.0f;
    CHECK(nz == 0, "all-ignored batch left %d non-zero gradients", nz);
    anv_model_free(m);
}

/* Enough token rows x vocabulary for the LM head and cross-entropy to run in two row blocks (the
 * goldens fit in one): the loss against one computed in double from the full logits, and the head's
 * share of the gradients (wte rows no input uses; ln_f.bias, the row sum of d lnf) against the same
 * formulas in double: d logits = (softmax - onehot) / count, dwte = dlogits^T lnf, dlnf = dlogits wte. */
static void test_vocab_chunks(void) {
    enum { B = 8, T = 256, N = B * T, V = 9000, C = 16 };
    anv_config_t cfg = anv_config_gpt2(1, 2, C, V, T);
    anv_model_t *m;
    CHECK(anv_model_create(&cfg, &m) == 0, "%s", anv_last_error());
    anv_model_init(m, 5);
    int32_t *in = malloc(sizeof(int32_t) * N), *tg = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) in[i] = (i * 7) % 500, tg[i] = i % 13 == 0 ? -1 : (i * 7919) % V;
    float loss;
    anv_model_zero_grad(m);
    CHECK(anv_model_forward(m, in, tg, NULL, B, T, &loss) == 0 && anv_model_backward(m, 1.0f) == 0, "%s",
          anv_last_error());
    float *lnf = malloc(sizeof(float) * N * C), *logits = malloc(sizeof(float) * (size_t)N * V);
    memcpy(lnf, m->acts.lnf, sizeof(float) * N * C);
    CHECK(anv_model_logits(m, in, B, T, logits) == 0, "%s", anv_last_error());
    double *dwte = calloc((size_t)V * C, sizeof(double)), dlnf_sum[C] = {0}, total = 0;
    int count = 0;
    for (int n = 0; n < N; n++) count += tg[n] >= 0;
    for (int n = 0; n < N; n++) {
        if (tg[n] < 0) continue;
        const float *row = logits + (size_t)n * V;
        double mx = row[0], sum = 0;
        for (int v = 0; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        for (int v = 0; v < V; v++) sum += exp(row[v] - mx);
        double lse = mx + log(sum);
        total += lse - row[tg[n]];
        for (int v = 0; v < V; v++) {
            double d = (exp(row[v] - lse) - (v == tg[n])) / count;
            for (int c = 0; c < C; c++) {
                dwte[(size_t)v * C + c] += d * lnf[(size_t)n * C + c];
                dlnf_sum[c] += d * m->w.wte[(size_t)v * C + c];
            }
        }
    }
    double ref_loss = total / count;
    double e = fabs(loss - ref_loss) / ref_loss;
    printf("  %-44s rel err %.2e\n", "loss, 2 row blocks of the head vs full logits", e);
    CHECK(e < 1e-5, "chunked loss %g vs %g", loss, ref_loss);
    float eval_loss = -1;
    CHECK(anv_model_loss(m, in, tg, NULL, B, T, &eval_loss) == 0 && eval_loss == loss,
          "anv_model_loss %g vs forward %g", eval_loss, loss);
    CHECK(anv_model_backward(m, 1.0f) != 0 && strstr(anv_last_error(), "no training forward"),
          "backward after anv_model_loss: %s", anv_last_error());
    printf("  %-44s %s\n", "anv_model_loss == forward's loss, no backward", eval_loss == loss ? "equal" : "DIFFERENT");
    double num = 0, den = 0;
    for (int v = 500; v < V; v++) /* rows no input token uses: the head's gradient only */
        for (int c = 0; c < C; c++) {
            double r = dwte[(size_t)v * C + c], d = m->g.wte[(size_t)v * C + c] - r;
            num += d * d, den += r * r;
        }
    e = sqrt(num / den);
    printf("  %-44s rel err %.2e\n", "dwte (head), 2 row blocks", e);
    CHECK(e < 1e-4, "chunked dwte rel err %.3e", e);
    num = den = 0;
    for (int c = 0; c < C; c++) {
        double d = m->g.norm_b[c] - dlnf_sum[c];
        num += d * d, den += dlnf_sum[c] * dlnf_sum[c];
    }
    e = sqrt(num / den);
    printf("  %-44s rel err %.2e\n", "ln_f.bias grad (row sum of dlnf), 2 row blocks", e);
    CHECK(e < 1e-4, "chunked ln_f.bias grad rel err %.3e", e);
    free(in), free(tg), free(lnf), free(logits), free(dwte);
    anv_model_free(m);
}

static void test_init(void) {
    anv_config_t cfg = anv_config_gpt2(4, 4, 64, 1000, 32);
    anv_model_t *a = NULL, *b = NULL;
    if (anv_model_create(&cfg, &a) || anv_model_create(&cfg, &b)) {
        CHECK(0, "%s", anv_last_error());
        anv_model_free(a);
        return;
    }
    anv_model_init(a, 42);
    anv_model_init(b, 42);
    size_t n = anv_model_n_params(a);
    CHECK(!memcmp(anv_model_params(a), anv_model_params(b), n * sizeof(float)), "same seed, different weights");
    anv_model_init(b, 43);
    CHECK(memcmp(anv_model_params(a), anv_model_params(b), n * sizeof(float)), "different seeds, same weights");
    CHECK(n == (size_t)1024 * 64 + anv_config_num_params(&cfg) - (size_t)1000 * 64, "block %zu floats", n);
    for (int i = 0; i < anv_model_n_tensors(a); i++) {
        const anv_param_t *t = anv_model_tensor(a, i);
        const float *p = anv_model_params(a) + t->offset;
        double s = 0, s2 = 0;
        for (size_t j = 0; j < t->numel; j++) s += p[j], s2 += (double)p[j] * p[j];
        double mean = s / t->numel, sd = sqrt(s2 / t->numel - mean * mean);
        double want_sd = t->ndim == 1 ? 0 : strstr(t->name, "c_proj.weight") ? 0.02 / sqrt(8.0) : 0.02;
        double want_mean = t->ndim == 1 && strstr(t->name, ".weight") ? 1.0 : 0.0;
        CHECK(fabs(sd - want_sd) <= 0.1 * want_sd + 1e-12 && fabs(mean - want_mean) < 2e-3, "%s: mean %g sd %g",
              t->name, mean, sd);
        CHECK(t->decay == (t->ndim == 2), "%s: decay %d", t->name, t->decay);
    }
    printf("  init: N(0, 0.02) weights, N(0, 0.02/sqrt(2L)) residual projections, LayerNorm 1/0, biases 0\n");
    check_padding(a, "after init");
    const anv_param_t *wte = anv_model_tensor(a, 0);
    CHECK(!strcmp(wte->name, "transformer.wte.weight") && wte->shape[0] == 1000 && wte->numel == 64000,
          "wte %s (%d, %d)", wte->name, wte->shape[0], wte->shape[1]);
    CHECK(!strcmp(anv_model_tensor(a, 4)->name, "transformer.h.0.attn.c_attn.weight") &&
              anv_model_tensor(a, 4)->shape[1] == 192,
          "tensor 4 is %s", anv_model_tensor(a, 4)->name);
    CHECK(anv_model_n_tensors(a) == 2 + 12 * 4 + 2 && anv_model_tensor(a, 100) == NULL, "tensor count");
    anv_model_free(a);
    anv_model_free(b);
}

static void test_config(void) {
    static const struct {
        const char *name;
        size_t params;
    } presets[] = {{"tiny", 7259008},           {"small", 30142848},        {"gpt2-124m", 124439808},
                   {"gpt2-350m", 354823168},    {"llama-tiny", 7220480},    {"llama-small", 28740864},
                   {"smollm2-135m", 134515008}, {"llama3.2-1b", 1235814400}};
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        anv_config_t c;
        CHECK(anv_config_preset(presets[i].name, &c) == 0, "%s", anv_last_error());
        size_t p = anv_config_num_params(&c), body = p - (size_t)c.vocab_size * c.n_embd;
        printf("  preset %-12s %-5s L=%2d NH=%2d NKV=%2d C=%4d F=%4d V=%6d block=%4d: %zu params (%zu without wte)\n",
               presets[i].name, anv_arch_name(c.arch), c.n_layer, c.n_head, c.n_kv_head, c.n_embd, c.n_ff, c.vocab_size,
               c.block_size, p, body);
        CHECK(p == presets[i].params, "%s: %zu params, expected %zu", presets[i].name, p, presets[i].params);
    }
    anv_config_t c;
    CHECK(anv_config_preset("huge", &c) != 0 && strstr(anv_last_error(), "huge"), "%s", anv_last_error());
    anv_config_preset("gpt2-124m", &c);
    CHECK(anv_config_padded_vocab(&c) == 50304, "padded vocab %d", anv_config_padded_vocab(&c));
    CHECK(anv_model_flops_per_token(&c, 1024) == 6.0 * 124439808 + 12.0 * 12 * 768 * 1024, "flops per token");

    anv_config_t bad = anv_config_gpt2(2, 3, 100, 50, 16);
    CHECK(anv_config_validate(&bad, "config.json") != 0 &&
              !strcmp(anv_last_error(), "config.json: n_embd 100 is not divisible by n_head 3"),
          "%s", anv_last_error());
    anv_config_t zero = anv_config_gpt2(0, 1, 8, 50, 16);
    CHECK(anv_config_validate(&zero, "x.json") != 0 && strstr(anv_last_error(), "x.json: n_layer 0"), "%s",
          anv_last_error());
    anv_model_t *m;
    CHECK(anv_model_create(&bad, &m) != 0 && m == NULL, "model from a bad config");

    char path[256];
    snprintf(path, sizeof path, "/tmp/anvil_test_model_%d.json", (int)getpid());
    anv_config_t small = anv_config_gpt2(3, 2, 16, 321, 24), back;
    CHECK(anv_config_save(&small, path) == 0, "%s", anv_last_error());
    char why[128];
    CHECK(anv_config_load(path, &back) == 0 && anv_config_equal(&small, &back, why, sizeof why),
          "config round trip: %s", why);
    back.n_ff = 50;
    CHECK(!anv_config_equal(&small, &back, why, sizeof why) && !strcmp(why, "n_ff: 64 against 50"), "difference: %s",
          why);
    CHECK(anv_config_validate(&back, "c.json") != 0 && strstr(anv_last_error(), "c.json: n_inner must be"), "%s",
          anv_last_error());
    static const char *bad_json[] = {
        "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 16, \"vocab_size\": 10}",                      /* no block */
        "{\"n_layer\": 2.5, \"n_head\": 2, \"n_embd\": 16, \"vocab_size\": 10, \"block_size\": 8}", /* fraction */
        "{\"n_layer\": 1e300, \"n_head\": 2, \"n_embd\": 16, \"vocab_size\": 10, \"block_size\": 8}",
        "{\"n_layer\": \"2\", \"n_head\": 2, \"n_embd\": 16, \"vocab_size\": 10, \"block_size\": 8}",
        "{\"n_layer\": 2, \"n_head\": 3, \"n_embd\": 16, \"vocab_size\": 10, \"block_size\": 8}",
        "[1, 2]",
        "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 16, \"vocab_size\": 10, \"block_size\": 8, \"n_inner\": 32}",
        "{\"n_layer\":2,\"n_head\":2,\"n_embd\":16,\"vocab_size\":9,\"block_size\":8,\"tie_word_embeddings\":0}",
    };
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        anv_write_file_atomic(path, bad_json[i], strlen(bad_json[i]));
        CHECK(anv_config_load(path, &back) != 0 && strstr(anv_last_error(), path), "bad config %zu accepted: %s", i,
              anv_last_error());
        if (i == 0) printf("  bad config: %s\n", anv_last_error());
    }
    /* Hugging Face GPT-2 config.json: n_positions instead of block_size */
    const char *hf = "{\"n_layer\": 12, \"n_head\": 12, \"n_embd\": 768, \"vocab_size\": 50257, \"n_positions\": 1024,"
                     " \"n_ctx\": 1024, \"model_type\": \"gpt2\"}";
    anv_write_file_atomic(path, hf, strlen(hf));
    CHECK(anv_config_load(path, &back) == 0 && back.block_size == 1024 && back.n_embd == 768, "HF config: %s",
          anv_last_error());
    unlink(path);
}

/* Packed rows (several sequences per row, kernel_list.h) compute what the sequences compute one per
 * row: 7 examples of 3 to 70 tokens (some targets ignored, as fine-tuning prompts are) packed into 2 rows
 * of 150 with padding, across the CPU attention's 64-row blocks, against each example alone (B = 1,
 * T = its length), its gradients weighted by its share of the targets: the loss and every gradient. */
static void test_packing(const anv_config_t *cfg, const char *name) {
    enum { B = 2, T = 150, EXAMPLES = 7 };
    static const int len[EXAMPLES] = {50, 40, 45, 7, 70, 60, 3}, row_of[EXAMPLES] = {0, 0, 0, 0, 1, 1, 1};
    anv_model_t *m;
    CHECK(anv_model_create(cfg, &m) == 0, "%s", anv_last_error());
    anv_model_init(m, 11);
    int32_t in[B * T], tg[B * T], st[B * T], at[EXAMPLES];
    int used[B] = {0, 0}, targets = 0;
    for (int e = 0; e < EXAMPLES; e++) {
        int r = row_of[e];
        at[e] = r * T + used[r];
        for (int i = 0; i < len[e]; i++) {
            int k = at[e] + i;
            in[k] = (k * 37 + e) % cfg->vocab_size;
            tg[k] = i < len[e] / 3 ? -1 : (k * 11 + 5) % cfg->vocab_size; /* a prompt, then a reply */
            st[k] = used[r];
            targets += tg[k] >= 0;
        }
        used[r] += len[e];
    }
    for (int r = 0; r < B; r++)
        for (int t = used[r]; t < T; t++) in[r * T + t] = 0, tg[r * T + t] = -1, st[r * T + t] = t;
    size_t n = anv_model_n_params(m);
    float *one_by_one = calloc(n, sizeof(float)), packed_loss;
    double loss = 0;
    anv_model_zero_grad(m);
    for (int e = 0; e < EXAMPLES; e++) {
        int count = 0;
        float l;
        for (int i = 0; i < len[e]; i++) count += tg[at[e] + i] >= 0;
        CHECK(anv_model_forward(m, in + at[e], tg + at[e], NULL, 1, len[e], &l) == 0 &&
                  anv_model_backward(m, (float)count / targets) == 0,
              "%s", anv_last_error());
        loss += (double)l * count / targets;
    }
    memcpy(one_by_one, anv_model_grads(m), n * sizeof(float));
    anv_model_zero_grad(m);
    CHECK(anv_model_forward(m, in, tg, st, B, T, &packed_loss) == 0 && anv_model_backward(m, 1.0f) == 0, "%s",
          anv_last_error());
    double e = fabs(packed_loss - loss) / loss, num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)anv_model_grads(m)[i] - one_by_one[i];
        num += d * d, den += (double)one_by_one[i] * one_by_one[i];
    }
    double eg = sqrt(num / den);
    printf("  %-44s rel err %.2e\n", name, e);
    printf("  %-44s rel err %.2e\n", "  its gradients", eg);
    CHECK(e < 1e-6, "%s: packed loss %.9g vs one by one %.9g", name, packed_loss, loss);
    CHECK(eg < 1e-5, "%s: packed gradients differ from one by one by %.3e", name, eg);
    for (int r = 0; r < B; r++) st[r * T + 5] = 2; /* not a start of the column before */
    CHECK(anv_model_forward(m, in, tg, st, B, T, &packed_loss) != 0 && strstr(anv_last_error(), "row 0, column 5"),
          "bad starts: %s", anv_last_error());
    free(one_by_one);
    anv_model_free(m);
}

/* Hugging Face LlamaForCausalLM config.json: read, written, round-tripped; what anvil does not implement
 * is refused naming the key and the file. */
static void test_llama_config(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/anvil_test_llama_%d.json", (int)getpid());
    const char *smol =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 576,"
        " \"intermediate_size\": 1536, \"num_hidden_layers\": 30, \"num_attention_heads\": 9,"
        " \"num_key_value_heads\": 3, \"vocab_size\": 49152, \"max_position_embeddings\": 8192,"
        " \"rms_norm_eps\": 1e-05, \"rope_theta\": 100000, \"rope_scaling\": null, \"hidden_act\": \"silu\","
        " \"attention_bias\": false, \"mlp_bias\": false, \"head_dim\": 64, \"tie_word_embeddings\": true,"
        " \"bos_token_id\": 0, \"eos_token_id\": 0, \"torch_dtype\": \"bfloat16\", \"pretraining_tp\": 1}";
    anv_write_file_atomic(path, smol, strlen(smol));
    anv_config_t c, want, back;
    anv_config_preset("smollm2-135m", &want);
    want.block_size = 8192;
    char why[160] = "";
    CHECK(anv_config_load(path, &c) == 0 && anv_config_equal(&c, &want, why, sizeof why), "SmolLM2 config: %s %s",
          anv_last_error(), why);
    printf("  HF LlamaForCausalLM config (SmolLM2-135M): %zu params\n", anv_config_num_params(&c));

    anv_config_t l3;
    anv_config_preset("llama3.2-1b", &l3);
    CHECK(anv_config_save(&l3, path) == 0 && anv_config_load(path, &back) == 0 &&
              anv_config_equal(&l3, &back, why, sizeof why),
          "llama3.2-1b round trip: %s %s", anv_last_error(), why);
    anv_buf_t text = {0};
    anv_config_json(&l3, NULL, &text);
    CHECK(strstr(text.data, "\"rms_norm_eps\": 1e-05,") && strstr(text.data, "\"rope_type\": \"llama3\"") &&
              strstr(text.data, "\"num_key_value_heads\": 8,"),
          "llama3.2-1b config.json:\n%s", text.data);
    anv_buf_free(&text);
    anv_config_t g = anv_config_gpt2(2, 2, 16, 50, 8), l = anv_config_llama(2, 2, 1, 16, 40, 50, 8);
    CHECK(!anv_config_equal(&g, &l, why, sizeof why) && !strcmp(why, "architecture: gpt2 against llama"), "%s", why);

    /* inv_freq with Llama 3's scaling: head size 16, theta 500000, factor 8, original context 64 puts
     * frequencies in each of the three bands (kept, interpolated, divided). */
    anv_config_t r = anv_config_llama(1, 2, 1, 32, 8, 10, 8);
    r.rope_theta = 500000.0f;
    r.rope_scaling = (anv_rope_scaling_t){1, 8.0f, 1.0f, 4.0f, 64};
    float f[8];
    anv_config_rope_inv_freq(&r, f);
    anv_safetensors_t *st = golden_open("kernels_llama.safetensors");
    golden_compare(st, "llama3 RoPE inv_freq (3 bands) vs PyTorch", "rope3.inv_freq", f, 8, 1e-6);
    anv_safetensors_close(st);

    static const struct {
        const char *json, *error;
    } bad[] = {
        {"\"model_type\": \"mistral\"", "model_type \"mistral\" is not supported"},
        {"\"attention_bias\": true", "attention_bias true is not supported"},
        {"\"mlp_bias\": true", "mlp_bias true is not supported"},
        {"\"hidden_act\": \"gelu\"", "hidden_act \"gelu\" is not supported"},
        {"\"sliding_window\": 4096", "sliding_window is not supported"},
        {"\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2}", "rope_scaling type \"linear\""},
        {"\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 2}", "rope_scaling needs a number"},
        {"\"head_dim\": 32", "head_dim 32 is not hidden_size / num_attention_heads"},
        {"\"num_key_value_heads\": 3", "num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
        {"\"rope_theta\": 0", "rope_theta 0 must be a number above 1"},
        {"\"rms_norm_eps\": -1", "rms_norm_eps -1 is out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
                 " \"num_attention_heads\": 4, \"vocab_size\": 100, \"max_position_embeddings\": 32, %s}",
                 bad[i].json);
        anv_write_file_atomic(path, json, strlen(json));
        CHECK(anv_config_load(path, &back) != 0 && strstr(anv_last_error(), path) &&
                  strstr(anv_last_error(), bad[i].error),
              "bad Llama config %s: %s", bad[i].json, anv_last_error());
        printf("  refused: %s\n", anv_last_error());
    }
    unlink(path);
}

static void test_bad_input(void) {
    anv_config_t cfg = anv_config_gpt2(1, 2, 16, 50, 8);
    anv_model_t *m;
    anv_model_create(&cfg, &m);
    anv_model_init(m, 1);
    int32_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tg[8] = {2, 3, 4, 5, 6, 7, 8, 9};
    float loss, logits[8 * 50];
    CHECK(anv_model_backward(m, 1.0f) != 0 && strstr(anv_last_error(), "no training forward"), "%s", anv_last_error());
    in[3] = 50;
    CHECK(anv_model_forward(m, in, tg, NULL, 1, 8, &loss) != 0 &&
              strstr(anv_last_error(), "input token 50 at position 3"),
          "%s", anv_last_error());
    CHECK(anv_model_backward(m, 1.0f) != 0, "backward after a failed forward");
    in[3] = 4;
    tg[7] = -2;
    CHECK(anv_model_forward(m, in, tg, NULL, 1, 8, &loss) != 0 && strstr(anv_last_error(), "target -2"), "%s",
          anv_last_error());
    tg[7] = 9;
    CHECK(anv_model_forward(m, in, tg, NULL, 1, 9, &loss) != 0 && strstr(anv_last_error(), "block_size 8"), "%s",
          anv_last_error());
    CHECK(anv_model_logits(m, in, 0, 8, logits) != 0, "empty batch accepted");
    CHECK(anv_model_forward(m, in, tg, NULL, 1, 8, &loss) == 0 && anv_model_backward(m, 1.0f) == 0, "%s",
          anv_last_error());
    CHECK(anv_model_backward(m, 1.0f) != 0, "second backward without a forward");
    /* A kernel failure (as a GPU backend records one) reaches the caller of the model, once. */
    CHECK(anv_kernel_status() == 0, "no kernel failure yet");
    anv_error("CUDA launch: too many resources requested");
    anv_kernel_failed();
    CHECK(anv_model_forward(m, in, tg, NULL, 1, 8, &loss) != 0 &&
              !strcmp(anv_last_error(), "model forward: CUDA launch: too many resources requested"),
          "kernel failure: %s", anv_last_error());
    CHECK(anv_kernel_status() == 0 && anv_model_logits(m, in, 1, 8, logits) == 0, "the failure is reported once");
    anv_error("first");
    anv_kernel_failed();
    anv_error("second");
    anv_kernel_failed();
    CHECK(anv_model_logits(m, in, 1, 8, logits) != 0 && strstr(anv_last_error(), "first"), "the first is kept: %s",
          anv_last_error());
    anv_model_free(m);
}

int main(void) {
    test_golden("gpt_v97.safetensors");
    test_golden("gpt_t8.safetensors");
    test_golden("llama_v97.safetensors");
    test_golden("llama_t8.safetensors");
    printf("model checks:\n");
    test_threads_and_ignored();
    test_vocab_chunks();
    test_init();
    test_config();
    test_llama_config();
    test_bad_input();
    anv_config_t gpt = anv_config_gpt2(2, 2, 32, 100, 160), llama = anv_config_llama(2, 4, 2, 32, 48, 100, 160);
    test_packing(&gpt, "GPT-2: packed rows vs examples one by one");
    test_packing(&llama, "Llama: packed rows vs examples one by one");
    return check_done("test_model");
}
