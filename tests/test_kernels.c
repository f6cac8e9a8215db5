/* Every CPU kernel's forward and backward against PyTorch (tests/golden/kernels.safetensors and
 * kernels_llama.safetensors, made by tools/torch_reference.py), the built-in GEMM against a double-precision product
 * for every transpose combination, and bitwise determinism of the kernels for a fixed thread count. */
#include "anvil/kernels.h"

#include "check.h"
#include "golden_io.h"
#include "kernels/cpu/gemm.h"
#include <math.h>
#include <pthread.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define TOL_FWD 1e-5
#define TOL_BWD 1e-4

static float *zeros(size_t n) { return calloc(n + 1, sizeof(float)); }

static void test_embedding(anv_safetensors_t *st) {
    int B = 2, T = 5, V = 11, C = 6;
    int32_t *tok = golden_i32(st, "emb.tokens", NULL);
    float *wte = golden_f32(st, "emb.wte", NULL), *wpe = golden_f32(st, "emb.wpe", NULL);
    float *dout = golden_f32(st, "emb.dout", NULL);
    float *out = zeros(B * T * C), *dwte = zeros(V * C), *dwpe = zeros(T * C);
    anv_embedding_forward(out, tok, NULL, wte, wpe, B, T, C);
    golden_compare(st, "embedding forward", "emb.out", out, B * T * C, TOL_FWD);
    anv_embedding_backward(dwte, dwpe, dout, tok, NULL, B, T, C);
    golden_compare(st, "embedding backward dwte", "emb.dwte", dwte, V * C, TOL_BWD);
    golden_compare(st, "embedding backward dwpe", "emb.dwpe", dwpe, T * C, TOL_BWD);
    free(tok), free(wte), free(wpe), free(dout), free(out), free(dwte), free(dwpe);
}

static void test_layernorm(anv_safetensors_t *st) {
    int N = 9, C = 40;
    float *x = golden_f32(st, "ln.inp", NULL), *w = golden_f32(st, "ln.w", NULL), *b = golden_f32(st, "ln.b", NULL);
    float *dout = golden_f32(st, "ln.dout", NULL);
    float *out = zeros(N * C), *mean = zeros(N), *rstd = zeros(N), *dx = zeros(N * C), *dw = zeros(C), *db = zeros(C);
    anv_layernorm_forward(out, mean, rstd, x, w, b, N, C);
    golden_compare(st, "layernorm forward", "ln.out", out, N * C, TOL_FWD);
    golden_compare(st, "layernorm mean", "ln.mean", mean, N, TOL_FWD);
    golden_compare(st, "layernorm rstd", "ln.rstd", rstd, N, TOL_FWD);
    anv_layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    golden_compare(st, "layernorm backward dinp", "ln.dinp", dx, N * C, TOL_BWD);
    golden_compare(st, "layernorm backward dw", "ln.dw", dw, C, TOL_BWD);
    golden_compare(st, "layernorm backward db", "ln.db", db, C, TOL_BWD);
    /* dw, db and dinp accumulate: a second backward doubles them */
    float *ref = golden_f32(st, "ln.dw", NULL);
    anv_layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    for (int c = 0; c < C; c++) ref[c] *= 2;
    double err = check_rel_err(dw, ref, C);
    printf("  %-44s rel err %.2e\n", "layernorm backward accumulates (2x dw)", err);
    CHECK(err <= TOL_BWD, "accumulated dw rel err %.3e", err);
    free(ref), free(x), free(w), free(b), free(dout), free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
}

static void test_matmul(anv_safetensors_t *st) {
    int N = 33, C = 260, OC = 72;
    float *x = golden_f32(st, "mm.inp", NULL), *w = golden_f32(st, "mm.w", NULL);
    float *bias = golden_f32(st, "mm.bias", NULL);
    float *dout = golden_f32(st, "mm.dout", NULL);
    float *out = zeros(N * OC), *dx = zeros(N * C), *dw = zeros(C * OC), *db = zeros(OC);
    anv_matmul_forward(out, x, w, bias, N, C, OC);
    golden_compare(st, "matmul forward", "mm.out", out, N * OC, TOL_FWD);
    anv_matmul_backward(dx, dw, db, dout, x, w, N, C, OC);
    golden_compare(st, "matmul backward dinp", "mm.dinp", dx, N * C, TOL_BWD);
    golden_compare(st, "matmul backward dw", "mm.dw", dw, C * OC, TOL_BWD);
    golden_compare(st, "matmul backward dbias", "mm.dbias", db, OC, TOL_BWD);
    free(x), free(w), free(bias), free(dout), free(out), free(dx), free(dw), free(db);

    N = 10, C = 24, OC = 64;
    x = golden_f32(st, "mmnt.inp", NULL), w = golden_f32(st, "mmnt.w", NULL), dout = golden_f32(st, "mmnt.dout", NULL);
    out = zeros(N * OC), dx = zeros(N * C), dw = zeros(OC * C);
    anv_matmul_nt_forward(out, x, w, N, C, OC);
    golden_compare(st, "matmul_nt (LM head) forward", "mmnt.out", out, N * OC, TOL_FWD);
    anv_matmul_nt_backward(dx, dw, dout, x, w, N, C, OC);
    golden_compare(st, "matmul_nt backward dinp", "mmnt.dinp", dx, N * C, TOL_BWD);
    golden_compare(st, "matmul_nt backward dw", "mmnt.dw", dw, OC * C, TOL_BWD);
    free(x), free(w), free(dout), free(out), free(dx), free(dw);
}

static void test_attention(anv_safetensors_t *st) {
    int B = 2, T = 7, C = 12, NH = 3;
    float *qkv = golden_f32(st, "att.qkv", NULL), *dout = golden_f32(st, "att.dout", NULL);
    float *out = zeros(B * T * C), *lse = zeros(B * NH * T), *dqkv = zeros(B * T * 3 * C);
    float *scratch = zeros(anv_attention_scratch_floats(T));
    anv_attention_forward(out, lse, scratch, qkv, NULL, B, T, C, NH, NH);
    golden_compare(st, "attention forward", "att.out", out, B * T * C, TOL_FWD);
    golden_compare(st, "attention log-sum-exp", "att.lse", lse, B * NH * T, TOL_FWD);
    anv_attention_backward(dqkv, scratch, dout, qkv, out, lse, NULL, B, T, C, NH, NH);
    golden_compare(st, "attention backward dqkv", "att.dqkv", dqkv, B * T * 3 * C, TOL_BWD);
    free(qkv), free(dout), free(out), free(lse), free(dqkv), free(scratch);
}

/* Decoding one sequence (b) of qkv (B, T, 3C) into out (T, C): a prefill of `prefill` rows, then one
 * row per call; checks that the caches received the keys and values. */
static void decode_sequence(float *out, const float *qkv, int b, int T, int C, int NH, int prefill) {
    float *kc = zeros((size_t)T * C), *vc = zeros((size_t)T * C);
    const float *seq = qkv + (size_t)b * T * 3 * C;
    anv_attention_decode(out, kc, vc, seq, 0, prefill, C, NH, NH);
    for (int t = prefill; t < T; t++)
        anv_attention_decode(out + (size_t)t * C, kc, vc, seq + (size_t)t * 3 * C, t, 1, C, NH, NH);
    int cached = 1;
    for (int t = 0; t < T; t++)
        cached &= !memcmp(kc + (size_t)t * C, seq + (size_t)t * 3 * C + C, sizeof(float) * C) &&
                  !memcmp(vc + (size_t)t * C, seq + (size_t)t * 3 * C + 2 * C, sizeof(float) * C);
    CHECK(cached, "attention decode: the caches hold the sequence's keys and values");
    free(kc), free(vc);
}

/* anv_attention_decode against PyTorch's attention (the golden), and on a sequence of 200 rows (several
 * of the CPU kernel's 64-key blocks) against anv_attention_forward. */
static void test_attention_decode(anv_safetensors_t *st) {
    int B = 2, T = 7, C = 12, NH = 3;
    float *qkv = golden_f32(st, "att.qkv", NULL), *out = zeros(B * T * C);
    for (int b = 0; b < B; b++) decode_sequence(out + (size_t)b * T * C, qkv, b, T, C, NH, 3);
    golden_compare(st, "attention decode (prefill 3, then rows)", "att.out", out, B * T * C, TOL_FWD);
    free(qkv), free(out);

    T = 200, C = 64, NH = 4;
    float *big = zeros((size_t)T * 3 * C), *ref = zeros((size_t)T * C), *lse = zeros((size_t)NH * T);
    float *got = zeros((size_t)T * C), *scratch = zeros(anv_attention_scratch_floats(T));
    uint64_t state = 7;
    for (int i = 0; i < T * 3 * C; i++) { /* uniform in [-1, 1) from a 64-bit LCG's top 24 bits */
        state = state * 6364136223846793005u + 1442695040888963407u;
        big[i] = (float)(state >> 40) / 8388608.0f - 1.0f;
    }
    anv_attention_forward(ref, lse, scratch, big, NULL, 1, T, C, NH, NH);
    decode_sequence(got, big, 0, T, C, NH, 130);
    double num = 0, den = 0;
    for (int i = 0; i < T * C; i++) {
        double d = fabs((double)got[i] - ref[i]);
        num = d > num || isnan(d) ? d : num;
        den = fabs(ref[i]) > den ? fabs(ref[i]) : den;
    }
    printf("  %-34s max|diff|/max|ref| = %.2e\n", "attention decode T=200 vs forward", num / den);
    CHECK(num / den <= TOL_FWD, "attention decode T=200 against the forward: %g", num / den);
    free(big), free(ref), free(lse), free(got), free(scratch);
}

/* ---- the Llama family's kernels (tests/golden/kernels_llama.safetensors) ---- */

static void test_rmsnorm(anv_safetensors_t *st) {
    int N = 9, C = 40;
    float eps = (float)golden_meta_double(st, "rms_eps");
    float *x = golden_f32(st, "rms.inp", NULL), *w = golden_f32(st, "rms.w", NULL),
          *dout = golden_f32(st, "rms.dout", NULL);
    float *out = zeros(N * C), *rstd = zeros(N), *dx = zeros(N * C), *dw = zeros(C);
    anv_rmsnorm_forward(out, rstd, x, w, eps, N, C);
    golden_compare(st, "rmsnorm forward", "rms.out", out, N * C, TOL_FWD);
    golden_compare(st, "rmsnorm rstd", "rms.rstd", rstd, N, TOL_FWD);
    anv_rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
    golden_compare(st, "rmsnorm backward dinp", "rms.dinp", dx, N * C, TOL_BWD);
    golden_compare(st, "rmsnorm backward dw", "rms.dw", dw, C, TOL_BWD);
    /* dinp and dw accumulate: a second backward doubles them */
    float *ref = golden_f32(st, "rms.dinp", NULL);
    anv_rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
    for (int i = 0; i < N * C; i++) ref[i] *= 2;
    double err = check_rel_err(dx, ref, (size_t)N * C);
    printf("  %-44s rel err %.2e\n", "rmsnorm backward accumulates (2x dinp)", err);
    CHECK(err <= TOL_BWD, "accumulated dinp rel err %.3e", err);
    free(ref), free(x), free(w), free(dout), free(out), free(rstd), free(dx), free(dw);
}

/* RoPE at positions 3.. on a fused qkv; v must come through untouched. */
static void test_rope(anv_safetensors_t *st) {
    int B = 2, T = 5, NH = golden_meta_int(st, "rope_n_head"), NKV = golden_meta_int(st, "rope_n_kv_head");
    int hs = golden_meta_int(st, "rope_head_size"), pos = golden_meta_int(st, "rope_pos");
    size_t n;
    float *qkv = golden_f32(st, "rope.qkv", &n), *d = golden_f32(st, "rope.dout", NULL);
    float *inv_freq = golden_f32(st, "rope.inv_freq", NULL);
    anv_rope_forward(qkv, NULL, inv_freq, B, T, pos, NH, NKV, hs);
    golden_compare(st, "rope forward (positions 3..7)", "rope.out", qkv, n, TOL_FWD);
    anv_rope_backward(d, NULL, inv_freq, B, T, pos, NH, NKV, hs);
    golden_compare(st, "rope backward", "rope.dqkv", d, n, TOL_BWD);
    free(qkv), free(d), free(inv_freq);
}

static void test_swiglu(anv_safetensors_t *st) {
    int N = 7, F = 33;
    float *x = golden_f32(st, "swiglu.inp", NULL), *dout = golden_f32(st, "swiglu.dout", NULL);
    float *out = zeros(N * F), *dx = zeros(2 * N * F);
    anv_swiglu_forward(out, x, N, F);
    golden_compare(st, "swiglu forward", "swiglu.out", out, N * F, TOL_FWD);
    anv_swiglu_backward(dx, x, dout, N, F);
    golden_compare(st, "swiglu backward", "swiglu.dinp", dx, 2 * N * F, TOL_BWD);
    free(x), free(dout), free(out), free(dx);
}

/* Grouped-query attention ("gqa": 2 query heads per K/V head; "mqa": one K/V head for all): forward,
 * backward (twice, bitwise the same), and decoding one row at a time after a prefill. */
static void test_gqa(anv_safetensors_t *st, const char *name, int B, int T) {
    char key[64], what[64];
    snprintf(key, sizeof key, "%s_n_head", name);
    int NH = golden_meta_int(st, key);
    snprintf(key, sizeof key, "%s_n_kv_head", name);
    int NKV = golden_meta_int(st, key);
    snprintf(key, sizeof key, "%s_head_size", name);
    int hs = golden_meta_int(st, key), C = NH * hs, KC = NKV * hs, QKV = C + 2 * KC;
    snprintf(key, sizeof key, "%s.qkv", name);
    float *qkv = golden_f32(st, key, NULL);
    snprintf(key, sizeof key, "%s.dout", name);
    float *dout = golden_f32(st, key, NULL);
    float *out = zeros(B * T * C), *lse = zeros(B * NH * T), *d1 = zeros(B * T * QKV), *d2 = zeros(B * T * QKV);
    float *scratch = zeros(anv_attention_scratch_floats(T));
    anv_attention_forward(out, lse, scratch, qkv, NULL, B, T, C, NH, NKV);
    snprintf(what, sizeof what, "%s attention forward (NH %d, NKV %d)", name, NH, NKV);
    snprintf(key, sizeof key, "%s.out", name);
    golden_compare(st, what, key, out, B * T * C, TOL_FWD);
    snprintf(key, sizeof key, "%s.lse", name);
    golden_compare(st, "  log-sum-exp", key, lse, B * NH * T, TOL_FWD);
    anv_attention_backward(d1, scratch, dout, qkv, out, lse, NULL, B, T, C, NH, NKV);
    anv_attention_backward(d2, scratch, dout, qkv, out, lse, NULL, B, T, C, NH, NKV);
    snprintf(key, sizeof key, "%s.dqkv", name);
    golden_compare(st, "  backward dqkv", key, d1, B * T * QKV, TOL_BWD);
    CHECK(!memcmp(d1, d2, sizeof(float) * B * T * QKV), "%s backward is not deterministic", name);
    float *dec = zeros(B * T * C), *kc = zeros(T * KC), *vc = zeros(T * KC);
    for (int b = 0; b < B; b++) {
        const float *seq = qkv + (size_t)b * T * QKV;
        anv_attention_decode(dec + (size_t)b * T * C, kc, vc, seq, 0, 2, C, NH, NKV);
        for (int t = 2; t < T; t++)
            anv_attention_decode(dec + ((size_t)b * T + t) * C, kc, vc, seq + (size_t)t * QKV, t, 1, C, NH, NKV);
    }
    snprintf(key, sizeof key, "%s.out", name);
    golden_compare(st, "  decode (prefill 2, then rows)", key, dec, B * T * C, TOL_FWD);
    free(qkv), free(dout), free(out), free(lse), free(d1), free(d2), free(scratch), free(dec), free(kc), free(vc);
}

/* Attention over several of the CPU kernel's 64-row blocks (T = 150, a ragged last block), grouped-query
 * heads, forward and backward against the plain equations in double over the whole T x T. */
static void test_attention_blocks(void) {
    enum { T = 150, NH = 4, NKV = 2, hs = 16, C = NH * hs, W = C + 2 * NKV * hs };
    float *qkv = zeros(T * W), *dout = zeros(T * C), *out = zeros(T * C), *lse = zeros(NH * T), *dqkv = zeros(T * W);
    float *scratch = zeros(anv_attention_scratch_floats(T));
    double *ref_out = calloc(T * C, sizeof(double)), *ref_d = calloc(T * W, sizeof(double));
    double *P = calloc(T * T, sizeof(double)), *dS = calloc(T * T, sizeof(double));
    uint64_t state = 11;
    for (int i = 0; i < T * W + T * C; i++) { /* uniform in [-1, 1) */
        state = state * 6364136223846793005u + 1442695040888963407u;
        float x = (float)(state >> 40) / 8388608.0f - 1.0f;
        if (i < T * W)
            qkv[i] = 2.0f * x;
        else
            dout[i - T * W] = x;
    }
    double scale = 1.0 / sqrt((double)hs);
    for (int h = 0; h < NH; h++) {
        int kq = C + (h / (NH / NKV)) * hs, kv = kq + NKV * hs; /* column of this head's k and v */
        for (int t = 0; t < T; t++) {
            double mx = -INFINITY, sum = 0, d = 0;
            for (int u = 0; u <= t; u++) {
                double dot = 0;
                for (int j = 0; j < hs; j++) dot += (double)qkv[t * W + h * hs + j] * qkv[u * W + kq + j];
                P[t * T + u] = dot * scale;
                mx = P[t * T + u] > mx ? P[t * T + u] : mx;
            }
            for (int u = 0; u <= t; u++) sum += (P[t * T + u] = exp(P[t * T + u] - mx));
            for (int u = 0; u <= t; u++) P[t * T + u] /= sum;
            for (int j = 0; j < hs; j++) {
                double o = 0;
                for (int u = 0; u <= t; u++) o += P[t * T + u] * qkv[u * W + kv + j];
                ref_out[t * C + h * hs + j] = o;
                d += o * dout[t * C + h * hs + j];
            }
            for (int u = 0; u <= t; u++) {
                double dp = 0;
                for (int j = 0; j < hs; j++) dp += (double)dout[t * C + h * hs + j] * qkv[u * W + kv + j];
                dS[t * T + u] = P[t * T + u] * (dp - d);
            }
        }
        for (int t = 0; t < T; t++)
            for (int u = 0; u <= t; u++)
                for (int j = 0; j < hs; j++) {
                    ref_d[t * W + h * hs + j] += scale * dS[t * T + u] * qkv[u * W + kq + j];
                    ref_d[u * W + kq + j] += scale * dS[t * T + u] * qkv[t * W + h * hs + j];
                    ref_d[u * W + kv + j] += P[t * T + u] * dout[t * C + h * hs + j];
                }
    }
    anv_attention_forward(out, lse, scratch, qkv, NULL, 1, T, C, NH, NKV);
    anv_attention_backward(dqkv, scratch, dout, qkv, out, lse, NULL, 1, T, C, NH, NKV);
    const struct {
        const char *what;
        const float *got;
        const double *want;
        int n;
        double tol;
    } cmp[] = {{"attention T=150 (3 row blocks) forward", out, ref_out, T * C, TOL_FWD},
               {"attention T=150 backward dqkv", dqkv, ref_d, T * W, TOL_BWD}};
    for (int c = 0; c < 2; c++) {
        double num = 0, den = 0;
        for (int i = 0; i < cmp[c].n; i++) {
            double e = fabs(cmp[c].got[i] - cmp[c].want[i]);
            num = e > num || isnan(e) ? e : num;
            den = fabs(cmp[c].want[i]) > den ? fabs(cmp[c].want[i]) : den;
        }
        printf("  %-44s max|diff|/max|ref| = %.2e\n", cmp[c].what, num / den);
        CHECK(num / den <= cmp[c].tol, "%s: %g", cmp[c].what, num / den);
    }
    free(qkv), free(dout), free(out), free(lse), free(dqkv), free(scratch), free(ref_out), free(ref_d), free(P),
        free(dS);
}

/* Without position embeddings (rotary models) the embedding is the token rows alone. */
static void test_embedding_no_positions(void) {
    int32_t tok[4] = {2, 0, 2, 1};
    float wte[3 * 4], out[4 * 4], dwte[3 * 4] = {0}, dout[4 * 4];
    for (int i = 0; i < 12; i++) wte[i] = (float)i;
    for (int i = 0; i < 16; i++) dout[i] = 0.5f * i;
    anv_embedding_forward(out, tok, NULL, wte, NULL, 2, 2, 4);
    anv_embedding_backward(dwte, NULL, dout, tok, NULL, 2, 2, 4);
    int ok = 1;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) ok &= out[r * 4 + c] == wte[tok[r] * 4 + c];
    for (int c = 0; c < 4; c++) ok &= dwte[2 * 4 + c] == dout[c] + dout[8 + c] && dwte[c] == dout[4 + c];
    CHECK(ok, "embedding without wpe");
}

static void test_llama_kernels(anv_safetensors_t *st) {
    test_rmsnorm(st);
    test_rope(st);
    test_swiglu(st);
    test_gqa(st, "gqa", 2, 7);
    test_gqa(st, "mqa", 1, 6);
    test_attention_blocks();
    test_embedding_no_positions();
}

static void test_pointwise(anv_safetensors_t *st) {
    size_t n;
    float *x = golden_f32(st, "gelu.inp", &n), *dout = golden_f32(st, "gelu.dout", NULL);
    float *out = zeros(n), *dx = zeros(n);
    anv_gelu_forward(out, x, n);
    golden_compare(st, "gelu forward", "gelu.out", out, n, TOL_FWD);
    anv_gelu_backward(dx, x, dout, n);
    golden_compare(st, "gelu backward", "gelu.dinp", dx, n, TOL_BWD);
    anv_gelu_backward(dout, x, dout, n); /* in place */
    golden_compare(st, "gelu backward in place", "gelu.dinp", dout, n, TOL_BWD);
    free(x), free(dout), free(out), free(dx);

    float *a = golden_f32(st, "res.a", &n), *b = golden_f32(st, "res.b", NULL);
    dout = golden_f32(st, "res.dout", NULL);
    float *o = zeros(n), *da = zeros(n), *db = zeros(n);
    anv_residual_forward(o, a, b, n);
    golden_compare(st, "residual forward", "res.out", o, n, TOL_FWD);
    anv_residual_backward(da, db, dout, n);
    golden_compare(st, "residual backward da", "res.da", da, n, TOL_BWD);
    golden_compare(st, "residual backward db", "res.db", db, n, TOL_BWD);
    free(a), free(b), free(dout), free(o), free(da), free(db);
}

/* The golden logits (N, Vp) through the chunked kernels, in chunks of `chunk` columns; the padding
 * columns [V, Vp) are outside every chunk, so they are zeroed here to match the golden dlogits. */
static void crossentropy_chunked(anv_safetensors_t *st, int chunk) {
    int N = 6, V = golden_meta_int(st, "V"), Vp = golden_meta_int(st, "Vp");
    float *logits = golden_f32(st, "ce.logits", NULL), *lse = zeros(N), *tlogit = zeros(N);
    int32_t *tgt = golden_i32(st, "ce.targets", NULL);
    int count = 0;
    for (int i = 0; i < N; i++) count += tgt[i] >= 0, lse[i] = -INFINITY;
    for (int v0 = 0; v0 < V; v0 += chunk)
        anv_crossentropy_chunk_forward(lse, tlogit, logits + v0, Vp, tgt, N, v0, V - v0 < chunk ? V - v0 : chunk);
    float loss = (float)(anv_crossentropy_loss_sum(lse, tlogit, tgt, N) / count);
    char what[96];
    snprintf(what, sizeof what, "cross-entropy lse, chunks of %d of %d", chunk, V);
    golden_compare(st, what, "ce.lse", lse, N, TOL_FWD);
    snprintf(what, sizeof what, "cross-entropy mean loss (2 of 6 ignored), chunks of %d", chunk);
    golden_compare(st, what, "ce.loss", &loss, 1, TOL_FWD);
    for (int v0 = 0; v0 < V; v0 += chunk)
        anv_crossentropy_chunk_backward(logits + v0, Vp, lse, tgt, 1.0f / count, N, v0,
                                        V - v0 < chunk ? V - v0 : chunk);
    for (int n = 0; n < N; n++)
        for (int v = V; v < Vp; v++) logits[(size_t)n * Vp + v] = 0.0f;
    snprintf(what, sizeof what, "cross-entropy dlogits, chunks of %d", chunk);
    golden_compare(st, what, "ce.dlogits", logits, (size_t)N * Vp, TOL_BWD);
    free(logits), free(lse), free(tlogit), free(tgt);
}

static void test_crossentropy(anv_safetensors_t *st) {
    int V = golden_meta_int(st, "V");
    crossentropy_chunked(st, V); /* one chunk: the whole vocabulary */
    crossentropy_chunked(st, 16);
    crossentropy_chunked(st, 7);
}

/* C = alpha op(A) op(B) + beta C against a double-precision loop, sizes crossing every block edge. */
static void test_gemm_builtin(void) {
    int M = 131, N = 270, K = 300;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C0 = malloc(sizeof(float) * M * N), *C = malloc(sizeof(float) * M * N), *ref = malloc(sizeof(float) * M * N);
    anv_rng_t rng;
    anv_rng_seed(&rng, 7);
    for (int i = 0; i < M * K; i++) A[i] = (float)anv_rng_normal(&rng);
    for (int i = 0; i < K * N; i++) B[i] = (float)anv_rng_normal(&rng);
    for (int i = 0; i < M * N; i++) C0[i] = (float)anv_rng_normal(&rng);
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            float alpha = 0.5f, beta = ta ? 1.0f : (tb ? 0.0f : -2.0f);
            for (int i = 0; i < M; i++) {
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < K; k++)
                        s += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
                    ref[i * N + j] = (float)(alpha * s + (beta != 0.0f ? beta * C0[i * N + j] : 0.0));
                }
            }
            memcpy(C, C0, sizeof(float) * M * N);
            anv_gemm_builtin(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C, N);
            double err = check_rel_err(C, ref, (size_t)M * N);
            printf("  built-in gemm ta=%d tb=%d beta=%-4g %dx%dx%d   rel err %.2e\n", ta, tb, beta, M, N, K, err);
            CHECK(err <= 1e-5, "gemm ta=%d tb=%d rel err %.3e", ta, tb, err);
        }
    }
    free(A), free(B), free(C0), free(C), free(ref);
}

/* The same inputs give the same bits, run after run, at the current thread count. */
static void test_determinism(anv_safetensors_t *st) {
    int B = 2, T = 7, C = 12, NH = 3;
    float *qkv = golden_f32(st, "att.qkv", NULL), *dout = golden_f32(st, "att.dout", NULL);
    float *out = zeros(B * T * C), *lse = zeros(B * NH * T), *d1 = zeros(B * T * 3 * C), *d2 = zeros(B * T * 3 * C);
    float *scratch = zeros(anv_attention_scratch_floats(T));
    anv_attention_forward(out, lse, scratch, qkv, NULL, B, T, C, NH, NH);
    anv_attention_backward(d1, scratch, dout, qkv, out, lse, NULL, B, T, C, NH, NH);
    anv_attention_backward(d2, scratch, dout, qkv, out, lse, NULL, B, T, C, NH, NH);
    CHECK(!memcmp(d1, d2, sizeof(float) * B * T * 3 * C), "attention backward not bitwise repeatable");
    free(qkv), free(dout), free(out), free(lse), free(d1), free(d2), free(scratch);
}

/* Dropout: about p of the elements zeroed, the rest scaled by 1 / (1 - p); accumulate adds the same
 * masked values; the mask depends on the seed only (the same bits on 1 thread and on all, so PyTorch and
 * the GPU draw it too: tools/torch_reference.py, test_cuda_kernels). */
static void test_dropout(void) {
    size_t n = 100003;
    float *x = zeros(n), *a = zeros(n), *b = zeros(n);
    for (size_t i = 0; i < n; i++) x[i] = 1.0f + (float)(i % 7);
    anv_dropout(a, x, n, 0.3f, 42, 0);
    size_t zeroed = 0;
    int scaled = 1;
    for (size_t i = 0; i < n; i++) {
        zeroed += a[i] == 0.0f;
        scaled &= a[i] == 0.0f || a[i] == x[i] * (1.0f / 0.7f);
    }
    double frac = (double)zeroed / (double)n;
    printf("dropout p 0.3: %.4f of %zu zeroed\n", frac, n);
    CHECK(scaled && frac > 0.29 && frac < 0.31, "dropout: %.4f zeroed, scaled %d", frac, scaled);
    int threads = anv_threads_count();
    anv_threads_set(1);
    anv_dropout(b, x, n, 0.3f, 42, 0);
    anv_threads_set(threads);
    CHECK(!memcmp(a, b, n * sizeof *a), "dropout: another mask on one thread");
    anv_dropout(b, x, n, 0.3f, 43, 0);
    CHECK(memcmp(a, b, n * sizeof *a) != 0, "dropout: seeds 42 and 43 give one mask");
    anv_dropout(b, x, n, 0.3f, 42, 1); /* b = mask43(x) + mask42(x) */
    anv_dropout(a, x, n, 0.3f, 43, 1);
    CHECK(!memcmp(a, b, n * sizeof *a), "dropout: accumulate does not add the masked values");
    anv_dropout(b, x, n, 0.0f, 42, 0);
    CHECK(!memcmp(b, x, n * sizeof *x), "dropout 0 changed its input");
    free(x), free(a), free(b);
}

/* Every test above, once per instruction-set copy of the kernels this CPU runs. */
/* The profiler counts the calls of the thread that started it (not another thread's, nor calls after
 * stop), and reports the kernels called, the most time first, at most max of them. */
/* The int8 kernels: quantization against its definition (q = round-to-even(x 127 / amax), d = amax / 127),
 * and matmul_q8_forward on the packed weight against the same quantized product in double (exact integer
 * dots, so only the fp32 sum over blocks differs: 1e-5), with a bias, tiles of rows past a multiple of 8
 * and an OC past the last panel of 16, and blocks of extreme values (weights of -128, inputs of +-127) whose
 * pairs of products are the largest any kernel adds in 16 bits; the product's error against fp32 weights and inputs,
 * what q8 costs (a few 1e-3, as llama.cpp's q8_0); every row the same bits alone as in the batch, and the same bits on
 * every instruction set. */
static void test_q8(void) {
    enum { N = 19, IC = 96, OC = 37, BL = IC / ANV_Q8_BLOCK };
    static float x[N * IC], w[OC * IC], bias[OC], out[N * OC], one[OC], xd[N * BL], wd[OC * BL], pd[OC * BL];
    static float first_isa[N * OC];
    static int8_t xq[N * IC], wq[OC * IC], pq[OC * IC];
    static int have_first;
    anv_rng_t rng;
    anv_rng_seed(&rng, 41);
    for (int i = 0; i < N * IC; i++) x[i] = (float)anv_rng_normal(&rng);
    for (int i = 0; i < OC * IC; i++) w[i] = (float)anv_rng_normal(&rng) * 0.1f;
    for (int i = 0; i < OC; i++) bias[i] = (float)anv_rng_normal(&rng);
    for (int i = 0; i < 32; i++) x[i] = 0.0f;                              /* an all-zero block */
    for (int i = 32; i < 64; i++) x[IC + i] = 1.0f, x[2 * IC + i] = -1.0f; /* blocks of 127 and of -127 */
    anv_quantize_q8(wq, wd, w, OC * IC);
    anv_quantize_q8(xq, xd, x, N * IC);
    int exact = 1;
    for (int b = 0; b < OC * BL; b++) {
        float amax = 0;
        for (int i = 0; i < ANV_Q8_BLOCK; i++) amax = fmaxf(amax, fabsf(w[b * ANV_Q8_BLOCK + i]));
        exact &= wd[b] == amax / 127.0f;
        for (int i = 0; i < ANV_Q8_BLOCK; i++)
            exact &= wq[b * ANV_Q8_BLOCK + i] == (int8_t)lrintf(w[b * ANV_Q8_BLOCK + i] * (127.0f / amax));
    }
    CHECK(exact && xd[0] == 0.0f && xq[0] == 0, "quantize_q8 differs from its definition");
    for (int i = 32; i < 64; i++) /* a weight block at the bottom of int8, which GGUF files may hold */
        wq[2 * IC + i] = -128, w[2 * IC + i] = -128.0f * wd[2 * BL + 1];
    memcpy(pq, wq, sizeof wq);
    memcpy(pd, wd, sizeof wd);
    anv_pack_q8(pq, pd, IC, OC);
    anv_matmul_q8_forward(out, x, pq, pd, bias, N, IC, OC);
    double num = 0, den = 0, num32 = 0, den32 = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double want = bias[o], f32 = bias[o];
            for (int b = 0; b < BL; b++) {
                long dot = 0;
                for (int i = b * ANV_Q8_BLOCK; i < (b + 1) * ANV_Q8_BLOCK; i++)
                    dot += (long)wq[o * IC + i] * xq[n * IC + i];
                want += (double)wd[o * BL + b] * xd[n * BL + b] * (double)dot;
            }
            for (int i = 0; i < IC; i++) f32 += (double)w[o * IC + i] * x[n * IC + i];
            num = fmax(num, fabs(out[n * OC + o] - want)), den = fmax(den, fabs(want));
            num32 = fmax(num32, fabs(out[n * OC + o] - f32)), den32 = fmax(den32, fabs(f32));
        }
    printf("  %-44s max|diff|/max|ref| = %.2e\n", "matmul q8 vs its quantized product", num / den);
    printf("  %-44s max|diff|/max|ref| = %.2e\n", "matmul q8 vs fp32 weights and inputs", num32 / den32);
    CHECK(num / den < 1e-5, "matmul_q8_forward: %.3e from the quantized product", num / den);
    CHECK(num32 / den32 < 2e-2, "matmul_q8_forward: %.3e from fp32", num32 / den32);
    int same = 1;
    for (int n = 0; n < N; n++) {
        anv_matmul_q8_forward(one, x + n * IC, pq, pd, bias, 1, IC, OC);
        same &= !memcmp(one, out + n * OC, sizeof one);
    }
    CHECK(same, "matmul_q8_forward: a row alone differs from the same row in a batch");
    if (have_first) CHECK(!memcmp(first_isa, out, sizeof out), "matmul_q8_forward differs between instruction sets");
    memcpy(first_isa, out, sizeof out);
    have_first = 1;
}

static void *fill_elsewhere(void *x) {
    anv_fill(x, 1.0f, 1000);
    return NULL;
}

static void test_profile(void) {
    float *x = zeros(1000);
    anv_profile_entry_t e[8];
    anv_profile_start();
    anv_fill(x, 2.0f, 1000);
    anv_fill(x, 3.0f, 1000);
    pthread_t other;
    CHECK(pthread_create(&other, NULL, fill_elsewhere, x) == 0 && pthread_join(other, NULL) == 0, "thread");
    anv_residual_forward(x, x, x, 1000);
    int n = anv_profile_stop(e, 8);
    anv_fill(x, 0.0f, 1000);
    long fills = 0, residuals = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(e[i].name, "fill")) fills = e[i].calls;
        if (!strcmp(e[i].name, "residual_forward")) residuals = e[i].calls;
        CHECK(e[i].seconds >= 0 && (i == 0 || e[i - 1].seconds >= e[i].seconds), "profile entry %d out of order", i);
    }
    printf("profile: %d kernels, fill %ld calls, residual_forward %ld\n", n, fills, residuals);
    CHECK(n == 2 && fills == 2 && residuals == 1, "profile: %d kernels, fill %ld calls, residual %ld", n, fills,
          residuals);
    anv_profile_start();
    anv_fill(x, 2.0f, 1000);
    anv_residual_forward(x, x, x, 1000);
    CHECK(anv_profile_stop(e, 1) == 1, "profile: at most max entries");
    free(x);
}

int main(void) {
    anv_safetensors_t *st = golden_open("kernels.safetensors"), *llama = golden_open("kernels_llama.safetensors");
    const char *first = anv_cpu_isa();
    printf("kernels in use at start: %s (ANVIL_CPU=%s)\n", first, getenv("ANVIL_CPU") ? getenv("ANVIL_CPU") : "");
    static const char *isas[] = {"avx512", "avx2", "portable"};
    int ran = 0;
    for (int i = 0; i < 3; i++) {
        if (anv_cpu_isa_set(isas[i]) != 0) {
            printf("%s kernels: skipped (%s)\n", isas[i], anv_last_error());
            continue;
        }
        ran++;
        printf("%s kernels vs PyTorch (max|diff|/max|ref|), %d threads:\n", anv_cpu_isa(), anv_threads_count());
        test_embedding(st);
        test_layernorm(st);
        test_matmul(st);
        test_attention(st);
        test_attention_decode(st);
        test_pointwise(st);
        test_crossentropy(st);
        test_gemm_builtin();
        test_determinism(st);
        test_dropout();
        test_llama_kernels(llama);
        test_q8();
    }
    CHECK(ran >= 1 && anv_cpu_isa_set("portable") == 0, "the portable kernels must always run");
    CHECK(anv_cpu_isa_set("sse9") != 0 && strstr(anv_last_error(), "unknown instruction set"), "%s", anv_last_error());
    CHECK(anv_cpu_isa_set(first) == 0, "%s", anv_last_error());
    test_profile();
    anv_safetensors_close(st);
    anv_safetensors_close(llama);
    return check_done("test_kernels");
}
