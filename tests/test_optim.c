/* Optimisation: learning-rate schedules, global-norm clipping, AdamW arithmetic and weight decay on
 * 2-D tensors only. (AdamW against PyTorch over 10 steps is in test_model.) */
#include "anvil/kernels.h"
#include "anvil/model.h"
#include "anvil/optim.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static void near(const char *what, double got, double want, double tol) {
    double e = fabs(got - want) / (fabs(want) > 0 ? fabs(want) : 1.0);
    printf("  %-48s %.9g (want %.9g, rel err %.1e)\n", what, got, want, e);
    CHECK(e <= tol, "%s: %.9g, want %.9g", what, got, want);
}

static void test_schedules(void) {
    anv_schedule_t s = {ANV_SCHEDULE_COSINE, 1e-3f, 1e-4f, 10, 110, 0};
    near("cosine warmup step 0", anv_schedule_lr(&s, 0), 1e-4, 1e-6);
    near("cosine warmup step 4", anv_schedule_lr(&s, 4), 5e-4, 1e-6);
    near("cosine end of warmup (step 10)", anv_schedule_lr(&s, 10), 1e-3, 1e-6);
    near("cosine half way (step 60)", anv_schedule_lr(&s, 60), 5.5e-4, 1e-6);
    near("cosine step 35", anv_schedule_lr(&s, 35), 1e-4 + 0.5 * 9e-4 * (1 + cos(M_PI * 0.25)), 1e-6);
    near("cosine floor at total (step 110)", anv_schedule_lr(&s, 110), 1e-4, 1e-6);
    near("cosine floor past total (step 500)", anv_schedule_lr(&s, 500), 1e-4, 1e-6);
    int mono = 1;
    for (long long i = 10; i < 120; i++) mono &= anv_schedule_lr(&s, i + 1) <= anv_schedule_lr(&s, i);
    CHECK(mono, "cosine not monotone after warmup");
    s.warmup = 0;
    near("cosine without warmup, step 0", anv_schedule_lr(&s, 0), 1e-3, 1e-6);

    anv_schedule_t c = {ANV_SCHEDULE_CONSTANT, 2e-3f, 0, 4, 100, 0};
    near("constant warmup step 1", anv_schedule_lr(&c, 1), 1e-3, 1e-6);
    near("constant after warmup (step 50)", anv_schedule_lr(&c, 50), 2e-3, 1e-6);
    near("constant past total (step 1000)", anv_schedule_lr(&c, 1000), 2e-3, 1e-6);

    anv_schedule_t w = {ANV_SCHEDULE_WSD, 1e-3f, 0.0f, 10, 100, 20};
    near("wsd warmup step 9", anv_schedule_lr(&w, 9), 1e-3, 1e-6);
    near("wsd stable (step 79)", anv_schedule_lr(&w, 79), 1e-3, 1e-6);
    near("wsd decay start (step 80)", anv_schedule_lr(&w, 80), 1e-3, 1e-6);
    near("wsd decay middle (step 90)", anv_schedule_lr(&w, 90), 5e-4, 1e-6);
    near("wsd last step (99)", anv_schedule_lr(&w, 99), 5e-5, 1e-5);
    near("wsd at total", anv_schedule_lr(&w, 100), 0.0, 1e-9);

    anv_schedule_kind_t k;
    CHECK(anv_schedule_parse("cosine", &k) == 0 && k == ANV_SCHEDULE_COSINE, "parse cosine");
    CHECK(anv_schedule_parse("constant", &k) == 0 && k == ANV_SCHEDULE_CONSTANT, "parse constant");
    CHECK(anv_schedule_parse("wsd", &k) == 0 && k == ANV_SCHEDULE_WSD, "parse wsd");
    CHECK(anv_schedule_parse("linear", &k) != 0 && strstr(anv_last_error(), "'linear'"), "%s", anv_last_error());
}

/* Gradients live where the kernels run (anv_device_alloc), so this also runs with ANVIL_DEVICE=cuda;
 * the host reads them after anv_device_sync. */
static void test_clip(void) {
    float *g = anv_device_alloc(2 * sizeof(float), "test gradients");
    g[0] = 3, g[1] = 4;
    near("clip: norm of (3, 4)", anv_clip_grad_norm(g, 2, 1.0f), 5.0, 1e-7);
    anv_device_sync();
    near("clip: scaled to max_norm 1, x", g[0], 0.6, 1e-6);
    near("clip: scaled to max_norm 1, y", g[1], 0.8, 1e-6);
    g[0] = 3, g[1] = 4;
    anv_clip_grad_norm(g, 2, 10.0f);
    anv_device_sync();
    CHECK(g[0] == 3 && g[1] == 4, "clipped below the threshold");
    anv_clip_grad_norm(g, 2, 0.0f);
    anv_device_sync();
    CHECK(g[0] == 3 && g[1] == 4, "max_norm 0 clipped");
    anv_device_free(g);

    size_t n = 1000003;
    float *a = anv_device_alloc(n * sizeof(float), "test gradients");
    float *b = anv_device_alloc(n * sizeof(float), "test gradients");
    anv_rng_t r;
    anv_rng_seed(&r, 5);
    double s2 = 0;
    for (size_t i = 0; i < n; i++) a[i] = (float)anv_rng_normal(&r), s2 += (double)a[i] * a[i];
    memcpy(b, a, n * sizeof(float));
    float n1 = anv_clip_grad_norm(a, n, 0.5f);
    anv_device_sync();
    near("clip: norm of 1M normals", n1, sqrt(s2), 1e-7);
    double after = 0;
    for (size_t i = 0; i < n; i++) after += (double)a[i] * a[i];
    near("clip: norm after clipping to 0.5", sqrt(after), 0.5, 1e-6);
    int threads = anv_threads_count();
    anv_threads_set(1);
    float n2 = anv_clip_grad_norm(b, n, 0.5f);
    anv_device_sync();
    anv_threads_set(threads);
    CHECK(n1 == n2 && !memcmp(a, b, n * sizeof(float)), "clipping differs between 1 and %d threads", threads);
    anv_device_free(a), anv_device_free(b);
}

/* With zero gradients AdamW only decays: 2-D weights shrink by (1 - lr wd), 1-D ones stay. Then one
 * element's moments and update over three steps against the formula in double. */
static void test_adamw(void) {
    anv_config_t cfg = anv_config_gpt2(2, 2, 16, 70, 8);
    anv_model_t *m;
    CHECK(anv_model_create(&cfg, &m) == 0, "%s", anv_last_error());
    anv_model_init(m, 9);
    float *p = anv_model_params(m);
    size_t n = anv_model_n_params(m), pad0 = (size_t)70 * 16, pad1 = (size_t)128 * 16; /* wte's padding rows */
    for (size_t i = pad0; i < pad1; i++) p[i] = 0.5f; /* not a tensor's: AdamW must leave them alone */
    float *before = malloc(n * sizeof(float));
    memcpy(before, p, n * sizeof(float));
    anv_adamw_t opt;
    CHECK(anv_adamw_init(&opt, n) == 0, "%s", anv_last_error());
    anv_adamw_config_t oc = {0.9f, 0.95f, 1e-8f, 0.1f};
    float lr = 0.01f;
    anv_model_zero_grad(m);
    float *grads = anv_model_grads(m);
    for (size_t i = pad0; i < pad1; i++) grads[i] = 1.0f;
    anv_adamw_step(&opt, m, &oc, lr);
    p = anv_model_params(m); /* the host view: waits for the update on a GPU */
    int bad = 0;
    for (int i = 0; i < anv_model_n_tensors(m); i++) {
        const anv_param_t *t = anv_model_tensor(m, i);
        float f = t->ndim == 2 ? 1.0f - lr * oc.weight_decay : 1.0f;
        for (size_t j = 0; j < t->numel; j++) {
            float want = before[t->offset + j] - lr * (oc.weight_decay * (t->ndim == 2)) * before[t->offset + j];
            bad += fabsf(p[t->offset + j] - want) > 2.5e-7f * fabsf(want) || (f == 1.0f && p[t->offset + j] != want);
        }
    }
    printf("  weight decay: 2-D tensors x (1 - lr wd), 1-D tensors unchanged: %d mismatches\n", bad);
    CHECK(bad == 0, "%d parameters decayed wrongly", bad);
    int pad = 0;
    for (size_t i = pad0; i < pad1; i++) pad += p[i] != 0.5f || opt.m[i] != 0.0f || opt.v[i] != 0.0f;
    CHECK(pad == 0, "%d padding values (or their moments) changed", pad);

    /* one element of ln_f.bias (no decay) and one of wte (decay) over 3 steps */
    const anv_param_t *lnb = anv_model_tensor(m, anv_model_n_tensors(m) - 1), *wte = anv_model_tensor(m, 0);
    size_t idx[2] = {lnb->offset + 3, wte->offset + 5};
    double wd[2] = {0, oc.weight_decay};
    double gs[3] = {0.5, -0.25, 0.125};
    double pm[2], mm[2] = {0, 0}, vv[2] = {0, 0};
    for (int k = 0; k < 2; k++) pm[k] = p[idx[k]];
    anv_adamw_free(&opt);
    anv_adamw_init(&opt, n);
    for (int s = 0; s < 3; s++) {
        anv_model_zero_grad(m);
        for (int k = 0; k < 2; k++) anv_model_grads(m)[idx[k]] = (float)gs[s];
        anv_adamw_step(&opt, m, &oc, lr);
        for (int k = 0; k < 2; k++) {
            mm[k] = 0.9 * mm[k] + 0.1 * gs[s];
            vv[k] = 0.95 * vv[k] + 0.05 * gs[s] * gs[s];
            double mh = mm[k] / (1 - pow(0.9, s + 1)), vh = vv[k] / (1 - pow(0.95, s + 1));
            pm[k] -= lr * (mh / (sqrt(vh) + 1e-8) + wd[k] * pm[k]);
        }
    }
    p = anv_model_params(m);
    near("adamw 3 steps, 1-D element", p[idx[0]], pm[0], 1e-6);
    near("adamw 3 steps, 2-D element", p[idx[1]], pm[1], 1e-6);
    CHECK(opt.t == 3, "step count %lld", opt.t);
    anv_adamw_free(&opt);

    /* Allocation failure, injected through the host allocator's ANVIL_ALLOC_LIMIT (the CPU device). */
    if (!strcmp(anv_device(), "cpu")) {
        setenv("ANVIL_ALLOC_LIMIT", "1000", 1);
        CHECK(anv_adamw_init(&opt, n) != 0 && strstr(anv_last_error(), "AdamW"), "%s", anv_last_error());
        unsetenv("ANVIL_ALLOC_LIMIT");
        CHECK(opt.m == NULL && opt.v == NULL, "failed init leaves state");
    }
    free(before);
    anv_model_free(m);
}

int main(void) {
    test_schedules();
    test_clip();
    test_adamw();
    return check_done("test_optim");
}
