/* The CUDA kernels that live in headers run on the CPU through cuda_emu.h, so that their logic is tested
 * on machines without a GPU (tests/gpu/test_cuda_kernels.c tests the compiled kernels on a GPU):
 * - the tensor-core attention (src/kernels/cuda/attention_tc.cuh) against attention computed in double
 *   precision from the same bf16-rounded q, k, v: indexing, causal mask, ragged last tile, online
 *   softmax and the split of the backward into its dQ and dK/dV passes;
 * - the fp32 attention (attention.cuh) and the decoding attention (attention_decode.cuh) against the
 *   same reference from fp32 inputs; every attention with one key/value head per query head (GPT-2),
 *   grouped-query heads (two query heads per key/value head) and multi-query (one key/value head);
 * - RMSNorm (rmsnorm.cuh), RoPE (rope.cuh), SwiGLU (swiglu.cuh), the multi-tensor AdamW (adamw.cuh)
 *   and the int8-weight kernels (matmul_q8.cuh), below.
 *
 * Tensor-core attention tolerance: max |kernel - reference| / max |reference| <= 1e-2 for every output.
 * What remains after both sides start from the same bf16 inputs is the kernels' rounding of P and dS to
 * bf16 (2^-9 relative each) before their products, and fp32 sums: errors of a few 1e-3. A wrong index,
 * mask or rescaling gives errors of order 1. For information the test also prints the error against
 * the unrounded fp32 inputs, which is what a comparison with the CPU's fp32 attention sees. */
#include "cuda_emu.h"

#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/matmul_q8.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/rope.cuh"
#include "kernels/cuda/swiglu.cuh"

#include <algorithm>
#include <random>

static int failures, passes;

static float round_bf16(float x) { return __bfloat162float(__float2bfloat16(x)); }

/* max |a - b| / max |b| (NaN counts as an infinite error) */
static double rel_err(const std::vector<float> &a, const std::vector<double> &b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) {
        double d = std::fabs((double)a[i] - b[i]);
        if (!(d <= num)) num = d;
        den = std::max(den, std::fabs(b[i]));
    }
    return den > 0 ? num / den : num;
}

static void check(const char *what, double err, double tol) {
    bool ok = err <= tol;
    printf("  %-40s rel err %.2e (tol %.0e) %s\n", what, err, tol, ok ? "ok" : "FAIL");
    ok ? passes++ : failures++;
}

/* Attention and its gradient in double, with NKV key/value heads (query head h reads key/value head
 * h / (NH / NKV)) and, where given, packed rows (starts (B, T): row t attends to starts[b, t]..t): out (B, T, C), lse
 * (B, NH, T), dqkv (B, T, C + 2 KC) with KC = NKV hs, the gradient of a key/value head summed over the query heads of
 * its group. */
struct reference {
    std::vector<double> out, lse, dqkv;
    reference(const std::vector<float> &qkv, const std::vector<float> &dout, int B, int T, int C, int NH, int NKV,
              const std::vector<int32_t> &starts = {}) {
        int hs = C / NH, KC = NKV * hs;
        size_t C3 = (size_t)C + 2 * KC;
        double scale = 1.0 / std::sqrt((double)hs);
        out.assign((size_t)B * T * C, 0);
        lse.assign((size_t)B * NH * T, 0);
        dqkv.assign((size_t)B * T * C3, 0);
        std::vector<double> P((size_t)T * T), dS((size_t)T * T);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                size_t row0 = (size_t)b * T * C3, qh = (size_t)h * hs, kh = C + (size_t)(h / (NH / NKV)) * hs;
                auto q = [&](int t, int d) { return (double)qkv[row0 + t * C3 + qh + d]; };
                auto k = [&](int t, int d) { return (double)qkv[row0 + t * C3 + kh + d]; };
                auto v = [&](int t, int d) { return (double)qkv[row0 + t * C3 + kh + KC + d]; };
                auto dO = [&](int t, int d) { return (double)dout[((size_t)b * T + t) * C + qh + d]; };
                auto o = [&](int t, int d) -> double & { return out[((size_t)b * T + t) * C + qh + d]; };
                auto lo = [&](int t) { return starts.empty() ? 0 : starts[(size_t)b * T + t]; };
                for (int t = 0; t < T; t++) {
                    double mx = -INFINITY, sum = 0;
                    for (int s = lo(t); s <= t; s++) {
                        double x = 0;
                        for (int d = 0; d < hs; d++) x += q(t, d) * k(s, d);
                        P[(size_t)t * T + s] = x * scale;
                        mx = std::max(mx, x * scale);
                    }
                    for (int s = lo(t); s <= t; s++) sum += std::exp(P[(size_t)t * T + s] - mx);
                    lse[((size_t)b * NH + h) * T + t] = mx + std::log(sum);
                    for (int s = lo(t); s <= t; s++) P[(size_t)t * T + s] = std::exp(P[(size_t)t * T + s] - mx) / sum;
                    for (int d = 0; d < hs; d++) {
                        double x = 0;
                        for (int s = lo(t); s <= t; s++) x += P[(size_t)t * T + s] * v(s, d);
                        o(t, d) = x;
                    }
                    double D = 0;
                    for (int d = 0; d < hs; d++) D += dO(t, d) * o(t, d);
                    for (int s = lo(t); s <= t; s++) {
                        double dp = 0;
                        for (int d = 0; d < hs; d++) dp += dO(t, d) * v(s, d);
                        dS[(size_t)t * T + s] = P[(size_t)t * T + s] * (dp - D);
                    }
                }
                for (int t = 0; t < T; t++)
                    for (int s = lo(t); s <= t; s++)
                        for (int d = 0; d < hs; d++) {
                            double *g = &dqkv[row0 + d];
                            g[t * C3 + qh] += scale * dS[(size_t)t * T + s] * k(s, d);
                            g[s * C3 + kh] += scale * dS[(size_t)t * T + s] * q(t, d);
                            g[s * C3 + kh + KC] += P[(size_t)t * T + s] * dO(t, d);
                        }
            }
    }
};

/* n normal floats of standard deviation sd */
static std::vector<float> normal_floats(size_t n, float sd, std::mt19937 &rng) {
    std::normal_distribution<float> normal(0.0f, sd);
    std::vector<float> x(n);
    for (auto &v : x) v = normal(rng);
    return x;
}

/* starts (B, T) of rows packed with sequences of 1 to max_len tokens (kernel_list.h). */
static std::vector<int32_t> packed_starts(int B, int T, int max_len, std::mt19937 &rng) {
    std::uniform_int_distribution<int> len(1, max_len);
    std::vector<int32_t> starts((size_t)B * T);
    for (int b = 0; b < B; b++)
        for (int t = 0, end = 0, first = 0; t < T; t++) {
            if (t == end) first = t, end = t + len(rng);
            starts[(size_t)b * T + t] = first;
        }
    return starts;
}

/* delta (B, NH, T) = each head row's sum of out * dout, as attention.cu's attention_delta computes it. */
static std::vector<float> row_delta(const std::vector<float> &out, const std::vector<float> &dout, int B, int T, int C,
                                    int NH) {
    int hs = C / NH;
    std::vector<float> delta((size_t)B * NH * T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double d = 0;
                for (int j = 0; j < hs; j++) {
                    size_t i = ((size_t)b * T + t) * C + h * hs + j;
                    d += (double)out[i] * dout[i];
                }
                delta[((size_t)b * NH + h) * T + t] = (float)d;
            }
    return delta;
}

/* The q, k and v parts of dqkv (rows of C + 2 KC) against the reference's, separately, so that a pass
 * that writes nothing cannot hide behind another. */
static void check_dqkv_parts(const std::vector<float> &dqkv, const std::vector<double> &want, int C, int KC,
                             const char *inputs, double tol) {
    size_t C3 = (size_t)C + 2 * KC, rows = dqkv.size() / C3;
    const size_t first[3] = {0, (size_t)C, (size_t)C + KC}, width[3] = {(size_t)C, (size_t)KC, (size_t)KC};
    for (int part = 0; part < 3; part++) {
        std::vector<float> g;
        std::vector<double> w;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = first[part]; c < first[part] + width[part]; c++) {
                g.push_back(dqkv[r * C3 + c]);
                w.push_back(want[r * C3 + c]);
            }
        char what[96];
        snprintf(what, sizeof what, "d%c vs reference (%s inputs)", "qkv"[part], inputs);
        check(what, rel_err(g, w), tol);
    }
}

/* The tensor-core kernels (attention_tc.cuh), NH query heads and NKV key/value heads of HS; rows packed
 * with sequences of at most `packed` tokens (0: one sequence per row). */
template <int HS> static void test_case(int B, int T, int NH, int NKV, unsigned seed, int packed = 0) {
    int C = NH * HS, KC = NKV * HS;
    std::mt19937 rng(seed);
    /* peaked softmax rows as well as flat ones */
    std::vector<float> qkv = normal_floats((size_t)B * T * (C + 2 * KC), 1.5f, rng);
    std::vector<float> dout = normal_floats((size_t)B * T * C, 1.0f, rng);
    std::vector<int32_t> starts = packed ? packed_starts(B, T, packed, rng) : std::vector<int32_t>();
    const int32_t *st = packed ? starts.data() : nullptr;
    std::vector<float> qkv16(qkv), dout16(dout);
    for (auto &x : qkv16) x = round_bf16(x);
    for (auto &x : dout16) x = round_bf16(x);
    reference exact(qkv16, dout16, B, T, C, NH, NKV, starts), fp32(qkv, dout, B, T, C, NH, NKV, starts);

    /* the forward, then the backward from the kernel's own out and lse, as in training */
    std::vector<float> out((size_t)B * T * C, NAN), lse((size_t)B * NH * T, NAN), dqkv(qkv.size(), NAN);
    unsigned row_blocks = (T + att_tc::ROWS - 1) / att_tc::ROWS;
    dim3 grid(row_blocks, B * NH), kv_grid(row_blocks, B * NKV);
    emu_launch(att_tc::forward<HS>, grid, dim3(att_tc::THREADS), att_tc::dims<HS>::forward_bytes, out.data(),
               lse.data(), (const float *)qkv.data(), st, T, C, NH, NKV);
    std::vector<float> delta = row_delta(out, dout, B, T, C, NH);
    emu_launch(att_tc::backward_dq<HS>, grid, dim3(att_tc::THREADS), att_tc::dims<HS>::dq_bytes, dqkv.data(),
               (const float *)dout.data(), (const float *)qkv.data(), (const float *)lse.data(),
               (const float *)delta.data(), st, T, C, NH, NKV);
    emu_launch(att_tc::backward_dkv<HS>, kv_grid, dim3(att_tc::THREADS), att_tc::dims<HS>::dkv_bytes, dqkv.data(),
               (const float *)dout.data(), (const float *)qkv.data(), (const float *)lse.data(),
               (const float *)delta.data(), st, T, C, NH, NKV);

    char what[96];
    printf("tensor cores B %d T %d heads %d (key/value %d) of %d%s:\n", B, T, NH, NKV, HS,
           packed ? ", packed rows" : "");
    const char *names[3] = {"out", "lse", "dqkv"};
    const std::vector<float> *got[3] = {&out, &lse, &dqkv};
    const std::vector<double> *want[3] = {&exact.out, &exact.lse, &exact.dqkv},
                              *want32[3] = {&fp32.out, &fp32.lse, &fp32.dqkv};
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "%s vs reference (bf16 inputs)", names[i]);
        check(what, rel_err(*got[i], *want[i]), 1e-2);
        printf("  %-40s rel err %.2e (for information)\n",
               (std::string(names[i]) + " vs reference (fp32 inputs)").c_str(), rel_err(*got[i], *want32[i]));
    }
    check_dqkv_parts(dqkv, exact.dqkv, C, KC, "bf16", 1e-2);
}

/* The fp32 kernels (attention.cuh), NH query heads and NKV key/value heads of hs <= HS, against the
 * reference from the same inputs (tolerance 1e-5: fp32 sums of at most a few hundred terms); the
 * backward from the kernel's out and lse, as in training. */
template <int HS> static void fp32_case(int B, int T, int NH, int NKV, int hs, unsigned seed, int packed = 0) {
    int C = NH * hs, KC = NKV * hs;
    std::mt19937 rng(seed);
    std::vector<float> qkv = normal_floats((size_t)B * T * (C + 2 * KC), 1.5f, rng);
    std::vector<float> dout = normal_floats((size_t)B * T * C, 1.0f, rng);
    std::vector<int32_t> starts = packed ? packed_starts(B, T, packed, rng) : std::vector<int32_t>();
    const int32_t *st = packed ? starts.data() : nullptr;
    reference exact(qkv, dout, B, T, C, NH, NKV, starts);
    std::vector<float> out((size_t)B * T * C, NAN), lse((size_t)B * NH * T, NAN), dqkv(qkv.size(), NAN);
    unsigned row_blocks = (T + att_fp32::WARPS - 1) / att_fp32::WARPS;
    dim3 grid(row_blocks, B * NH), kv_grid(row_blocks, B * NKV), block(att_fp32::WARPS * 32);
    emu_launch(att_fp32::forward<HS>, grid, block, 0, out.data(), lse.data(), (const float *)qkv.data(), st, T, C, NH,
               NKV);
    std::vector<float> delta = row_delta(out, dout, B, T, C, NH);
    emu_launch(att_fp32::backward_dq<HS>, grid, block, 0, dqkv.data(), (const float *)dout.data(),
               (const float *)qkv.data(), (const float *)lse.data(), (const float *)delta.data(), st, T, C, NH, NKV);
    emu_launch(att_fp32::backward_dkv<HS>, kv_grid, block, 0, dqkv.data(), (const float *)dout.data(),
               (const float *)qkv.data(), (const float *)lse.data(), (const float *)delta.data(), st, T, C, NH, NKV);
    printf("fp32 B %d T %d heads %d (key/value %d) of %d%s:\n", B, T, NH, NKV, hs, packed ? ", packed rows" : "");
    check("out vs reference (fp32 inputs)", rel_err(out, exact.out), 1e-5);
    check("lse vs reference (fp32 inputs)", rel_err(lse, exact.lse), 1e-5);
    check_dqkv_parts(dqkv, exact.dqkv, C, KC, "fp32", 1e-5);
}

/* The decoding kernels (attention_decode.cuh) on one sequence of T rows, NH query heads and NKV
 * key/value heads of hs: a prefill of `prefill` rows, then one row per launch, against the double
 * reference from the same fp32 inputs (tolerance 1e-5: fp32 sums of a few hundred terms), and the caches
 * (rows of KC = NKV hs) against the keys and values. */
template <int J> static void decode_case(int T, int NH, int NKV, int hs, int prefill, unsigned seed) {
    int C = NH * hs, KC = NKV * hs;
    size_t C3 = (size_t)C + 2 * KC;
    std::mt19937 rng(seed);
    std::vector<float> qkv = normal_floats((size_t)T * C3, 1.5f, rng), none((size_t)T * C, 0.0f);
    reference exact(qkv, none, 1, T, C, NH, NKV);
    std::vector<float> out((size_t)T * C, NAN), kc((size_t)T * KC, NAN), vc((size_t)T * KC, NAN);
    for (int pos = 0; pos < T;) {
        int n = pos == 0 ? prefill : 1;
        const float *rows = qkv.data() + (size_t)pos * C3;
        emu_launch(att_dec::append_kv, dim3(3), dim3(64), 0, kc.data(), vc.data(), rows, pos, n, C, KC);
        emu_launch(att_dec::attend<J>, dim3(n, NH), dim3(att_dec::THREADS), att_dec::smem_bytes(J),
                   out.data() + (size_t)pos * C, (const float *)kc.data(), (const float *)vc.data(), rows, pos, C, NH,
                   NKV);
        pos += n;
    }
    bool cached = true;
    for (int t = 0; t < T; t++)
        cached = cached && !memcmp(&kc[(size_t)t * KC], &qkv[t * C3 + C], sizeof(float) * KC) &&
                 !memcmp(&vc[(size_t)t * KC], &qkv[t * C3 + C + KC], sizeof(float) * KC);
    printf("decode T %d heads %d (key/value %d) of %d, prefill %d:\n", T, NH, NKV, hs, prefill);
    check("caches hold the keys and values", cached ? 0.0 : 1.0, 0.0);
    check("out vs reference (fp32 inputs)", rel_err(out, exact.out), 1e-5);
}

/* The RMSNorm kernels (rmsnorm.cuh) on N rows of C, eps 1e-5, against RMSNorm in double: out, rstd,
 * dinp (accumulated onto its old contents) within 1e-5 (fp32 arithmetic of a few operations per element
 * on top of double sums). dw's column sums run on the GPU through colsum.cuh, which the emulation does
 * not compile; here the kernel's terms (rms::dw_term) are summed in double. */
static void rmsnorm_case(int N, int C, unsigned seed) {
    const float eps = 1e-5f;
    std::mt19937 rng(seed);
    std::vector<float> x = normal_floats((size_t)N * C, 2.0f, rng), w = normal_floats(C, 1.0f, rng);
    std::vector<float> dout = normal_floats((size_t)N * C, 1.0f, rng), dinp0 = normal_floats((size_t)N * C, 1.0f, rng);
    std::vector<double> out_ref((size_t)N * C), rstd_ref(N), dinp_ref((size_t)N * C), dw_ref(C, 0.0);
    for (int n = 0; n < N; n++) {
        const float *xr = &x[(size_t)n * C], *dr = &dout[(size_t)n * C];
        double ss = 0, sgx = 0;
        for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        double rs = 1.0 / std::sqrt(ss / C + eps);
        rstd_ref[n] = rs;
        for (int c = 0; c < C; c++) {
            out_ref[(size_t)n * C + c] = xr[c] * rs * w[c];
            sgx += (double)dr[c] * w[c] * xr[c] * rs;
            dw_ref[c] += (double)dr[c] * xr[c] * rs;
        }
        for (int c = 0; c < C; c++)
            dinp_ref[(size_t)n * C + c] = dinp0[(size_t)n * C + c] + rs * (dr[c] * w[c] - xr[c] * rs * sgx / C);
    }
    std::vector<float> out((size_t)N * C, NAN), rstd(N, NAN), dinp = dinp0;
    unsigned blocks = (N + rms::WARPS - 1) / rms::WARPS;
    emu_launch(rms::forward, dim3(blocks), dim3(rms::THREADS), 0, out.data(), rstd.data(), (const float *)x.data(),
               (const float *)w.data(), eps, N, C);
    emu_launch(rms::backward_dinp, dim3(blocks), dim3(rms::THREADS), 0, dinp.data(), (const float *)dout.data(),
               (const float *)x.data(), (const float *)w.data(), (const float *)rstd.data(), N, C);
    rms::dw_term term{dout.data(), x.data(), rstd.data(), C};
    std::vector<float> dw(C);
    for (int c = 0; c < C; c++) {
        double t = 0;
        for (int n = 0; n < N; n++) t += term(n, c);
        dw[c] = (float)t;
    }
    printf("rmsnorm N %d C %d:\n", N, C);
    check("out vs reference", rel_err(out, out_ref), 1e-5);
    check("rstd vs reference", rel_err(rstd, rstd_ref), 1e-5);
    check("dinp (accumulated) vs reference", rel_err(dinp, dinp_ref), 1e-5);
    check("dw terms vs reference", rel_err(dw, dw_ref), 1e-5);
}

/* The RoPE kernel (rope.cuh) over qkv (B, T, (NH + 2 NKV) hs) at positions pos.., forward then
 * backward, against the rotations in double from the same float angle (the contract's
 * (pos + t - starts[b, t]) * inv_freq[i] rounded to float; rows packed with sequences of at most `packed`
 * tokens, or 0): q and k within 1e-6 (a rotation in fp32 with accurate sine and cosine); v keeps its
 * bits. */
static void rope_case(int B, int T, int pos, int NH, int NKV, int hs, unsigned seed, int packed = 0) {
    int half = hs / 2, heads = NH + NKV, row = (NH + 2 * NKV) * hs;
    std::mt19937 rng(seed);
    std::vector<float> qkv = normal_floats((size_t)B * T * row, 1.0f, rng), inv_freq(half);
    std::vector<int32_t> starts = packed ? packed_starts(B, T, packed, rng) : std::vector<int32_t>();
    const int32_t *st = packed ? starts.data() : nullptr;
    for (int i = 0; i < half; i++) inv_freq[i] = (float)std::pow(10000.0, -2.0 * i / hs);
    /* want[0]: rotated by the angle (the forward), want[1]: by its opposite (the backward) */
    std::vector<double> want[2];
    for (int k = 0; k < 2; k++) {
        want[k].assign(qkv.begin(), qkv.end());
        for (int bt = 0; bt < B * T; bt++)
            for (int i = 0; i < half; i++) {
                double a = (float)(pos + bt % T - (packed ? starts[bt] : 0)) * inv_freq[i], c = std::cos(a),
                       s = (k ? -1 : 1) * std::sin(a);
                for (int h = 0; h < heads; h++) {
                    size_t j = (size_t)bt * row + (size_t)h * hs + i;
                    want[k][j] = qkv[j] * c - qkv[j + half] * s;
                    want[k][j + half] = qkv[j + half] * c + qkv[j] * s;
                }
            }
    }
    const char *names[2] = {"forward vs reference", "backward vs reference"};
    printf("rope B %d T %d pos %d heads %d (key/value %d) of %d%s:\n", B, T, pos, NH, NKV, hs,
           packed ? ", packed rows" : "");
    for (int k = 0; k < 2; k++) {
        std::vector<float> x = qkv;
        emu_launch(rope::rotate, dim3(3), dim3(64), 0, x.data(), st, (const float *)inv_freq.data(), B, T, pos, heads,
                   row, hs, k ? -1.0f : 1.0f);
        check(names[k], rel_err(x, want[k]), 1e-6);
        bool v_kept = true;
        for (int bt = 0; bt < B * T; bt++) {
            size_t v0 = (size_t)bt * row + (size_t)heads * hs;
            v_kept = v_kept && !memcmp(&x[v0], &qkv[v0], sizeof(float) * NKV * hs);
        }
        check("v keeps its bits", v_kept ? 0.0 : 1.0, 0.0);
    }
}

/* The SwiGLU kernels (swiglu.cuh) on N rows of F, gates from a wide normal plus a few at +-100 (where
 * e^-x overflows or vanishes), against SwiGLU and its gradient in double: within 1e-6 (fp32 arithmetic
 * of a few operations). */
static void swiglu_case(int N, int F, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<float> inp = normal_floats((size_t)N * 2 * F, 3.0f, rng),
                       dout = normal_floats((size_t)N * F, 1.0f, rng);
    inp[0] = 100.0f, inp[1] = -100.0f;
    std::vector<double> out_ref((size_t)N * F), dinp_ref((size_t)N * 2 * F);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < F; i++) {
            size_t j = (size_t)n * 2 * F + i;
            double g = inp[j], u = inp[j + F], d = dout[(size_t)n * F + i], sg = 1.0 / (1.0 + std::exp(-g));
            out_ref[(size_t)n * F + i] = g * sg * u;
            dinp_ref[j] = d * u * sg * (1.0 + g * (1.0 - sg));
            dinp_ref[j + F] = d * g * sg;
        }
    std::vector<float> out((size_t)N * F, NAN), dinp((size_t)N * 2 * F, NAN);
    emu_launch(swiglu::forward, dim3(3), dim3(64), 0, out.data(), (const float *)inp.data(), N, F);
    emu_launch(swiglu::backward, dim3(3), dim3(64), 0, dinp.data(), (const float *)inp.data(),
               (const float *)dout.data(), N, F);
    printf("swiglu N %d F %d:\n", N, F);
    check("out vs reference", rel_err(out, out_ref), 1e-6);
    check("dinp vs reference", rel_err(dinp, dinp_ref), 1e-6);
}

/* The AdamW kernel over a window [lo, lo + n) of a block of segments (decay, no decay, padding, decay),
 * one float per thread or several (grid-stride), against the update in double: max |diff| / max |value|
 * of each of p, m, v within 1e-6 (fp32 arithmetic of a few operations); the padding and the floats of
 * the window outside every segment keep their bits. */
static void adamw_case(int blocks, unsigned seed) {
    const size_t lo = 5, n = 300;
    std::vector<size_t> start = {0, 100, 205}, end = {100, 200, 290}; /* gap 200..205; 290.. past the end */
    std::vector<unsigned char> decay = {1, 0, 1};
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> p(n), g(n), m(n), v(n);
    for (size_t i = 0; i < n; i++) {
        p[i] = 0.1f * normal(rng), g[i] = 0.01f * normal(rng), m[i] = 0.005f * normal(rng);
        v[i] = 1e-4f * std::fabs(normal(rng));
    }
    std::vector<float> p0 = p, m0 = m, v0 = v;
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, bc1 = 1.0f - 0.729f,
                bc2 = std::sqrt(1.0f - 0.857375f);
    emu_launch(adamw::update, dim3(blocks), dim3(64), 0, p.data(), (const float *)g.data(), m.data(), v.data(), lo, n,
               (int)start.size(), (const size_t *)start.data(), (const size_t *)end.data(),
               (const unsigned char *)decay.data(), lr, b1, b2, eps, wd, bc1, bc2);
    double diff[3] = {0, 0, 0}, size[3] = {0, 0, 0}; /* p, m, v: max |got - want|, max |want| */
    bool untouched = true;
    for (size_t i = 0; i < n; i++) {
        size_t gi = lo + i;
        int s = gi < 100 ? 0 : gi < 200 ? 1 : gi >= 205 && gi < 290 ? 2 : -1;
        if (s < 0) {
            untouched =
                untouched && !memcmp(&p[i], &p0[i], 4) && !memcmp(&m[i], &m0[i], 4) && !memcmp(&v[i], &v0[i], 4);
            continue;
        }
        double mi = b1 * (double)m0[i] + (1 - b1) * (double)g[i],
               vi = b2 * (double)v0[i] + (1 - b2) * (double)g[i] * g[i];
        double pi = p0[i] - lr * ((mi / bc1) / (std::sqrt(vi) / bc2 + eps) + (decay[s] ? wd : 0.0) * p0[i]);
        const double got[3] = {p[i], m[i], v[i]}, want[3] = {pi, mi, vi};
        for (int k = 0; k < 3; k++) {
            diff[k] = std::max(diff[k], std::fabs(got[k] - want[k]));
            size[k] = std::max(size[k], std::fabs(want[k]));
        }
    }
    double worst = std::max({diff[0] / size[0], diff[1] / size[1], diff[2] / size[2]});
    printf("adamw, %d blocks of 64 threads:\n", blocks);
    check("floats outside the segments keep their bits", untouched ? 0.0 : 1.0, 0.0);
    check("p, m, v vs the update in double", worst, 1e-6);
}

/* The int8 kernels (matmul_q8.cuh): quantize against its definition bitwise (the CPU's arithmetic), and
 * the product of N rows of IC by OC outputs against the same quantized product in double (exact integer
 * dots; only the fp32 sum over blocks differs: 1e-5). */
static void q8_case(int N, int IC, int OC, unsigned seed) {
    int blocks = IC / q8::BLOCK;
    std::mt19937 rng(seed);
    std::vector<float> x = normal_floats((size_t)N * IC, 1.0f, rng), w = normal_floats((size_t)OC * IC, 0.1f, rng);
    std::vector<float> bias = normal_floats(OC, 1.0f, rng), out((size_t)N * OC, NAN);
    std::vector<float> xd((size_t)N * blocks), wd((size_t)OC * blocks);
    std::vector<int8_t> xq((size_t)N * IC), wq((size_t)OC * IC);
    emu_launch(q8::quantize, dim3(2), dim3(32), 0, wq.data(), wd.data(), (const float *)w.data(), wd.size());
    emu_launch(q8::quantize, dim3(2), dim3(32), 0, xq.data(), xd.data(), (const float *)x.data(), xd.size());
    bool exact = true;
    for (size_t b = 0; b < wd.size(); b++) {
        float amax = 0;
        for (int i = 0; i < q8::BLOCK; i++) amax = std::max(amax, std::fabs(w[b * q8::BLOCK + i]));
        exact = exact && wd[b] == amax / 127.0f;
        for (int i = 0; i < q8::BLOCK; i++)
            exact = exact && wq[b * q8::BLOCK + i] == (int8_t)std::nearbyint(w[b * q8::BLOCK + i] * (127.0f / amax));
    }
    emu_launch(q8::forward, dim3((OC + q8::WARPS - 1) / q8::WARPS, N), dim3(q8::WARPS * 32), 0, out.data(),
               (const int8_t *)xq.data(), (const float *)xd.data(), (const int8_t *)wq.data(), (const float *)wd.data(),
               (const float *)bias.data(), IC, OC);
    std::vector<double> want((size_t)N * OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double sum = bias[o];
            for (int b = 0; b < blocks; b++) {
                long dot = 0;
                for (int i = b * q8::BLOCK; i < (b + 1) * q8::BLOCK; i++)
                    dot += (long)wq[(size_t)o * IC + i] * xq[(size_t)n * IC + i];
                sum += (double)wd[(size_t)o * blocks + b] * xd[(size_t)n * blocks + b] * (double)dot;
            }
            want[(size_t)n * OC + o] = sum;
        }
    printf("q8 N %d IC %d OC %d:\n", N, IC, OC);
    check("quantize as its definition", exact ? 0.0 : 1.0, 0.0);
    check("matmul vs the quantized product", rel_err(out, want), 1e-5);
}

int main() {
    test_case<64>(1, 3, 1, 1, 1);   /* fewer rows than a warp's 16 */
    test_case<64>(2, 64, 2, 2, 2);  /* exactly one tile */
    test_case<64>(1, 130, 3, 3, 3); /* a ragged third tile */
    test_case<32>(2, 100, 2, 2, 4);
    test_case<128>(1, 129, 2, 2, 5);
    test_case<64>(1, 130, 4, 2, 16);     /* grouped-query: two query heads per key/value head */
    test_case<32>(2, 70, 6, 1, 17);      /* multi-query: one key/value head */
    test_case<64>(2, 150, 2, 1, 27, 50); /* packed rows: sequences across and within tiles, of one token too */
    test_case<32>(1, 140, 1, 1, 28, 8);  /* packed rows of short sequences: tiles with no key of a row */
    fp32_case<32>(2, 37, 3, 3, 8, 13);   /* a ragged second tile; head dimensions past 8 idle */
    fp32_case<64>(1, 45, 2, 2, 40, 14);  /* a ragged last dimension group */
    fp32_case<128>(1, 33, 1, 1, 128, 15);
    fp32_case<32>(1, 40, 4, 2, 20, 18);     /* grouped-query */
    fp32_case<64>(1, 35, 6, 1, 64, 19);     /* multi-query */
    fp32_case<32>(2, 90, 2, 1, 24, 29, 40); /* packed rows */
    fp32_case<32>(1, 70, 1, 1, 32, 30, 5);  /* packed rows of short sequences */
    decode_case<1>(5, 3, 3, 16, 5, 6);      /* a prompt alone; head dimensions past 16 idle; fewer keys than warps */
    decode_case<1>(70, 2, 2, 32, 3, 7);     /* single rows after a short prefill */
    decode_case<2>(129, 2, 2, 64, 64, 8);   /* a full prefill chunk */
    decode_case<4>(40, 1, 1, 100, 1, 9);    /* a ragged last dimension group */
    decode_case<4>(33, 2, 2, 128, 17, 10);
    decode_case<1>(40, 4, 2, 24, 9, 20); /* grouped-query */
    decode_case<2>(30, 6, 1, 64, 4, 21); /* multi-query */
    rmsnorm_case(37, 100, 22);           /* a ragged last block of rows; columns past a warp's 32 */
    rmsnorm_case(9, 13, 23);             /* rows shorter than a warp */
    rope_case(2, 5, 0, 4, 2, 16, 24);
    rope_case(1, 7, 100000, 3, 1, 64, 25); /* large angles */
    rope_case(2, 30, 0, 2, 1, 16, 31, 7);  /* packed rows */
    swiglu_case(7, 50, 26);
    adamw_case(5, 11);        /* one float per thread */
    adamw_case(1, 12);        /* several per thread */
    q8_case(3, 96, 37, 32);   /* OC past whole warps of outputs; fewer blocks than lanes */
    q8_case(1, 1088, 20, 33); /* more blocks (34) than lanes */
    printf("test_cuda_emu: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
