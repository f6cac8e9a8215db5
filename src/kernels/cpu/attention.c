/* Causal multi-head self-attention with grouped-query heads, one (batch, head) pair per task on the
 * OpenMP pool (one (batch, key/value head) pair and its group of query heads in the backward pass, which
 * sums the group's K/V gradients without atomics); the small per-pair products run on the built-in GEMM
 * in the calling thread. Per pair, with hs = C / NH, Q, K, V (T, hs) are strided views into qkv (row
 * stride (NH + 2 NKV) hs; query head h reads key/value head h / (NH / NKV)):
 *   S = Q K^T / sqrt(hs) (T, T), masked to s <= t;  P = softmax(S) row-wise;  O = P V.
 * The backward pass recomputes P from S and the saved log-sum-exp:
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),  dQ = dS K / sqrt(hs),
 *   dK = dS^T Q / sqrt(hs).
 * The causal mask is used to skip work: the products run in blocks of RB query rows (and RB keys for
 * dK, dV), each over the keys (queries) the mask lets through, so about half of the T x T scores are
 * never computed. Entries above the diagonal inside a block are zero. In a packed row (starts, see
 * kernel_list.h) a block of query rows starts at the first key of its first row's sequence and a block of
 * keys ends at the last query of its last key's sequence; the entries before a row's sequence are zero
 * from the start of that RB block of keys on. */
#include "anvil/base.h"
#include "anvil/kernels.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */
#include "kernels/cpu/vmath.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

size_t anv_attention_scratch_floats(int T) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    return (size_t)threads * 2 * T * T;
}

enum { RB = 64 };

static inline int block_end(int r0, int T) { return r0 + RB < T ? r0 + RB : T; }

/* The first key of row t's sequence (st: the row's starts, or NULL). */
static inline int seq_start(const int32_t *st, int t) { return st ? st[t] : 0; }

/* One past the last query that sees key s: the end of s's sequence. */
static inline int seq_end(const int32_t *st, int s, int T) {
    if (!st) return T;
    int t = s + 1;
    while (t < T && st[t] <= s) t++;
    return t;
}

void anv_attention_forward(float *out, float *lse, float *scratch, const float *qkv, const int32_t *starts, int B,
                           int T, int C, int NH, int NKV) {
    int hs = C / NH, KC = NKV * hs, C3 = C + 2 * KC, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        float *S = scratch + (size_t)anv_thread_id() * 2 * T * T;
        const float *q = qkv + (size_t)b * T * C3 + h * hs;
        const float *k = qkv + (size_t)b * T * C3 + C + (h / group) * hs, *v = k + KC;
        float *o = out + (size_t)b * T * C + h * hs;
        const int32_t *st = starts ? starts + (size_t)b * T : NULL;
        for (int r0 = 0; r0 < T; r0 += RB) { /* rows r0..r1-1 see keys k0..r1-1 */
            int r1 = block_end(r0, T), k0 = seq_start(st, r0);
            float *Sb = S + (size_t)r0 * T;
            anv_gemm_builtin(0, 1, r1 - r0, r1 - k0, hs, scale, q + (size_t)r0 * C3, C3, k + (size_t)k0 * C3, C3, 0.0f,
                             Sb + k0, T);
            for (int t = r0; t < r1; t++) {
                float *row = S + (size_t)t * T;
                int lo = seq_start(st, t);
                float mx = row[lo];
                for (int s = lo + 1; s <= t; s++) mx = row[s] > mx ? row[s] : mx;
                for (int s = lo; s <= t; s++) row[s] = anv_vexpf(row[s] - mx); /* vectorised; the sum is not */
                double sum = 0;
                for (int s = lo; s <= t; s++) sum += row[s];
                float inv = (float)(1.0 / sum);
                for (int s = lo; s <= t; s++) row[s] *= inv;
                for (int s = k0; s < lo; s++) row[s] = 0.0f;
                for (int s = t + 1; s < r1; s++) row[s] = 0.0f;
                lse[(size_t)bh * T + t] = mx + (float)log(sum);
            }
            anv_gemm_builtin(0, 0, r1 - r0, hs, r1 - k0, 1.0f, Sb + k0, T, v + (size_t)k0 * C3, C3, 0.0f,
                             o + (size_t)r0 * C, C);
        }
    }
}

void anv_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out,
                            const float *lse, const int32_t *starts, int B, int T, int C, int NH, int NKV) {
    int hs = C / NH, KC = NKV * hs, C3 = C + 2 * KC, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bkv = 0; bkv < B * NKV; bkv++) {
        int b = bkv / NKV, kvh = bkv % NKV;
        float *P = scratch + (size_t)anv_thread_id() * 2 * T * T, *dS = P + (size_t)T * T;
        size_t row0 = (size_t)b * T * C3;
        const float *k = qkv + row0 + C + kvh * hs, *v = k + KC;
        float *dk = dqkv + row0 + C + kvh * hs, *dv = dk + KC;
        const int32_t *st = starts ? starts + (size_t)b * T : NULL;
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            int bh = b * NH + h;
            float acc = h == kvh * group ? 0.0f : 1.0f; /* the group's first head writes dK, dV; the rest add */
            const float *q = qkv + row0 + h * hs;
            float *dq = dqkv + row0 + h * hs;
            const float *o = out + (size_t)b * T * C + h * hs, *dO = dout + (size_t)b * T * C + h * hs;
            /* By blocks of query rows: P, then dS = P * (dO V^T - rowsum(dO * O)), then dQ = dS K. */
            for (int r0 = 0; r0 < T; r0 += RB) {
                int r1 = block_end(r0, T), k0 = seq_start(st, r0);
                float *Pb = P + (size_t)r0 * T + k0, *dSb = dS + (size_t)r0 * T + k0;
                const float *kb = k + (size_t)k0 * C3;
                anv_gemm_builtin(0, 1, r1 - r0, r1 - k0, hs, scale, q + (size_t)r0 * C3, C3, kb, C3, 0.0f, Pb, T);
                anv_gemm_builtin(0, 1, r1 - r0, r1 - k0, hs, 1.0f, dO + (size_t)r0 * C, C, v + (size_t)k0 * C3, C3,
                                 0.0f, dSb, T);
                for (int t = r0; t < r1; t++) {
                    float *p = P + (size_t)t * T, *ds = dS + (size_t)t * T, l = lse[(size_t)bh * T + t];
                    const float *ot = o + (size_t)t * C, *dot = dO + (size_t)t * C;
                    int lo = seq_start(st, t), z0 = lo / RB * RB < k0 ? lo / RB * RB : k0;
                    double d = 0;
                    for (int j = 0; j < hs; j++) d += (double)ot[j] * dot[j];
                    for (int s = lo; s <= t; s++) {
                        p[s] = anv_vexpf(p[s] - l);
                        ds[s] = p[s] * (ds[s] - (float)d);
                    }
                    for (int s = z0; s < lo; s++) p[s] = ds[s] = 0.0f; /* read by this and the dK, dV products */
                    for (int s = t + 1; s < r1; s++) p[s] = ds[s] = 0.0f;
                }
                anv_gemm_builtin(0, 0, r1 - r0, hs, r1 - k0, scale, dSb, T, kb, C3, 0.0f, dq + (size_t)r0 * C3, C3);
            }
            /* By blocks of keys c0..c1-1, over the queries c0..t1-1 that see them: dV = P^T dO, dK = dS^T Q. */
            for (int c0 = 0; c0 < T; c0 += RB) {
                int c1 = block_end(c0, T), t1 = seq_end(st, c1 - 1, T);
                size_t at = (size_t)c0 * T + c0;
                anv_gemm_builtin(1, 0, c1 - c0, hs, t1 - c0, 1.0f, P + at, T, dO + (size_t)c0 * C, C, acc,
                                 dv + (size_t)c0 * C3, C3);
                anv_gemm_builtin(1, 0, c1 - c0, hs, t1 - c0, scale, dS + at, T, q + (size_t)c0 * C3, C3, acc,
                                 dk + (size_t)c0 * C3, C3);
            }
        }
    }
}

/* Decoding: each new row attends to its cached keys in blocks of DECODE_BLOCK with an online softmax
 * (running max m and sum l; the output so far is rescaled by e^(m_old - m_new) when a block raises the
 * max), so no (pos + n) scores are stored. One (row, head) pair per task. Dot products and sums run in
 * LANES independent partial sums (one vector register), added pairwise at the end, so that they
 * vectorise; the order is fixed, so a row's output does not depend on the rows decoded with it. */
enum { DECODE_BLOCK = 64, LANES = 16 };

static inline float sum_lanes(float *part) {
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int u = 0; u < w; u++) part[u] += part[u + w];
    return part[0];
}

static inline float dot(const float *a, const float *b, int n) {
    float part[LANES] = {0};
    int d = 0;
    for (; d + LANES <= n; d += LANES)
        for (int u = 0; u < LANES; u++) part[u] += a[d + u] * b[d + u];
    for (int u = 0; d + u < n; u++) part[u] += a[d + u] * b[d + u];
    return sum_lanes(part);
}

static inline float sum(const float *a, int n) {
    float part[LANES] = {0};
    int d = 0;
    for (; d + LANES <= n; d += LANES)
        for (int u = 0; u < LANES; u++) part[u] += a[d + u];
    for (int u = 0; d + u < n; u++) part[u] += a[d + u];
    return sum_lanes(part);
}

void anv_attention_decode(float *out, float *kc, float *vc, const float *qkv, int pos, int n, int C, int NH, int NKV) {
    int hs = C / NH, KC = NKV * hs, group = NH / NKV;
    size_t C3 = (size_t)C + 2 * (size_t)KC;
    for (int i = 0; i < n; i++) {
        memcpy(kc + (size_t)(pos + i) * KC, qkv + i * C3 + C, (size_t)KC * sizeof *kc);
        memcpy(vc + (size_t)(pos + i) * KC, qkv + i * C3 + C + KC, (size_t)KC * sizeof *vc);
    }
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static) collapse(2)
    for (int i = 0; i < n; i++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + i * C3 + h * hs, *kh = kc + (h / group) * hs, *vh = vc + (h / group) * hs;
            float *o = out + (size_t)i * C + h * hs, s[DECODE_BLOCK], m = -INFINITY, l = 0.0f;
            for (int d = 0; d < hs; d++) o[d] = 0.0f;
            for (int t0 = 0; t0 <= pos + i; t0 += DECODE_BLOCK) {
                int nt = pos + i + 1 - t0 < DECODE_BLOCK ? pos + i + 1 - t0 : DECODE_BLOCK;
                float m_new = m;
                for (int j = 0; j < nt; j++) {
                    s[j] = dot(q, kh + (size_t)(t0 + j) * KC, hs) * scale;
                    m_new = s[j] > m_new ? s[j] : m_new;
                }
                for (int j = 0; j < nt; j++) s[j] = anv_vexpf(s[j] - m_new);
                float corr = anv_vexpf(m - m_new); /* 0 (to float precision) on the first block */
                l = l * corr + sum(s, nt);
                for (int d = 0; d < hs; d++) o[d] *= corr;
                for (int j = 0; j < nt; j++) {
                    const float *v = vh + (size_t)(t0 + j) * KC;
                    for (int d = 0; d < hs; d++) o[d] += s[j] * v[d];
                }
                m = m_new;
            }
            for (int d = 0; d < hs; d++) o[d] /= l;
        }
}
