/* --precision auto: which precision runs this model's matrix products faster here, measured. The
 * linear layers and the LM head are where the precisions differ (everything else runs in fp32 either
 * way), so one training step's products are timed in each: every distinct layer shape once, forward
 * and backward, on the model's rows (at most MEASURE_ROWS of them) and weights, counted n_layer times,
 * plus the head on at most MEASURE_HEAD of its vocabulary rows, scaled to all of them. The precisions
 * take turns on each product, so that a change in the machine's load touches both alike. */
#include "model/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MEASURE_ROWS = 512, MEASURE_HEAD = 8192 };

typedef struct {
    int in, out;  /* the product (N, in) -> (N, out) */
    double count; /* how many of it a step holds (a share of one for the head's sampled rows) */
} product_t;

/* seconds[p]: forward + backward of one product in precision p, the best of two after a warm-up; -1 on
 * failure. */
static int time_product(const anv_config_t *cfg, int N, int IC, int OC, double seconds[2]) {
    int in_out = anv_arch_info(cfg->arch)->weights == ANV_WEIGHTS_IN_OUT;
    size_t floats = (size_t)N * IC * 2 + (size_t)IC * OC * 2 + (size_t)N * OC * 2;
    float *buf = anv_device_alloc(floats * sizeof(float), "precision measurement");
    if (!buf) return -1;
    float *x = buf, *dx = x + (size_t)N * IC, *w = dx + (size_t)N * IC, *dw = w + (size_t)IC * OC;
    float *y = dw + (size_t)IC * OC, *dy = y + (size_t)N * OC;
    anv_fill(buf, 0.01f, floats);
    seconds[0] = seconds[1] = INFINITY;
    for (int run = 0; run < 3; run++)
        for (int p = 0; p < 2; p++) {
            anv_matmul_precision_set((anv_precision_t)p);
            anv_device_sync();
            double t0 = anv_now();
            if (in_out) {
                anv_matmul_forward(y, x, w, NULL, N, IC, OC);
                anv_matmul_backward(dx, dw, NULL, dy, x, w, N, IC, OC);
            } else {
                anv_matmul_nt_forward(y, x, w, N, IC, OC);
                anv_matmul_nt_backward(dx, dw, dy, x, w, N, IC, OC);
            }
            anv_device_sync();
            double dt = anv_now() - t0;
            if (run > 0 && dt < seconds[p]) seconds[p] = dt;
        }
    anv_device_free(buf);
    return anv_kernel_status() == 0 ? 0 : -1;
}

/* total[p]: the seconds the products of a step of N rows take in precision p; -1 on failure. */
static int time_step_products(const anv_config_t *cfg, int N, double total[2]) {
    int C = cfg->n_embd, Vp = anv_config_padded_vocab(cfg), head = Vp < MEASURE_HEAD ? Vp : MEASURE_HEAD;
    product_t p[] = {
        {C, anv_qkv_width(cfg), cfg->n_layer}, {C, C, cfg->n_layer},         {C, anv_mlp_in_width(cfg), cfg->n_layer},
        {cfg->n_ff, C, cfg->n_layer},          {C, head, (double)Vp / head},
    };
    total[0] = total[1] = 0;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        double s[2];
        if (time_product(cfg, N, p[i].in, p[i].out, s) != 0) return -1;
        for (int q = 0; q < 2; q++) total[q] += s[q] * p[i].count;
    }
    return 0;
}

/* ANVIL_TEST_MATMUL_SECONDS="FP32,BF16" stands in for the measurement (tests of both outcomes). */
static int injected(double seconds[2]) {
    const char *s = getenv("ANVIL_TEST_MATMUL_SECONDS");
    char *end;
    if (!s) return 0;
    seconds[0] = strtod(s, &end);
    if (*end != ',') return 0;
    seconds[1] = strtod(end + 1, &end);
    return *end == '\0' && seconds[0] > 0 && seconds[1] > 0;
}

int anv_precision_measure(const anv_config_t *cfg, int B, int T, anv_precision_timing_t *out) {
    *out = (anv_precision_timing_t){0};
    long long rows = (long long)B * T;
    int N = rows < MEASURE_ROWS ? (int)rows : MEASURE_ROWS;
    out->injected = injected(out->seconds);
    if (!out->injected) {
        anv_precision_t was = anv_matmul_precision();
        int rc = time_step_products(cfg, N, out->seconds);
        anv_matmul_precision_set(was);
        if (rc != 0) return anv_error_prefix("--precision auto: timing the model's matrix products");
        for (int p = 0; p < 2; p++) out->seconds[p] *= (double)rows / N;
    }
    out->faster = out->seconds[ANV_PRECISION_BF16] <= ANV_BF16_MIN_SHARE * out->seconds[ANV_PRECISION_FP32]
                      ? ANV_PRECISION_BF16
                      : ANV_PRECISION_FP32;
    return 0;
}

int anv_precision_option(const char *name, int *out) {
    if (!strcmp(name, "auto")) {
        *out = ANV_PRECISION_AUTO;
        return 0;
    }
    anv_precision_t p;
    if (anv_precision_parse(name, &p) != 0) return anv_error("--precision %s: expected auto, fp32 or bf16", name);
    *out = (int)p;
    return 0;
}
