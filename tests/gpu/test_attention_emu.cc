/* The tensor-core attention kernels (src/kernels/cuda/attention_tc.cuh) run on the CPU through
 * cuda_emu.h, against attention computed in double precision from the same bf16-rounded q, k, v.
 * This tests the kernels' indexing, causal mask, ragged last tile, online softmax and the split of the
 * backward into its dQ and dK/dV passes on machines without a GPU; tests/gpu/test_cuda_kernels.c
 * tests the compiled kernels on a GPU.
 *
 * Tolerance: max |kernel - reference| / max |reference| <= 1e-2 for every output. What remains after
 * both sides start from the same bf16 inputs is the kernels' rounding of P and dS to bf16 (2^-9
 * relative each) before their products, and fp32 sums: errors of a few 1e-3. A wrong index, mask or
 * rescaling gives errors of order 1. For information the test also prints the error against the
 * unrounded fp32 inputs, which is what a comparison with the CPU's fp32 attention sees. */
#include "cuda_emu.h"

#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_tc.cuh"

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

/* Attention and its gradient in double: out (B, T, C), lse (B, NH, T), dqkv (B, T, 3C). */
struct reference {
    std::vector<double> out, lse, dqkv;
    reference(const std::vector<float> &qkv, const std::vector<float> &dout, int B, int T, int C, int NH) {
        int hs = C / NH;
        size_t C3 = 3 * (size_t)C;
        double scale = 1.0 / std::sqrt((double)hs);
        out.assign((size_t)B * T * C, 0);
        lse.assign((size_t)B * NH * T, 0);
        dqkv.assign((size_t)B * T * C3, 0);
        std::vector<double> P((size_t)T * T), dS((size_t)T * T);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                auto q = [&](int t, int d) { return (double)qkv[((size_t)b * T + t) * C3 + h * hs + d]; };
                auto k = [&](int t, int d) { return (double)qkv[((size_t)b * T + t) * C3 + C + h * hs + d]; };
                auto v = [&](int t, int d) { return (double)qkv[((size_t)b * T + t) * C3 + 2 * C + h * hs + d]; };
                auto dO = [&](int t, int d) { return (double)dout[((size_t)b * T + t) * C + h * hs + d]; };
                auto o = [&](int t, int d) -> double & { return out[((size_t)b * T + t) * C + h * hs + d]; };
                for (int t = 0; t < T; t++) {
                    double mx = -INFINITY, sum = 0;
                    for (int s = 0; s <= t; s++) {
                        double x = 0;
                        for (int d = 0; d < hs; d++) x += q(t, d) * k(s, d);
                        P[(size_t)t * T + s] = x * scale;
                        mx = std::max(mx, x * scale);
                    }
                    for (int s = 0; s <= t; s++) sum += std::exp(P[(size_t)t * T + s] - mx);
                    lse[((size_t)b * NH + h) * T + t] = mx + std::log(sum);
                    for (int s = 0; s <= t; s++) P[(size_t)t * T + s] = std::exp(P[(size_t)t * T + s] - mx) / sum;
                    for (int d = 0; d < hs; d++) {
                        double x = 0;
                        for (int s = 0; s <= t; s++) x += P[(size_t)t * T + s] * v(s, d);
                        o(t, d) = x;
                    }
                    double D = 0;
                    for (int d = 0; d < hs; d++) D += dO(t, d) * o(t, d);
                    for (int s = 0; s <= t; s++) {
                        double dp = 0;
                        for (int d = 0; d < hs; d++) dp += dO(t, d) * v(s, d);
                        dS[(size_t)t * T + s] = P[(size_t)t * T + s] * (dp - D);
                    }
                }
                for (int t = 0; t < T; t++)
                    for (int s = 0; s <= t; s++)
                        for (int d = 0; d < hs; d++) {
                            double *g = &dqkv[((size_t)b * T) * C3 + h * hs + d];
                            g[(size_t)t * C3] += scale * dS[(size_t)t * T + s] * k(s, d);
                            g[(size_t)s * C3 + C] += scale * dS[(size_t)t * T + s] * q(t, d);
                            g[(size_t)s * C3 + 2 * C] += P[(size_t)t * T + s] * dO(t, d);
                        }
            }
    }
};

template <int HS> static void test_case(int B, int T, int NH, unsigned seed) {
    int C = NH * HS;
    size_t C3 = 3 * (size_t)C;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> qkv((size_t)B * T * C3), dout((size_t)B * T * C);
    for (auto &x : qkv) x = 1.5f * normal(rng); /* peaked softmax rows as well as flat ones */
    for (auto &x : dout) x = normal(rng);
    std::vector<float> qkv16(qkv), dout16(dout);
    for (auto &x : qkv16) x = round_bf16(x);
    for (auto &x : dout16) x = round_bf16(x);
    reference exact(qkv16, dout16, B, T, C, NH), fp32(qkv, dout, B, T, C, NH);

    /* the forward, then the backward from the kernel's own out and lse, as in training */
    std::vector<float> out((size_t)B * T * C, NAN), lse((size_t)B * NH * T, NAN), dqkv(qkv.size(), NAN);
    dim3 grid((T + att_tc::ROWS - 1) / att_tc::ROWS, B * NH);
    emu_launch(att_tc::forward<HS>, grid, dim3(att_tc::THREADS), att_tc::dims<HS>::forward_bytes, out.data(),
               lse.data(), (const float *)qkv.data(), T, C, NH);
    std::vector<float> delta((size_t)B * NH * T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double d = 0;
                for (int j = 0; j < HS; j++) {
                    size_t i = ((size_t)b * T + t) * C + h * HS + j;
                    d += (double)out[i] * dout[i];
                }
                delta[((size_t)b * NH + h) * T + t] = (float)d;
            }
    emu_launch(att_tc::backward_dq<HS>, grid, dim3(att_tc::THREADS), att_tc::dims<HS>::dq_bytes, dqkv.data(),
               (const float *)dout.data(), (const float *)qkv.data(), (const float *)lse.data(),
               (const float *)delta.data(), T, C, NH);
    emu_launch(att_tc::backward_dkv<HS>, grid, dim3(att_tc::THREADS), att_tc::dims<HS>::dkv_bytes, dqkv.data(),
               (const float *)dout.data(), (const float *)qkv.data(), (const float *)lse.data(),
               (const float *)delta.data(), T, C, NH);

    char what[96];
    printf("B %d T %d heads %d of %d:\n", B, T, NH, HS);
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
    /* the three parts of dqkv separately, so that a pass that writes nothing cannot hide behind another */
    for (int part = 0; part < 3; part++) {
        std::vector<float> g;
        std::vector<double> w;
        for (size_t r = 0; r < (size_t)B * T; r++)
            for (int c = 0; c < C; c++) {
                g.push_back(dqkv[r * C3 + part * C + c]);
                w.push_back(exact.dqkv[r * C3 + part * C + c]);
            }
        snprintf(what, sizeof what, "d%c vs reference (bf16 inputs)", "qkv"[part]);
        check(what, rel_err(g, w), 1e-2);
    }
}

/* The decoding kernels (attention_decode.cuh) on one sequence of T rows, heads of hs: a prefill of
 * `prefill` rows, then one row per launch, against the double reference from the same fp32 inputs
 * (tolerance 1e-5: fp32 sums of a few hundred terms), and the caches against the keys and values. */
template <int J> static void decode_case(int T, int NH, int hs, int prefill, unsigned seed) {
    int C = NH * hs;
    size_t C3 = 3 * (size_t)C;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> qkv((size_t)T * C3), none((size_t)T * C, 0.0f);
    for (auto &x : qkv) x = 1.5f * normal(rng);
    reference exact(qkv, none, 1, T, C, NH);
    std::vector<float> out((size_t)T * C, NAN), kc((size_t)T * C, NAN), vc((size_t)T * C, NAN);
    for (int pos = 0; pos < T;) {
        int n = pos == 0 ? prefill : 1;
        const float *rows = qkv.data() + (size_t)pos * C3;
        emu_launch(att_dec::append_kv, dim3(3), dim3(64), 0, kc.data(), vc.data(), rows, pos, n, C);
        emu_launch(att_dec::attend<J>, dim3(n, NH), dim3(att_dec::THREADS), att_dec::smem_bytes(J),
                   out.data() + (size_t)pos * C, (const float *)kc.data(), (const float *)vc.data(), rows, pos, C, NH);
        pos += n;
    }
    bool cached = true;
    for (int t = 0; t < T; t++)
        cached = cached && !memcmp(&kc[(size_t)t * C], &qkv[t * C3 + C], sizeof(float) * C) &&
                 !memcmp(&vc[(size_t)t * C], &qkv[t * C3 + 2 * C], sizeof(float) * C);
    char what[96];
    printf("decode T %d heads %d of %d, prefill %d:\n", T, NH, hs, prefill);
    snprintf(what, sizeof what, "caches hold the keys and values");
    check(what, cached ? 0.0 : 1.0, 0.0);
    check("out vs reference (fp32 inputs)", rel_err(out, exact.out), 1e-5);
}

int main() {
    test_case<64>(1, 3, 1, 1);   /* fewer rows than a warp's 16 */
    test_case<64>(2, 64, 2, 2);  /* exactly one tile */
    test_case<64>(1, 130, 3, 3); /* a ragged third tile */
    test_case<32>(2, 100, 2, 4);
    test_case<128>(1, 129, 2, 5);
    decode_case<1>(5, 3, 16, 5, 6);    /* a prompt alone; head dimensions past 16 idle; fewer keys than warps */
    decode_case<1>(70, 2, 32, 3, 7);   /* single rows after a short prefill */
    decode_case<2>(129, 2, 64, 64, 8); /* a full prefill chunk */
    decode_case<4>(40, 1, 100, 1, 9);  /* a ragged last dimension group */
    decode_case<4>(33, 2, 128, 17, 10);
    printf("test_attention_emu: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
