/* LoRA adapters against PyTorch (tests/golden/lora_*.safetensors, made by tools/torch_reference.py): a
 * frozen base with adapters on GPT-2's c_attn, c_proj and c_fc, and on Llama's k, v, o, gate and down.
 * Logits and loss 1e-5, adapter gradients 1e-4 (also with dropout on the adapters' inputs, PyTorch drawing
 * anvil's masks), 10 AdamW steps on the adapters alone (losses, gradient norms, final adapters), the base
 * left bitwise alone; then what folding the adapters into the base
 * gives (the same logits), decoding with adapters (the same logits as the training forward), bf16, and
 * the targets an architecture refuses. */
#include "anvil/model.h"
#include "anvil/optim.h"
#include "check.h"
#include "golden_io.h"

#include <stdlib.h>
#include <string.h>

/* Reads "<prefix><name>" of every tensor of a set into its block. */
static void read_set(anv_safetensors_t *st, const anv_param_t *t, int n, float *block, const char *prefix) {
    char name[160];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
        int64_t shape[2] = {t[i].shape[0], t[i].shape[1]};
        CHECK(anv_safetensors_read_f32(st, name, t[i].ndim, shape, block + t[i].offset) == 0, "%s", anv_last_error());
    }
}

static double compare_set(anv_safetensors_t *st, const anv_trainable_t *s, const float *block, const char *prefix,
                          double tol) {
    double worst = 0;
    char name[160];
    for (int i = 0; i < s->n_tensors; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, s->tensors[i].name);
        size_t n;
        float *ref = golden_f32(st, name, &n);
        double e = n == s->tensors[i].numel ? check_rel_err(block + s->tensors[i].offset, ref, n) : INFINITY;
        CHECK(e <= tol, "%s: rel err %.3e > %.0e", name, e, tol);
        worst = e > worst ? e : worst;
        free(ref);
    }
    return worst;
}

/* The golden's base with its adapters, as they were before training. */
static anv_model_t *load(anv_safetensors_t *st, const anv_lora_config_t *lc) {
    anv_config_t cfg = golden_config(st);
    anv_model_t *m;
    if (anv_model_create(&cfg, &m) != 0) {
        fprintf(stderr, "%s\n", anv_last_error());
        exit(1);
    }
    const anv_trainable_t *base = anv_model_trainable(m);
    read_set(st, base->tensors, base->n_tensors, base->params, "base.");
    CHECK(anv_model_add_lora(m, lc, 7) == 0, "%s", anv_last_error());
    const anv_trainable_t *ad = anv_model_trainable(m);
    read_set(st, ad->tensors, ad->n_tensors, ad->params, "init.");
    return m;
}

static void test_golden(const char *file) {
    anv_safetensors_t *st = golden_open(file);
    anv_lora_config_t lc = {golden_meta_int(st, "lora_rank"), (float)golden_meta_double(st, "lora_alpha"), "", 0};
    snprintf(lc.targets, sizeof lc.targets, "%s", anv_safetensors_metadata(st, "lora_targets"));
    anv_model_t *m = load(st, &lc);
    const anv_config_t *c = anv_model_config(m);
    const anv_trainable_t *ad = anv_model_trainable(m);
    int B = golden_meta_int(st, "B"), T = golden_meta_int(st, "T"), V = c->vocab_size;
    printf("%s: %s, LoRA r=%d alpha=%g on %s: %d adapter tensors, %zu floats (the base: %zu)\n", file,
           anv_arch_name(c->arch), lc.rank, (double)lc.alpha, lc.targets, ad->n_tensors, ad->n_params,
           anv_model_n_params(m));
    CHECK(!strcmp(ad->file, "adapter_model.safetensors"), "adapter file %s", ad->file);
    CHECK(anv_model_grads(m) == NULL, "the frozen base still has a gradient block");

    int32_t *inputs = golden_i32(st, "inputs", NULL), *targets = golden_i32(st, "targets", NULL);
    float *logits = malloc(sizeof(float) * B * T * V);
    CHECK(anv_model_logits(m, inputs, B, T, logits) == 0, "%s", anv_last_error());
    golden_compare(st, "logits", "logits", logits, (size_t)B * T * V, 1e-5);

    /* decoding with a KV cache, row by row and in one chunk, gives the same logits */
    anv_kv_cache_t *kv;
    CHECK(anv_kv_cache_create(m, T, &kv) == 0, "%s", anv_last_error());
    float *row = malloc(sizeof(float) * B * T * V);
    CHECK(anv_model_decode_all(m, kv, inputs, T, row) == 0, "%s", anv_last_error());
    double e = check_rel_err(row, logits, (size_t)T * V);
    printf("  %-44s rel err %.2e (tol 1e-05)\n", "KV-cached decoding vs the training forward", e);
    CHECK(e <= 1e-5, "decoding with adapters: rel err %.3e", e);
    anv_kv_cache_free(kv);

    float loss;
    anv_model_zero_grad(m);
    CHECK(anv_model_forward(m, inputs, targets, NULL, B, T, &loss) == 0, "%s", anv_last_error());
    golden_compare(st, "loss", "loss", &loss, 1, 1e-5);
    CHECK(anv_model_backward(m, 1.0f) == 0, "%s", anv_last_error());
    printf("  %-44s rel err %.2e (tol 1e-04)\n", "adapter gradients", compare_set(st, ad, ad->grads, "grad.", 1e-4));

    /* with dropout on every adapter's input: PyTorch drew the same masks (tools/torch_reference.py) */
    anv_model_free(m);
    anv_lora_config_t dc = lc;
    dc.dropout = (float)golden_meta_double(st, "lora_dropout");
    m = load(st, &dc);
    ad = anv_model_trainable(m);
    anv_model_lora_dropout_seed(m, (uint64_t)golden_meta_double(st, "dropout_seed"));
    anv_model_zero_grad(m);
    CHECK(anv_model_forward(m, inputs, targets, NULL, B, T, &loss) == 0, "%s", anv_last_error());
    golden_compare(st, "loss with dropout", "dropout.loss", &loss, 1, 1e-5);
    CHECK(anv_model_backward(m, 1.0f) == 0, "%s", anv_last_error());
    printf("  %-44s rel err %.2e (tol 1e-04)\n", "adapter gradients with dropout",
           compare_set(st, ad, ad->grads, "dropout.grad.", 1e-4));
    float eval_loss;
    CHECK(anv_model_loss(m, inputs, targets, NULL, B, T, &eval_loss) == 0, "%s", anv_last_error());
    golden_compare(st, "evaluation loss: no dropout", "loss", &eval_loss, 1, 1e-5);

    /* 10 AdamW steps on the adapters: the base never moves */
    anv_model_free(m);
    m = load(st, &lc);
    ad = anv_model_trainable(m);
    size_t nb = anv_model_n_params(m);
    float *base0 = malloc(sizeof(float) * nb);
    memcpy(base0, anv_model_params(m), sizeof(float) * nb);
    int steps = golden_meta_int(st, "steps");
    anv_adamw_config_t oc = golden_adamw_config(st);
    anv_schedule_t sched = golden_schedule(st);
    anv_adamw_t opt;
    CHECK(anv_adamw_init(&opt, ad->n_params) == 0, "%s", anv_last_error());
    float losses[16], norms[16], lrs[16];
    for (int s = 0; s < steps; s++) {
        anv_model_zero_grad(m);
        anv_model_forward(m, inputs, targets, NULL, B, T, &losses[s]);
        anv_model_backward(m, 1.0f);
        norms[s] = anv_clip_grad_norm(ad->grads, ad->n_params, (float)golden_meta_double(st, "clip"));
        lrs[s] = anv_schedule_lr(&sched, s);
        anv_adamw_step(&opt, m, &oc, lrs[s]);
    }
    golden_compare(st, "10 losses", "losses", losses, steps, 1e-5);
    golden_compare(st, "10 adapter gradient norms", "grad_norms", norms, steps, 1e-5);
    printf("  %-44s rel err %.2e (tol 1e-04)\n", "adapters after 10 steps",
           compare_set(st, ad, ad->params, "final.", 1e-4));
    CHECK(!memcmp(base0, anv_model_params(m), sizeof(float) * nb), "training moved the frozen base");

    /* folded into the base: the same logits from a plain model */
    CHECK(anv_model_logits(m, inputs, B, T, logits) == 0, "%s", anv_last_error());
    anv_model_merge_lora(m);
    CHECK(anv_model_lora(m) == NULL && anv_model_trainable(m)->n_params == nb, "merge left adapters");
    CHECK(anv_model_logits(m, inputs, B, T, row) == 0, "%s", anv_last_error());
    e = check_rel_err(row, logits, (size_t)B * T * V);
    printf("  %-44s rel err %.2e (tol 1e-05)\n", "merged model vs base + adapters", e);
    CHECK(e <= 1e-5, "merged logits: rel err %.3e", e);
    anv_adamw_free(&opt);
    anv_model_free(m);

    /* bf16 products: the same logits to bf16's precision */
    m = load(st, &lc);
    anv_matmul_precision_set(ANV_PRECISION_BF16);
    CHECK(anv_model_logits(m, inputs, B, T, row) == 0, "%s", anv_last_error());
    anv_matmul_precision_set(ANV_PRECISION_FP32);
    CHECK(anv_model_logits(m, inputs, B, T, logits) == 0, "%s", anv_last_error());
    e = check_rel_err(row, logits, (size_t)B * T * V);
    printf("  %-44s rel err %.2e (tol 2e-02)\n", "bf16 logits vs fp32", e);
    CHECK(e <= 2e-2 && e > 0, "bf16 logits: rel err %.3e", e);
    anv_model_free(m);
    free(base0), free(row), free(logits), free(inputs), free(targets);
    anv_safetensors_close(st);
}

static void test_bad_configs(void) {
    anv_config_t gpt = anv_config_gpt2(2, 2, 32, 100, 16), llama = anv_config_llama(2, 4, 2, 32, 48, 100, 16);
    anv_lora_config_t lc = {4, 8, "q,v", 0};
    CHECK(anv_lora_config_validate(&lc, &gpt, "x") != 0 && strstr(anv_last_error(), "no LoRA target 'q'") &&
              strstr(anv_last_error(), "c_attn, c_proj, c_fc"),
          "%s", anv_last_error());
    CHECK(anv_lora_config_validate(&lc, &llama, "x") == 0, "%s", anv_last_error());
    snprintf(lc.targets, sizeof lc.targets, "q, gate ,bogus");
    CHECK(anv_lora_config_validate(&lc, &llama, "x") != 0 && strstr(anv_last_error(), "'bogus'"), "%s",
          anv_last_error());
    lc = (anv_lora_config_t){17, 8, "", 0}; /* wider than the 16-wide key/value projections */
    CHECK(anv_lora_config_validate(&lc, &llama, "x") != 0 && strstr(anv_last_error(), "1..16"), "%s", anv_last_error());
    lc = (anv_lora_config_t){4, 0, "", 0};
    CHECK(anv_lora_config_validate(&lc, &llama, "x") != 0, "alpha 0 accepted");
    lc = (anv_lora_config_t){4, 8, "", 1.0f};
    CHECK(anv_lora_config_validate(&lc, &llama, "x") != 0 && strstr(anv_last_error(), "dropout"), "dropout 1 accepted");

    /* fresh adapters: B = 0, so the model's outputs are the base's */
    anv_model_t *m;
    CHECK(anv_model_create(&llama, &m) == 0, "%s", anv_last_error());
    anv_model_init(m, 1);
    int32_t in[16];
    for (int i = 0; i < 16; i++) in[i] = (i * 7) % 100;
    float *a = malloc(sizeof(float) * 16 * 100), *b = malloc(sizeof(float) * 16 * 100);
    anv_model_logits(m, in, 1, 16, a);
    lc = (anv_lora_config_t){8, 16, "", 0};
    CHECK(anv_model_add_lora(m, &lc, 3) == 0, "%s", anv_last_error());
    CHECK(anv_model_trainable(m)->n_tensors == 2 * 7 * 2, "%d adapter tensors", anv_model_trainable(m)->n_tensors);
    anv_model_logits(m, in, 1, 16, b);
    CHECK(!memcmp(a, b, sizeof(float) * 16 * 100), "fresh adapters changed the logits");
    CHECK(anv_model_add_lora(m, &lc, 3) != 0, "adapters added twice");
    free(a), free(b);
    anv_model_free(m);
}

int main(void) {
    test_golden("lora_gpt.safetensors");
    test_golden("lora_llama.safetensors");
    test_bad_configs();
    return check_done("test_lora");
}
