/* Every kernel of the CUDA backend (src/kernels/cuda) against the CPU kernels on the same random
 * inputs, at small odd shapes, at GPT-2 small's (B 4, T 256, C 768, 12 heads, the 50257-token
 * vocabulary in two chunks) and at Llama-like ones (grouped-query heads of 64 and 128, RMSNorm, RoPE,
 * SwiGLU), and the bitwise determinism of each CUDA kernel (two runs, same bits).
 * Exits 77 (skipped) where there is no usable GPU.
 *
 * All buffers come from anv_device_alloc while the device is "cuda" (managed memory, which the CPU
 * kernels can use too) and are freed while it is "cuda" again, since anv_device_free frees with the
 * allocator of the device active at the call.
 *
 * Tolerances, relative to the largest reference value (check_rel_err):
 *   TOL_EW   1e-5  element-wise kernels, layernorm, rmsnorm, rope, swiglu, cross-entropy, embeddings,
 *                  the optimizer: the same formulas in fp32; only exp / tanh / sin / cos (the CPU's
 *                  polynomial exp is within ~2 ulp, CUDA's sincosf within 2 ulp) and the order of double
 *                  sums differ, a few ulp of the result at most.
 *   TOL_MM   1e-4  fp32 GEMMs (K up to 3072): cuBLAS and the CPU GEMM add the K products in different
 *                  orders (blocking, FMA); the rounding error grows like sqrt(K) ulp of the partial sums,
 *                  about 1e-6 of the largest result here, and cancelling sums make it larger relative
 *                  to one element, hence the margin. The bf16 matmuls are compared with the CPU's bf16
 *                  matmuls: both round the inputs to bf16 identically (round to nearest even) and
 *                  accumulate in fp32, so the same bound holds.
 *   TOL_ATT  1e-4  attention: the online softmax rescales its running sums, both passes chain two or
 *                  three products of fp32 sums in orders unlike the CPU's.
 *   TOL_ATT_BF16 2e-2  the bf16 precision's tensor-core attention against the CPU's fp32 attention (the
 *                  CPU has no bf16 attention): q, k, v, dout, P and dS rounded to bf16 (2^-9 relative
 *                  each) before their products. tests/gpu/test_cuda_emu.cc measures these errors
 *                  with the same kernels emulated on the CPU: up to 8e-3 against fp32 inputs, and
 *                  below 1e-2 against a reference that starts from the same bf16 inputs.
 *   sums: sum of squares 1e-12 (both square exactly in double, only the order of additions differs);
 *   the loss 1e-6 (each row's log-sum-exp is an fp32 value within a few ulp). */
#include "anvil/base.h"
#include "anvil/kernels.h"

#include "check.h"
#include "kernels/cpu/gemm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL_EW 1e-5
#define TOL_MM 1e-4
#define TOL_ATT 1e-4
#define TOL_ATT_BF16 2e-2
#define TOL_SUMSQ 1e-12
#define TOL_LOSS 1e-6

enum { MAXBUF = 9 };

/* The sizes and scalars of one case (each op reads the ones it needs). */
typedef struct {
    int B, T, C, NH, NKV, hs, pos, F, N, OC, V, ld, vsplit, M, K, ta, tb, lda, ldb, ldc;
    int packed; /* rows packed with sequences of at most this many tokens (kernel_list.h); 0: one per row */
    size_t n;
    float alpha, beta;
} shape_t;

/* A case's buffers: initial contents (host), sizes, and which are outputs to compare. */
typedef struct {
    int count;
    const char *name[MAXBUF];
    void *init[MAXBUF];
    size_t bytes[MAXBUF];
    int is_out[MAXBUF];
} bufs_t;

/* Runs one kernel (or a sequence) over the buffers; returns the scalar it computes, or 0. */
typedef double op_fn(void **b, const shape_t *s);

static anv_rng_t rng;

static void *dev_alloc(size_t bytes) {
    void *p = anv_device_alloc(bytes, "test buffer");
    if (!p) {
        fprintf(stderr, "allocation failed: %s\n", anv_last_error());
        exit(1);
    }
    return p;
}

static int add_buf(bufs_t *bs, const char *name, size_t bytes, int is_out) {
    int i = bs->count++;
    bs->name[i] = name;
    bs->bytes[i] = bytes;
    bs->is_out[i] = is_out;
    bs->init[i] = malloc(bytes ? bytes : 1);
    return i;
}

/* n floats, normal with standard deviation `scale` (absolute values when positive). */
static float *add_floats(bufs_t *bs, const char *name, size_t n, float scale, int is_out, int positive) {
    float *x = bs->init[add_buf(bs, name, n * sizeof(float), is_out)];
    for (size_t i = 0; i < n; i++) {
        float v = (float)anv_rng_normal(&rng) * scale;
        x[i] = positive ? fabsf(v) : v;
    }
    return x;
}

/* n token ids in [0, hi); with ignore, every 7th is -1. */
static int32_t *add_tokens(bufs_t *bs, const char *name, size_t n, int hi, int ignore) {
    int32_t *t = bs->init[add_buf(bs, name, n * sizeof(int32_t), 0)];
    for (size_t i = 0; i < n; i++) t[i] = ignore && i % 7 == 3 ? -1 : (int32_t)(anv_rng_u64(&rng) % (uint64_t)hi);
    return t;
}

/* Sequence starts (B, T) of rows packed with sequences of 1 to max_len tokens, or all 0 (max_len 0). */
static int32_t *add_starts(bufs_t *bs, int B, int T, int max_len) {
    int32_t *st = bs->init[add_buf(bs, "starts", (size_t)B * T * sizeof(int32_t), 0)];
    for (int b = 0; b < B; b++)
        for (int t = 0, end = 0, first = 0; t < T; t++) {
            if (t == end) first = t, end = max_len ? t + 1 + (int)(anv_rng_u64(&rng) % (uint64_t)max_len) : T;
            st[(size_t)b * T + t] = first;
        }
    return st;
}

/* The starts buffer b[i] of a packed case, else NULL. */
static const int32_t *starts_arg(void **b, int i, const shape_t *s) { return s->packed ? b[i] : NULL; }

static void free_bufs(bufs_t *bs) {
    for (int i = 0; i < bs->count; i++) free(bs->init[i]);
    bs->count = 0;
}

/* Copies of every buffer on the device. */
static void copies(void **dst, const bufs_t *bs) {
    for (int i = 0; i < bs->count; i++) {
        dst[i] = dev_alloc(bs->bytes[i]);
        memcpy(dst[i], bs->init[i], bs->bytes[i]);
    }
}

/* The op on the CPU and twice on CUDA, each on fresh copies of the buffers; compares every output of
 * the first CUDA run with the CPU's (tolerance tol, and tol_scalar for the returned scalar) and with
 * the second CUDA run (bitwise). Frees the buffers. */
static void run_case(const char *what, op_fn *op, const shape_t *s, bufs_t *bs, double tol, double tol_scalar) {
    void *cpu[MAXBUF], *g1[MAXBUF], *g2[MAXBUF];
    copies(cpu, bs);
    copies(g1, bs);
    copies(g2, bs);
    CHECK(anv_device_set("cpu") == 0, "%s", anv_last_error());
    double rc = op(cpu, s);
    CHECK(anv_device_set("cuda") == 0, "%s", anv_last_error());
    double r1 = op(g1, s);
    anv_device_sync();
    double r2 = op(g2, s);
    anv_device_sync();
    for (int i = 0; i < bs->count; i++) {
        if (!bs->is_out[i]) continue;
        size_t n = bs->bytes[i] / sizeof(float);
        double err = check_rel_err(g1[i], cpu[i], n);
        int same = memcmp(g1[i], g2[i], bs->bytes[i]) == 0;
        printf("  %-34s %-8s rel err %.2e (tol %.0e)%s\n", what, bs->name[i], err, tol,
               same ? ", deterministic" : ", NOT DETERMINISTIC");
        CHECK(err <= tol, "%s %s: rel err %.3e > %.0e", what, bs->name[i], err, tol);
        CHECK(same, "%s %s: two CUDA runs differ", what, bs->name[i]);
    }
    if (tol_scalar > 0) {
        double err = fabs(r1 - rc) / (fabs(rc) > 0 ? fabs(rc) : 1.0);
        int same = memcmp(&r1, &r2, sizeof r1) == 0;
        printf("  %-34s %-8s rel err %.2e (tol %.0e)%s: cuda %.17g cpu %.17g\n", what, "result", err, tol_scalar,
               same ? ", deterministic" : ", NOT DETERMINISTIC", r1, rc);
        CHECK(err <= tol_scalar, "%s: result %.17g vs %.17g", what, r1, rc);
        CHECK(same, "%s: two CUDA runs return %.17g and %.17g", what, r1, r2);
    }
    for (int i = 0; i < bs->count; i++) {
        anv_device_free(cpu[i]);
        anv_device_free(g1[i]);
        anv_device_free(g2[i]);
    }
    free_bufs(bs);
}

/* ---- linear layers ---- */

static double op_matmul_fwd(void **b, const shape_t *s) {
    anv_matmul_forward(b[0], b[1], b[2], b[3], s->N, s->C, s->OC);
    return 0;
}
static double op_matmul_fwd_nobias(void **b, const shape_t *s) {
    anv_matmul_forward(b[0], b[1], b[2], NULL, s->N, s->C, s->OC);
    return 0;
}
static double op_matmul_bwd(void **b, const shape_t *s) {
    anv_matmul_backward(b[0], b[1], b[2], b[3], b[4], b[5], s->N, s->C, s->OC);
    return 0;
}
static double op_matmul_nt_fwd(void **b, const shape_t *s) {
    anv_matmul_nt_forward(b[0], b[1], b[2], s->N, s->C, s->OC);
    return 0;
}
static double op_matmul_nt_bwd(void **b, const shape_t *s) {
    anv_matmul_nt_backward(b[0], b[1], b[2], b[3], b[4], s->N, s->C, s->OC);
    return 0;
}
static double op_gemm(void **b, const shape_t *s) {
    anv_gemm(s->ta, s->tb, s->M, s->N, s->K, s->alpha, b[1], s->lda, b[2], s->ldb, s->beta, b[0], s->ldc);
    return 0;
}

static void test_matmul(const char *label, int N, int C, int OC, anv_precision_t prec) {
    char what[64];
    shape_t s = {.N = N, .C = C, .OC = OC};
    bufs_t bs = {0};
    anv_matmul_precision_set(prec);
    const char *p = anv_precision_name(prec);

    add_floats(&bs, "out", (size_t)N * OC, 1, 1, 0);
    add_floats(&bs, "inp", (size_t)N * C, 1, 0, 0);
    add_floats(&bs, "w", (size_t)C * OC, 0.05f, 0, 0);
    add_floats(&bs, "bias", OC, 0.5f, 0, 0);
    snprintf(what, sizeof what, "matmul fwd %s %s", p, label);
    run_case(what, op_matmul_fwd, &s, &bs, TOL_MM, 0);

    add_floats(&bs, "out", (size_t)N * OC, 1, 1, 0);
    add_floats(&bs, "inp", (size_t)N * C, 1, 0, 0);
    add_floats(&bs, "w", (size_t)C * OC, 0.05f, 0, 0);
    snprintf(what, sizeof what, "matmul fwd nobias %s %s", p, label);
    run_case(what, op_matmul_fwd_nobias, &s, &bs, TOL_MM, 0);

    add_floats(&bs, "dinp", (size_t)N * C, 1, 1, 0);
    add_floats(&bs, "dw", (size_t)C * OC, 1, 1, 0);
    add_floats(&bs, "dbias", OC, 1, 1, 0);
    add_floats(&bs, "dout", (size_t)N * OC, 1, 0, 0);
    add_floats(&bs, "inp", (size_t)N * C, 1, 0, 0);
    add_floats(&bs, "w", (size_t)C * OC, 0.05f, 0, 0);
    snprintf(what, sizeof what, "matmul bwd %s %s", p, label);
    run_case(what, op_matmul_bwd, &s, &bs, TOL_MM, 0);
    anv_matmul_precision_set(ANV_PRECISION_FP32);
}

/* LoRA beside a product: the adapter's OC columns start at column `col` of a product ld wide. */
static double op_lora_fwd(void **b, const shape_t *s) {
    anv_lora_forward((float *)b[0] + s->pos, s->ld, b[1], b[2], b[3], b[4], s->alpha, s->N, s->C, s->OC, s->K);
    return 0;
}
static double op_lora_bwd(void **b, const shape_t *s) {
    anv_lora_backward(b[0], b[1], b[2], b[3], (const float *)b[4] + s->pos, s->ld, b[5], b[6], b[7], b[8], s->alpha,
                      s->N, s->C, s->OC, s->K);
    return 0;
}

static void test_lora(const char *label, int N, int IC, int OC, int ld, int col, int r, anv_precision_t prec) {
    char what[64];
    shape_t s = {.N = N, .C = IC, .OC = OC, .ld = ld, .pos = col, .K = r, .alpha = 2.0f};
    bufs_t bs = {0};
    anv_matmul_precision_set(prec);
    const char *p = anv_precision_name(prec);

    add_floats(&bs, "out", (size_t)N * ld, 1, 1, 0);
    add_floats(&bs, "u", (size_t)N * r, 1, 1, 0);
    add_floats(&bs, "inp", (size_t)N * IC, 1, 0, 0);
    add_floats(&bs, "a", (size_t)r * IC, 0.1f, 0, 0);
    add_floats(&bs, "b", (size_t)OC * r, 0.1f, 0, 0);
    snprintf(what, sizeof what, "lora fwd %s %s", p, label);
    run_case(what, op_lora_fwd, &s, &bs, TOL_MM, 0);

    add_floats(&bs, "dinp", (size_t)N * IC, 1, 1, 0);
    add_floats(&bs, "da", (size_t)r * IC, 1, 1, 0);
    add_floats(&bs, "db", (size_t)OC * r, 1, 1, 0);
    add_floats(&bs, "du", (size_t)N * r, 1, 1, 0);
    add_floats(&bs, "dout", (size_t)N * ld, 1, 0, 0);
    add_floats(&bs, "inp", (size_t)N * IC, 1, 0, 0);
    add_floats(&bs, "u", (size_t)N * r, 1, 0, 0);
    add_floats(&bs, "a", (size_t)r * IC, 0.1f, 0, 0);
    snprintf(what, sizeof what, "lora bwd %s %s", p, label);
    add_floats(&bs, "b", (size_t)OC * r, 0.1f, 0, 0);
    run_case(what, op_lora_bwd, &s, &bs, TOL_MM, 0);
    anv_matmul_precision_set(ANV_PRECISION_FP32);
}

/* The LM head's matmuls. */
static void test_matmul_nt(const char *label, int N, int C, int OC, anv_precision_t prec) {
    char what[64];
    shape_t s = {.N = N, .C = C, .OC = OC};
    bufs_t bs = {0};
    anv_matmul_precision_set(prec);
    const char *p = anv_precision_name(prec);

    add_floats(&bs, "out", (size_t)N * OC, 1, 1, 0);
    add_floats(&bs, "inp", (size_t)N * C, 1, 0, 0);
    add_floats(&bs, "w", (size_t)OC * C, 0.05f, 0, 0);
    snprintf(what, sizeof what, "matmul_nt fwd %s %s", p, label);
    run_case(what, op_matmul_nt_fwd, &s, &bs, TOL_MM, 0);

    add_floats(&bs, "dinp", (size_t)N * C, 1, 1, 0);
    add_floats(&bs, "dw", (size_t)OC * C, 1, 1, 0);
    add_floats(&bs, "dout", (size_t)N * OC, 1, 0, 0);
    add_floats(&bs, "inp", (size_t)N * C, 1, 0, 0);
    add_floats(&bs, "w", (size_t)OC * C, 0.05f, 0, 0);
    snprintf(what, sizeof what, "matmul_nt bwd %s %s", p, label);
    run_case(what, op_matmul_nt_bwd, &s, &bs, TOL_MM, 0);
    anv_matmul_precision_set(ANV_PRECISION_FP32);
}

/* The bf16 matmul really rounds its inputs: its result differs from the fp32 one by about the bf16
 * rounding (2^-9 relative per input), more than fp32 arithmetic could, and not by more. */
static void test_bf16_rounds(void) {
    int N = 64, C = 256, OC = 96;
    float *inp = dev_alloc(sizeof(float) * N * C), *w = dev_alloc(sizeof(float) * C * OC);
    float *o32 = dev_alloc(sizeof(float) * N * OC), *o16 = dev_alloc(sizeof(float) * N * OC);
    for (int i = 0; i < N * C; i++) inp[i] = (float)anv_rng_normal(&rng);
    for (int i = 0; i < C * OC; i++) w[i] = (float)anv_rng_normal(&rng);
    anv_matmul_forward(o32, inp, w, NULL, N, C, OC);
    anv_matmul_precision_set(ANV_PRECISION_BF16);
    anv_matmul_forward(o16, inp, w, NULL, N, C, OC);
    anv_matmul_precision_set(ANV_PRECISION_FP32);
    anv_device_sync();
    double err = check_rel_err(o16, o32, (size_t)N * OC);
    printf("  %-34s %-8s rel err %.2e (expected 1e-4 to 2e-2)\n", "matmul bf16 vs fp32 on cuda", "out", err);
    CHECK(err > 1e-4 && err < 2e-2, "bf16 vs fp32 rel err %.3e", err);
    anv_device_free(inp), anv_device_free(w), anv_device_free(o32), anv_device_free(o16);
}

/* anv_gemm (the table's fp32 GEMM) for every transpose pair, with padded leading dimensions. */
static void test_gemm(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            shape_t s = {.M = 19, .N = 23, .K = 17, .ta = ta, .tb = tb, .alpha = 0.7f, .beta = 0.3f};
            s.lda = (ta ? s.M : s.K) + 3;
            s.ldb = (tb ? s.K : s.N) + 5;
            s.ldc = s.N + 2;
            bufs_t bs = {0};
            add_floats(&bs, "C", (size_t)s.M * s.ldc, 1, 1, 0);
            add_floats(&bs, "A", (size_t)(ta ? s.K : s.M) * s.lda, 1, 0, 0);
            add_floats(&bs, "B", (size_t)(tb ? s.N : s.K) * s.ldb, 1, 0, 0);
            char what[64];
            snprintf(what, sizeof what, "gemm ta %d tb %d", ta, tb);
            run_case(what, op_gemm, &s, &bs, TOL_MM, 0);
        }
}

/* ---- embeddings ---- */

static double op_embedding_fwd(void **b, const shape_t *s) {
    anv_embedding_forward(b[0], b[1], starts_arg(b, 4, s), b[2], b[3], s->B, s->T, s->C);
    return 0;
}
static double op_embedding_bwd(void **b, const shape_t *s) {
    anv_embedding_backward(b[0], b[1], b[2], b[3], starts_arg(b, 4, s), s->B, s->T, s->C);
    return 0;
}
/* Without position embeddings (rotary models): wpe and dwpe NULL. */
static double op_embedding_fwd_nowpe(void **b, const shape_t *s) {
    anv_embedding_forward(b[0], b[1], NULL, b[2], NULL, s->B, s->T, s->C);
    return 0;
}
static double op_embedding_bwd_nowpe(void **b, const shape_t *s) {
    anv_embedding_backward(b[0], NULL, b[1], b[2], NULL, s->B, s->T, s->C);
    return 0;
}

/* Tokens drawn from the first `distinct` ids of V, so that they repeat; with or without position
 * embeddings; rows packed with sequences of at most `packed` tokens (with position embeddings), or 0. */
static void test_embedding(const char *label, int B, int T, int C, int V, int distinct, int with_wpe, int packed) {
    char what[64];
    shape_t s = {.B = B, .T = T, .C = C, .packed = packed};
    bufs_t bs = {0};
    add_floats(&bs, "out", (size_t)B * T * C, 1, 1, 0);
    add_tokens(&bs, "tokens", (size_t)B * T, distinct, 0);
    add_floats(&bs, "wte", (size_t)V * C, 1, 0, 0);
    if (with_wpe) add_floats(&bs, "wpe", (size_t)T * C, 1, 0, 0);
    int32_t *st = malloc(sizeof(int32_t) * B * T);
    if (with_wpe) memcpy(st, add_starts(&bs, B, T, packed), sizeof(int32_t) * B * T);
    snprintf(what, sizeof what, "embedding fwd %s", label);
    run_case(what, with_wpe ? op_embedding_fwd : op_embedding_fwd_nowpe, &s, &bs, TOL_EW, 0);

    add_floats(&bs, "dwte", (size_t)V * C, 1, 1, 0);
    if (with_wpe) add_floats(&bs, "dwpe", (size_t)T * C, 1, 1, 0);
    add_floats(&bs, "dout", (size_t)B * T * C, 1, 0, 0);
    add_tokens(&bs, "tokens", (size_t)B * T, distinct, 0);
    if (with_wpe) memcpy(add_starts(&bs, B, T, 0), st, sizeof(int32_t) * B * T);
    snprintf(what, sizeof what, "embedding bwd %s", label);
    run_case(what, with_wpe ? op_embedding_bwd : op_embedding_bwd_nowpe, &s, &bs, TOL_EW, 0);
    free(st);
}

/* ---- layernorm ---- */

static double op_layernorm_fwd(void **b, const shape_t *s) {
    anv_layernorm_forward(b[0], b[1], b[2], b[3], b[4], b[5], s->N, s->C);
    return 0;
}
static double op_layernorm_bwd(void **b, const shape_t *s) {
    anv_layernorm_backward(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], s->N, s->C);
    return 0;
}

static void test_layernorm(const char *label, int N, int C) {
    char what[64];
    shape_t s = {.N = N, .C = C};
    bufs_t bs = {0};
    add_floats(&bs, "out", (size_t)N * C, 1, 1, 0);
    add_floats(&bs, "mean", N, 1, 1, 0);
    add_floats(&bs, "rstd", N, 1, 1, 0);
    float *x = add_floats(&bs, "inp", (size_t)N * C, 2, 0, 0);
    for (size_t i = 0; i < (size_t)N * C; i++) x[i] += 0.5f; /* a mean away from 0 */
    add_floats(&bs, "w", C, 1, 0, 0);
    add_floats(&bs, "b", C, 1, 0, 0);
    snprintf(what, sizeof what, "layernorm fwd %s", label);
    run_case(what, op_layernorm_fwd, &s, &bs, TOL_EW, 0);

    add_floats(&bs, "dinp", (size_t)N * C, 1, 1, 0);
    add_floats(&bs, "dw", C, 1, 1, 0);
    add_floats(&bs, "db", C, 1, 1, 0);
    add_floats(&bs, "dout", (size_t)N * C, 1, 0, 0);
    x = add_floats(&bs, "inp", (size_t)N * C, 2, 0, 0);
    add_floats(&bs, "w", C, 1, 0, 0);
    float *mean = add_floats(&bs, "mean", N, 0, 0, 0), *rstd = add_floats(&bs, "rstd", N, 0, 0, 0);
    for (int n = 0; n < N; n++) { /* statistics that belong to the input */
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[(size_t)n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[(size_t)n * C + c] - m) * (x[(size_t)n * C + c] - m);
        mean[n] = (float)m;
        rstd[n] = (float)(1.0 / sqrt(v / C + 1e-5));
    }
    snprintf(what, sizeof what, "layernorm bwd %s", label);
    run_case(what, op_layernorm_bwd, &s, &bs, TOL_EW, 0);
}

/* ---- rmsnorm ---- */

static double op_rmsnorm_fwd(void **b, const shape_t *s) {
    anv_rmsnorm_forward(b[0], b[1], b[2], b[3], 1e-5f, s->N, s->C);
    return 0;
}
static double op_rmsnorm_bwd(void **b, const shape_t *s) {
    anv_rmsnorm_backward(b[0], b[1], b[2], b[3], b[4], b[5], s->N, s->C);
    return 0;
}

static void test_rmsnorm(const char *label, int N, int C) {
    char what[64];
    shape_t s = {.N = N, .C = C};
    bufs_t bs = {0};
    add_floats(&bs, "out", (size_t)N * C, 1, 1, 0);
    add_floats(&bs, "rstd", N, 1, 1, 0);
    add_floats(&bs, "inp", (size_t)N * C, 2, 0, 0);
    add_floats(&bs, "w", C, 1, 0, 0);
    snprintf(what, sizeof what, "rmsnorm fwd %s", label);
    run_case(what, op_rmsnorm_fwd, &s, &bs, TOL_EW, 0);

    add_floats(&bs, "dinp", (size_t)N * C, 1, 1, 0);
    add_floats(&bs, "dw", C, 1, 1, 0);
    add_floats(&bs, "dout", (size_t)N * C, 1, 0, 0);
    float *x = add_floats(&bs, "inp", (size_t)N * C, 2, 0, 0);
    add_floats(&bs, "w", C, 1, 0, 0);
    float *rstd = add_floats(&bs, "rstd", N, 0, 0, 0);
    for (int n = 0; n < N; n++) { /* the statistic that belongs to the input */
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[(size_t)n * C + c] * x[(size_t)n * C + c];
        rstd[n] = (float)(1.0 / sqrt(ss / C + 1e-5));
    }
    snprintf(what, sizeof what, "rmsnorm bwd %s", label);
    run_case(what, op_rmsnorm_bwd, &s, &bs, TOL_EW, 0);
}

/* ---- rope and swiglu ---- */

static double op_rope_fwd(void **b, const shape_t *s) {
    anv_rope_forward(b[0], starts_arg(b, 2, s), b[1], s->B, s->T, s->pos, s->NH, s->NKV, s->hs);
    return 0;
}
static double op_rope_bwd(void **b, const shape_t *s) {
    anv_rope_backward(b[0], starts_arg(b, 2, s), b[1], s->B, s->T, s->pos, s->NH, s->NKV, s->hs);
    return 0;
}

/* In place on qkv (B, T, (NH + 2 NKV) hs) from position pos, Llama's inv_freq (theta 500000); rows packed
 * with sequences of at most `packed` tokens, or 0. */
static void test_rope(const char *label, int B, int T, int pos, int NH, int NKV, int hs, int packed) {
    char what[64];
    shape_t s = {.B = B, .T = T, .pos = pos, .NH = NH, .NKV = NKV, .hs = hs, .packed = packed};
    size_t n = (size_t)B * T * (NH + 2 * NKV) * hs;
    op_fn *ops[2] = {op_rope_fwd, op_rope_bwd};
    for (int k = 0; k < 2; k++) {
        bufs_t bs = {0};
        add_floats(&bs, "qkv", n, 1, 1, 0);
        float *inv_freq = add_floats(&bs, "inv_freq", hs / 2, 0, 0, 0);
        for (int i = 0; i < hs / 2; i++) inv_freq[i] = (float)pow(500000.0, -2.0 * i / hs);
        add_starts(&bs, B, T, packed);
        snprintf(what, sizeof what, "rope %s %s", k ? "bwd" : "fwd", label);
        run_case(what, ops[k], &s, &bs, TOL_EW, 0);
    }
}

static double op_swiglu_fwd(void **b, const shape_t *s) {
    anv_swiglu_forward(b[0], b[1], s->N, s->F);
    return 0;
}
static double op_swiglu_bwd(void **b, const shape_t *s) {
    anv_swiglu_backward(b[0], b[1], b[2], s->N, s->F);
    return 0;
}

static void test_swiglu(const char *label, int N, int F) {
    char what[64];
    shape_t s = {.N = N, .F = F};
    bufs_t bs = {0};
    add_floats(&bs, "out", (size_t)N * F, 1, 1, 0);
    add_floats(&bs, "inp", (size_t)N * 2 * F, 3, 0, 0);
    snprintf(what, sizeof what, "swiglu fwd %s", label);
    run_case(what, op_swiglu_fwd, &s, &bs, TOL_EW, 0);

    add_floats(&bs, "dinp", (size_t)N * 2 * F, 1, 1, 0);
    add_floats(&bs, "inp", (size_t)N * 2 * F, 3, 0, 0);
    add_floats(&bs, "dout", (size_t)N * F, 1, 0, 0);
    snprintf(what, sizeof what, "swiglu bwd %s", label);
    run_case(what, op_swiglu_bwd, &s, &bs, TOL_EW, 0);
}

/* ---- element-wise: gelu, residual, vectors, optimizer ---- */

static double op_gelu_fwd(void **b, const shape_t *s) {
    anv_gelu_forward(b[0], b[1], s->n);
    return 0;
}
static double op_gelu_bwd(void **b, const shape_t *s) {
    anv_gelu_backward(b[0], b[1], b[2], s->n);
    return 0;
}
static double op_gelu_bwd_inplace(void **b, const shape_t *s) {
    anv_gelu_backward(b[0], b[1], b[0], s->n);
    return 0;
}
/* the same mask as the CPU's: an element kept on one side and dropped on the other is an error of 1 */
static double op_dropout(void **b, const shape_t *s) {
    anv_dropout(b[0], b[1], s->n, 0.3f, 0x5EEDull, 0);
    return 0;
}
static double op_dropout_acc(void **b, const shape_t *s) {
    anv_dropout(b[0], b[1], s->n, 0.3f, 0x5EEDull, 1);
    return 0;
}
static double op_residual_fwd(void **b, const shape_t *s) {
    anv_residual_forward(b[0], b[1], b[2], s->n);
    return 0;
}
static double op_residual_bwd(void **b, const shape_t *s) {
    anv_residual_backward(b[0], b[1], b[2], s->n);
    return 0;
}
static double op_fill(void **b, const shape_t *s) {
    anv_fill(b[0], s->alpha, s->n);
    return 0;
}
static double op_scale_into(void **b, const shape_t *s) {
    anv_scale_into(b[0], b[1], s->alpha, s->n);
    return 0;
}
static double op_scale_inplace(void **b, const shape_t *s) {
    anv_scale_into(b[0], b[0], s->alpha, s->n);
    return 0;
}
static double op_add_scaled(void **b, const shape_t *s) {
    anv_add_scaled(b[0], b[1], s->alpha, s->n);
    return 0;
}
static double op_sumsq(void **b, const shape_t *s) { return anv_sumsq(b[0], s->n); }
/* Step 3 of lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 over the window [7, 7 + n) of a block
 * in four segments of n / 4 floats (decay 1, 0, 1, 1), the first starting before the window, the last
 * ending past it, 5 floats of padding after the second. The segment arrays are the current device's. */
static double op_adamw(void **b, const shape_t *s) {
    size_t q = s->n / 4, lo = 7;
    size_t *start = anv_device_alloc(8 * sizeof(size_t) + 4, "adamw segments"), *end = start + 4;
    unsigned char *decay = (unsigned char *)(end + 4);
    const size_t bounds[4][2] = {
        {0, lo + q}, {lo + q, lo + 2 * q - 5}, {lo + 2 * q, lo + 3 * q}, {lo + 3 * q, lo + s->n + 3}};
    for (int i = 0; i < 4; i++) start[i] = bounds[i][0], end[i] = bounds[i][1], decay[i] = i != 1;
    anv_adamw_segments_t segs = {4, start, end, decay};
    anv_adamw_update(b[0], b[1], b[2], b[3], lo, s->n, &segs, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f - 0.729f,
                     sqrtf(1.0f - 0.857375f));
    anv_device_sync();
    anv_device_free(start);
    return 0;
}

static void test_elementwise(const char *label, size_t n) {
    char what[64];
    shape_t s = {.n = n, .alpha = 0.37f};
    bufs_t bs = {0};
    struct {
        const char *name;
        op_fn *op;
        int nin;
    } ops[] = {{"gelu fwd", op_gelu_fwd, 1},
               {"gelu bwd", op_gelu_bwd, 2},
               {"gelu bwd in place", op_gelu_bwd_inplace, 1},
               {"residual fwd", op_residual_fwd, 2},
               {"fill", op_fill, 0},
               {"scale_into", op_scale_into, 1},
               {"scale_into in place", op_scale_inplace, 0},
               {"add_scaled", op_add_scaled, 1},
               {"dropout", op_dropout, 1},
               {"dropout accumulate", op_dropout_acc, 1}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        add_floats(&bs, "out", n, 1, 1, 0);
        for (int i = 0; i < ops[k].nin; i++) add_floats(&bs, "in", n, 2, 0, 0);
        snprintf(what, sizeof what, "%s %s", ops[k].name, label);
        run_case(what, ops[k].op, &s, &bs, TOL_EW, 0);
    }
    add_floats(&bs, "da", n, 1, 1, 0);
    add_floats(&bs, "db", n, 1, 1, 0);
    add_floats(&bs, "dout", n, 1, 0, 0);
    snprintf(what, sizeof what, "residual bwd %s", label);
    run_case(what, op_residual_bwd, &s, &bs, TOL_EW, 0);

    add_floats(&bs, "x", n, 3, 0, 0);
    snprintf(what, sizeof what, "sumsq %s", label);
    run_case(what, op_sumsq, &s, &bs, 0, TOL_SUMSQ);

    add_floats(&bs, "p", n, 0.1f, 1, 0);
    add_floats(&bs, "g", n, 0.01f, 0, 0);
    add_floats(&bs, "m", n, 0.005f, 1, 0);
    add_floats(&bs, "v", n, 1e-4f, 1, 1);
    snprintf(what, sizeof what, "adamw %s", label);
    run_case(what, op_adamw, &s, &bs, TOL_EW, 0);
}

/* ---- attention ---- */

/* The scratch buffer is the current device's size, allocated and freed on it. */
static double op_attention_fwd(void **b, const shape_t *s) {
    float *scratch = anv_device_alloc(sizeof(float) * anv_attention_scratch_floats(s->T), "attention scratch");
    anv_attention_forward(b[0], b[1], scratch, b[2], starts_arg(b, 3, s), s->B, s->T, s->C, s->NH, s->NKV);
    anv_device_sync();
    anv_device_free(scratch);
    return 0;
}
static double op_attention_bwd(void **b, const shape_t *s) {
    float *scratch = anv_device_alloc(sizeof(float) * anv_attention_scratch_floats(s->T), "attention scratch");
    anv_attention_backward(b[0], scratch, b[1], b[2], b[3], b[4], starts_arg(b, 5, s), s->B, s->T, s->C, s->NH, s->NKV);
    anv_device_sync();
    anv_device_free(scratch);
    return 0;
}

/* NH query heads and NKV key/value heads, in the precision prec (the CPU's attention is fp32 in both);
 * rows packed with sequences of at most `packed` tokens, or 0. */
static void test_attention(const char *label, int B, int T, int C, int NH, int NKV, anv_precision_t prec, int packed) {
    char what[64];
    double tol = prec == ANV_PRECISION_BF16 ? TOL_ATT_BF16 : TOL_ATT;
    anv_matmul_precision_set(prec);
    shape_t s = {.B = B, .T = T, .C = C, .NH = NH, .NKV = NKV, .packed = packed};
    size_t nqkv = (size_t)B * T * (C + 2 * NKV * (C / NH)), nout = (size_t)B * T * C, nlse = (size_t)B * NH * T;
    bufs_t bs = {0};
    add_floats(&bs, "out", nout, 1, 1, 0);
    add_floats(&bs, "lse", nlse, 1, 1, 0);
    float *qkv = add_floats(&bs, "qkv", nqkv, 1, 0, 0);
    float *qkv_copy = malloc(sizeof(float) * nqkv);
    memcpy(qkv_copy, qkv, sizeof(float) * nqkv);
    int32_t *st = add_starts(&bs, B, T, packed), *st_copy = malloc(sizeof(int32_t) * B * T);
    memcpy(st_copy, st, sizeof(int32_t) * B * T);
    snprintf(what, sizeof what, "attention fwd %s %s", anv_precision_name(prec), label);
    run_case(what, op_attention_fwd, &s, &bs, tol, 0);

    /* the backward's out and lse from the CPU forward, on host memory */
    add_floats(&bs, "dqkv", nqkv, 1, 1, 0);
    add_floats(&bs, "dout", nout, 1, 0, 0);
    float *q = add_floats(&bs, "qkv", nqkv, 0, 0, 0);
    float *out = add_floats(&bs, "out", nout, 0, 0, 0), *lse = add_floats(&bs, "lse", nlse, 0, 0, 0);
    memcpy(q, qkv_copy, sizeof(float) * nqkv);
    memcpy(add_starts(&bs, B, T, 0), st_copy, sizeof(int32_t) * B * T);
    CHECK(anv_device_set("cpu") == 0, "%s", anv_last_error());
    float *scratch = anv_device_alloc(sizeof(float) * anv_attention_scratch_floats(T), "attention scratch");
    anv_attention_forward(out, lse, scratch, q, packed ? st_copy : NULL, B, T, C, NH, NKV);
    anv_device_free(scratch);
    CHECK(anv_device_set("cuda") == 0, "%s", anv_last_error());
    snprintf(what, sizeof what, "attention bwd %s %s", anv_precision_name(prec), label);
    run_case(what, op_attention_bwd, &s, &bs, tol, 0);
    free(qkv_copy);
    free(st_copy);
    anv_matmul_precision_set(ANV_PRECISION_FP32);
}

/* Inference: one sequence of T rows decoded as a prefill of N rows, then one row per call. */
static double op_attention_decode(void **b, const shape_t *s) {
    float *out = b[0], *kc = b[1], *vc = b[2];
    const float *qkv = b[3];
    size_t row = (size_t)s->C + 2 * (size_t)s->NKV * (s->C / s->NH);
    anv_attention_decode(out, kc, vc, qkv, 0, s->N, s->C, s->NH, s->NKV);
    for (int t = s->N; t < s->T; t++)
        anv_attention_decode(out + (size_t)t * s->C, kc, vc, qkv + t * row, t, 1, s->C, s->NH, s->NKV);
    anv_device_sync();
    return 0;
}

static void test_attention_decode(const char *label, int T, int C, int NH, int NKV, int prefill) {
    char what[64];
    shape_t s = {.T = T, .C = C, .NH = NH, .NKV = NKV, .N = prefill};
    size_t KC = (size_t)NKV * (C / NH);
    bufs_t bs = {0};
    add_floats(&bs, "out", (size_t)T * C, 1, 1, 0);
    add_floats(&bs, "kcache", T * KC, 1, 1, 0);
    add_floats(&bs, "vcache", T * KC, 1, 1, 0);
    add_floats(&bs, "qkv", T * (C + 2 * KC), 1, 0, 0);
    snprintf(what, sizeof what, "attention decode %s", label);
    run_case(what, op_attention_decode, &s, &bs, TOL_ATT, 0);
}

/* ---- cross-entropy: the vocabulary in two chunks, forward, loss, backward ---- */

static double op_crossentropy(void **b, const shape_t *s) {
    float *logits = b[0], *lse = b[1], *tlogit = b[2];
    const int32_t *targets = b[3];
    int chunk[3] = {0, s->vsplit, s->V};
    for (int k = 0; k < 2; k++)
        anv_crossentropy_chunk_forward(lse, tlogit, logits + chunk[k], s->ld, targets, s->N, chunk[k],
                                       chunk[k + 1] - chunk[k]);
    double loss = anv_crossentropy_loss_sum(lse, tlogit, targets, s->N);
    for (int k = 0; k < 2; k++)
        anv_crossentropy_chunk_backward(logits + chunk[k], s->ld, lse, targets, 1.0f / s->N, s->N, chunk[k],
                                        chunk[k + 1] - chunk[k]);
    return loss;
}

/* logits (N, ld) with the padding columns [V, ld) that no kernel may touch (compared too). */
static void test_crossentropy(const char *label, int N, int V, int ld, int vsplit) {
    char what[64];
    shape_t s = {.N = N, .V = V, .ld = ld, .vsplit = vsplit};
    bufs_t bs = {0};
    add_floats(&bs, "dlogits", (size_t)N * ld, 2, 1, 0);
    float *lse = add_floats(&bs, "lse", N, 0, 1, 0);
    for (int n = 0; n < N; n++) lse[n] = -INFINITY;
    add_floats(&bs, "tlogit", N, 0, 1, 0);
    add_tokens(&bs, "targets", N, V, 1);
    snprintf(what, sizeof what, "crossentropy %s", label);
    run_case(what, op_crossentropy, &s, &bs, TOL_EW, TOL_LOSS);
}

/* More managed memory than the GPU has free is refused with an error (not paged out to the host). */
static void test_alloc_limit(void) {
    void *p = anv_device_alloc((size_t)1 << 50, "a 1 PiB test buffer");
    CHECK(p == NULL && strstr(anv_last_error(), "out of GPU memory") && strstr(anv_last_error(), "1 PiB test buffer"),
          "a buffer larger than the GPU: %s", p ? "allocated" : anv_last_error());
    anv_device_free(p);
    printf("  1 PiB allocation refused: %s\n", anv_last_error());
    p = anv_device_alloc((size_t)64 << 20, "a 64 MiB test buffer");
    CHECK(p != NULL, "64 MiB after a refused allocation: %s", anv_last_error());
    anv_device_free(p);
}

int main(void) {
    if (anv_device_set("cuda") != 0) {
        printf("skipped: no GPU (%s)\n", anv_last_error());
        return 77;
    }
    anv_rng_seed(&rng, 1234);
    CHECK(strcmp(anv_device(), "cuda") == 0, "device is %s", anv_device());

    test_alloc_limit();
    test_gemm();
    test_matmul("odd", 37, 13, 9, ANV_PRECISION_FP32);
    test_matmul("gpt2", 1024, 768, 3072, ANV_PRECISION_FP32);
    test_matmul("odd", 37, 13, 9, ANV_PRECISION_BF16);
    test_matmul("gpt2", 1024, 768, 3072, ANV_PRECISION_BF16);
    test_lora("odd", 37, 13, 9, 27, 9, 3, ANV_PRECISION_FP32); /* k's adapter in a fused q | k | v */
    test_lora("odd", 37, 13, 9, 27, 9, 3, ANV_PRECISION_BF16);
    test_lora("llama mlp", 256, 576, 1536, 3072, 1536, 16, ANV_PRECISION_FP32); /* up's in gate | up */
    test_lora("llama mlp", 256, 576, 1536, 3072, 1536, 16, ANV_PRECISION_BF16);
    test_matmul_nt("odd", 37, 13, 9, ANV_PRECISION_FP32);
    test_matmul_nt("odd", 37, 13, 9, ANV_PRECISION_BF16);
    test_matmul_nt("gpt2 head", 256, 768, 50304, ANV_PRECISION_FP32); /* the padded vocabulary */
    test_matmul_nt("gpt2 head", 256, 768, 50304, ANV_PRECISION_BF16);
    test_matmul_nt("vocab 50257", 256, 768, 50257, ANV_PRECISION_BF16);
    test_bf16_rounds();
    test_embedding("odd", 3, 7, 13, 20, 5, 1, 0);
    test_embedding("gpt2", 4, 256, 768, 50257, 512, 1, 0);
    test_embedding("gpt2 packed rows", 4, 256, 768, 50257, 512, 1, 60);
    test_embedding("odd no wpe", 3, 7, 13, 20, 5, 0, 0);
    test_embedding("rotary no wpe", 2, 256, 512, 32000, 512, 0, 0);
    test_layernorm("odd", 37, 13);
    test_layernorm("gpt2", 1024, 768);
    test_rmsnorm("odd", 37, 13);
    test_rmsnorm("llama", 1024, 2048);
    test_rope("odd", 3, 7, 0, 3, 1, 10, 0);
    test_rope("llama", 2, 256, 0, 32, 8, 64, 0);
    test_rope("llama pos 100000", 1, 16, 100000, 32, 8, 128, 0);
    test_rope("packed rows", 2, 256, 0, 32, 8, 64, 40);
    test_swiglu("odd", 37, 13);
    test_swiglu("llama", 512, 8192);
    test_elementwise("odd", 1001);
    test_elementwise("gpt2", (size_t)1024 * 3072 + 7);
    test_attention("hs 8", 2, 37, 24, 3, 3, ANV_PRECISION_FP32, 0);
    test_attention("hs 20", 1, 70, 60, 3, 3, ANV_PRECISION_FP32, 0);
    test_attention("hs 96", 2, 33, 192, 2, 2, ANV_PRECISION_FP32, 0);
    test_attention("hs 128", 1, 5, 128, 1, 1, ANV_PRECISION_FP32, 0);
    test_attention("gpt2", 4, 256, 768, 12, 12, ANV_PRECISION_FP32, 0);
    /* grouped-query (NH / NKV query heads per key/value head) and multi-query (NKV 1) */
    test_attention("gqa 4/2 hs 20", 2, 37, 80, 4, 2, ANV_PRECISION_FP32, 0);
    test_attention("gpt2 packed rows", 2, 256, 768, 12, 12, ANV_PRECISION_FP32, 70);
    test_attention("gqa packed rows of short ones", 1, 300, 256, 4, 2, ANV_PRECISION_FP32, 6);
    test_attention("mqa 6/1 hs 64", 1, 70, 384, 6, 1, ANV_PRECISION_FP32, 0);
    test_attention("llama 32/8 hs 64", 1, 256, 2048, 32, 8, ANV_PRECISION_FP32, 0);
    /* the tensor-core kernels: head sizes 32, 64 and 128, ragged last tiles; hs 20 stays fp32 */
    test_attention("hs 32", 2, 100, 64, 2, 2, ANV_PRECISION_BF16, 0);
    test_attention("hs 128", 1, 129, 256, 2, 2, ANV_PRECISION_BF16, 0);
    test_attention("hs 20", 1, 70, 60, 3, 3, ANV_PRECISION_BF16, 0);
    test_attention("gpt2", 4, 256, 768, 12, 12, ANV_PRECISION_BF16, 0);
    test_attention("gpt2 T 1024", 1, 1024, 768, 12, 12, ANV_PRECISION_BF16, 0);
    /* grouped-query and multi-query on tensor cores; hs 20 takes the fp32 kernels in bf16 too */
    test_attention("gqa 4/2 hs 32", 2, 100, 128, 4, 2, ANV_PRECISION_BF16, 0);
    test_attention("mqa 6/1 hs 64", 1, 130, 384, 6, 1, ANV_PRECISION_BF16, 0);
    test_attention("llama 32/8 hs 128", 1, 512, 4096, 32, 8, ANV_PRECISION_BF16, 0);
    test_attention("gqa 4/2 hs 20", 2, 37, 80, 4, 2, ANV_PRECISION_BF16, 0);
    test_attention("gpt2 packed rows", 2, 256, 768, 12, 12, ANV_PRECISION_BF16, 70);
    test_attention("gqa packed rows of short ones", 1, 300, 256, 4, 2, ANV_PRECISION_BF16, 6);
    test_attention_decode("hs 20", 70, 60, 3, 3, 5);
    test_attention_decode("hs 128", 40, 256, 2, 2, 1);
    test_attention_decode("gpt2", 300, 768, 12, 12, 64);
    test_attention_decode("gqa 4/2 hs 20", 70, 80, 4, 2, 5);
    test_attention_decode("mqa 6/1 hs 128", 40, 768, 6, 1, 1);
    test_attention_decode("llama 32/8 hs 64", 300, 2048, 32, 8, 64);
    test_crossentropy("odd", 37, 101, 104, 60);
    test_crossentropy("gpt2", 1024, 50257, 50304, 32768);
    return check_done("test_cuda_kernels");
}
