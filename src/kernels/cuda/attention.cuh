/* Causal multi-head self-attention in fp32 with grouped-query heads, in the style of flash attention:
 * the (T, T) scores never leave the chip. Per (b, h), with hs = C / NH and Q, K, V (T, hs) strided views
 * into qkv (row stride C + 2 KC, KC = NKV hs; query head h reads key/value head h / (NH / NKV)):
 *   S = Q K^T / sqrt(hs), masked to starts[b, t] <= s <= t (packed rows, kernel_list.h; starts NULL: 0);  P =
 * softmax(S) row-wise;  O = P V;  lse = log-sum-exp of each row of S (the CPU's definition: max + log(sum of exp(S -
 * max))). Backward, with P recomputed from lse and D_t = sum_j dO_tj O_tj: dS = P * (dO V^T - D);  dQ = dS K /
 * sqrt(hs);  dK = dS^T Q / sqrt(hs);  dV = P^T dO.
 *
 * Layout: a block of WARPS warps, one warp per row (a query row t in the forward and the dQ pass, a
 * key row s in the dK/dV pass); the block stages tiles of TILE rows of the other operand in shared
 * memory (row stride HS + 1, so that lane l reading row l is free of bank conflicts). Within a tile,
 * lane l takes the tile's row l for the dot products; then the row's output accumulates over the tile's
 * rows in order, each lane holding the head dimensions lane, lane + 32, ... The forward keeps an online
 * softmax (running max m and sum l, rescaled as the max grows). Each output element has one owner and a
 * fixed order of additions, and dQ and dK/dV are separate passes that write disjoint parts of dqkv:
 * deterministic, no atomics. A block of the dK/dV pass owns key rows of one key/value head and walks
 * the query heads of its group in order, so their contributions add up in its registers. HS, the head
 * size rounded up to 32, 64 or 128, sizes the registers and the shared tiles. In packed rows, a block
 * of query rows starts at the tile of its first row's first key, and a block of key rows stops at the
 * first query tile whose first row starts after its keys. In the bf16 precision,
 * head sizes of 32, 64 and 128 go to the tensor-core kernels of attention_tc.cuh instead.
 *
 * The kernels are in a header so that tests/gpu/test_cuda_emu.cc runs the same source on the CPU;
 * attention.cu launches them. */
#ifndef ANVIL_KERNELS_CUDA_ATTENTION_CUH
#define ANVIL_KERNELS_CUDA_ATTENTION_CUH

#include "kernels/cuda/warp.cuh"

namespace att_fp32 {

enum { WARPS = 8, TILE = 32, MAX_HS = 128 };
#define ATT_FULL 0xffffffffu

/* tile[r][d] = src[(r0 + r) * ld + d] for r < TILE, d < hs; rows past `rows` are 0. */
template <int HS>
__device__ inline void load_tile(float (*tile)[HS + 1], const float *src, size_t ld, int r0, int rows, int hs) {
    for (int i = threadIdx.x; i < TILE * hs; i += blockDim.x) {
        int r = i / hs, d = i % hs;
        tile[r][d] = r0 + r < rows ? src[(size_t)(r0 + r) * ld + d] : 0.0f;
    }
}

/* dst[d] = src[d] for d < hs, by one warp. */
__device__ inline void load_row(float *dst, const float *src, int hs) {
    for (int d = threadIdx.x % 32; d < hs; d += 32) dst[d] = src[d];
}

/* The first key of row t's sequence (st: the row's starts, or NULL). */
__device__ inline int seq_start(const int32_t *st, int t) { return st ? st[t] : 0; }

/* grid (ceil(T / WARPS), B * NH): out (B, T, C) and lse (B, NH, T) from qkv (B, T, C + 2 NKV hs). */
template <int HS>
__global__ void __launch_bounds__(WARPS * 32)
    forward(float *out, float *lse, const float *qkv, const int32_t *starts, int T, int C, int NH, int NKV) {
    __shared__ float ks[TILE][HS + 1], vs[TILE][HS + 1], qs[WARPS][HS];
    int bh = blockIdx.y, b = bh / NH, h = bh % NH, hs = C / NH, KC = NKV * hs;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int t = blockIdx.x * WARPS + warp, t_last = min(T - 1, (int)(blockIdx.x + 1) * WARPS - 1);
    size_t C3 = (size_t)C + 2 * KC, row0 = (size_t)b * T * C3;
    const float *q = qkv + row0 + (size_t)h * hs;
    const float *k = qkv + row0 + C + (size_t)(h / (NH / NKV)) * hs, *v = k + KC;
    float scale = 1.0f / sqrtf((float)hs);
    const int32_t *st = starts ? starts + (size_t)b * T : nullptr;
    int lo = t < T ? seq_start(st, t) : 0;
    if (t < T) load_row(qs[warp], q + t * C3, hs);
    float m = -INFINITY, l = 0.0f, acc[HS / 32];
#pragma unroll
    for (int j = 0; j < HS / 32; j++) acc[j] = 0.0f;
    for (int s0 = seq_start(st, blockIdx.x * WARPS) / TILE * TILE; s0 <= t_last; s0 += TILE) {
        __syncthreads(); /* the previous tile is consumed (and qs written) */
        load_tile<HS>(ks, k, C3, s0, T, hs);
        load_tile<HS>(vs, v, C3, s0, T, hs);
        __syncthreads();
        if (t >= T || s0 > t || s0 + TILE <= lo) continue; /* warp-uniform */
        int s = s0 + lane;
        float score = -INFINITY;
        if (s >= lo && s <= t) {
            float dot = 0.0f;
            for (int d = 0; d < hs; d++) dot += qs[warp][d] * ks[lane][d];
            score = scale * dot;
        }
        float m_new = fmaxf(m, anv_warp_max(score)); /* finite: a key of lo..t is in the tile */
        float p = s >= lo && s <= t ? expf(score - m_new) : 0.0f, corr = expf(m - m_new);
        l = l * corr + anv_warp_sum(p);
        int nk = min(TILE, t - s0 + 1);
#pragma unroll
        for (int j = 0; j < HS / 32; j++) acc[j] *= corr;
        for (int kk = 0; kk < nk; kk++) {
            float pk = __shfl_sync(ATT_FULL, p, kk);
#pragma unroll
            for (int j = 0; j < HS / 32; j++)
                if (lane + 32 * j < hs) acc[j] += pk * vs[kk][lane + 32 * j];
        }
        m = m_new;
    }
    if (t >= T) return;
    float *o = out + ((size_t)b * T + t) * C + (size_t)h * hs, inv = 1.0f / l;
#pragma unroll
    for (int j = 0; j < HS / 32; j++)
        if (lane + 32 * j < hs) o[lane + 32 * j] = acc[j] * inv;
    if (lane == 0) lse[(size_t)bh * T + t] = m + logf(l);
}

/* grid (ceil(T / WARPS), B * NH), a warp per query row t: dq (rows of dqkv (B, T, C + 2 NKV hs)) =
 * dS K / sqrt(hs). */
template <int HS>
__global__ void __launch_bounds__(WARPS * 32)
    backward_dq(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta,
                const int32_t *starts, int T, int C, int NH, int NKV) {
    __shared__ float ks[TILE][HS + 1], vs[TILE][HS + 1], qs[WARPS][HS], dos[WARPS][HS];
    int bh = blockIdx.y, b = bh / NH, h = bh % NH, hs = C / NH, KC = NKV * hs;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int t = blockIdx.x * WARPS + warp, t_last = min(T - 1, (int)(blockIdx.x + 1) * WARPS - 1);
    size_t C3 = (size_t)C + 2 * KC, row0 = (size_t)b * T * C3, base = row0 + (size_t)h * hs;
    const float *q = qkv + base;
    const float *k = qkv + row0 + C + (size_t)(h / (NH / NKV)) * hs, *v = k + KC;
    const float *dO = dout + (size_t)b * T * C + (size_t)h * hs;
    float scale = 1.0f / sqrtf((float)hs), L = 0.0f, D = 0.0f;
    const int32_t *st = starts ? starts + (size_t)b * T : nullptr;
    int lo = t < T ? seq_start(st, t) : 0;
    if (t < T) {
        load_row(qs[warp], q + t * C3, hs);
        load_row(dos[warp], dO + (size_t)t * C, hs);
        L = lse[(size_t)bh * T + t];
        D = delta[(size_t)bh * T + t];
    }
    float acc[HS / 32];
#pragma unroll
    for (int j = 0; j < HS / 32; j++) acc[j] = 0.0f;
    for (int s0 = seq_start(st, blockIdx.x * WARPS) / TILE * TILE; s0 <= t_last; s0 += TILE) {
        __syncthreads();
        load_tile<HS>(ks, k, C3, s0, T, hs);
        load_tile<HS>(vs, v, C3, s0, T, hs);
        __syncthreads();
        if (t >= T || s0 > t || s0 + TILE <= lo) continue;
        int s = s0 + lane;
        float ds = 0.0f;
        if (s >= lo && s <= t) {
            float dot = 0.0f, dp = 0.0f;
            for (int d = 0; d < hs; d++) {
                dot += qs[warp][d] * ks[lane][d];
                dp += dos[warp][d] * vs[lane][d];
            }
            ds = expf(scale * dot - L) * (dp - D);
        }
        int nk = min(TILE, t - s0 + 1);
        for (int kk = 0; kk < nk; kk++) {
            float dsk = __shfl_sync(ATT_FULL, ds, kk);
#pragma unroll
            for (int j = 0; j < HS / 32; j++)
                if (lane + 32 * j < hs) acc[j] += dsk * ks[kk][lane + 32 * j];
        }
    }
    if (t >= T) return;
    float *dq = dqkv + base + (size_t)t * C3;
#pragma unroll
    for (int j = 0; j < HS / 32; j++)
        if (lane + 32 * j < hs) dq[lane + 32 * j] = scale * acc[j];
}

/* grid (ceil(T / WARPS), B * NKV), a warp per key row s of key/value head kvh: dk = dS^T Q / sqrt(hs),
 * dv = P^T dO over the query rows t >= s of s's sequence, of each query head of kvh's group, the heads
 * in order. */
template <int HS>
__global__ void __launch_bounds__(WARPS * 32)
    backward_dkv(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta,
                 const int32_t *starts, int T, int C, int NH, int NKV) {
    __shared__ float qs[TILE][HS + 1], dos[TILE][HS + 1], ks[WARPS][HS], vs[WARPS][HS];
    __shared__ float Ls[TILE], Ds[TILE];
    __shared__ int Ss[TILE];
    int b = blockIdx.y / NKV, kvh = blockIdx.y % NKV, hs = C / NH, KC = NKV * hs, group = NH / NKV;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int s = blockIdx.x * WARPS + warp;
    size_t C3 = (size_t)C + 2 * KC, row0 = (size_t)b * T * C3;
    const float *k = qkv + row0 + C + (size_t)kvh * hs, *v = k + KC;
    float scale = 1.0f / sqrtf((float)hs);
    const int32_t *st = starts ? starts + (size_t)b * T : nullptr;
    int s_last = min(T - 1, (int)(blockIdx.x + 1) * WARPS - 1);
    if (s < T) {
        load_row(ks[warp], k + s * C3, hs);
        load_row(vs[warp], v + s * C3, hs);
    }
    float dk[HS / 32], dv[HS / 32];
#pragma unroll
    for (int j = 0; j < HS / 32; j++) dk[j] = dv[j] = 0.0f;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        const float *q = qkv + row0 + (size_t)h * hs, *dO = dout + (size_t)b * T * C + (size_t)h * hs;
        const float *L = lse + ((size_t)b * NH + h) * T, *D = delta + ((size_t)b * NH + h) * T;
        /* query tiles from the one holding the block's first key row to the end */
        for (int t0 = (int)blockIdx.x * WARPS / TILE * TILE; t0 < T && seq_start(st, t0) <= s_last; t0 += TILE) {
            __syncthreads();
            load_tile<HS>(qs, q, C3, t0, T, hs);
            load_tile<HS>(dos, dO, C, t0, T, hs);
            for (int i = threadIdx.x; i < TILE; i += blockDim.x) {
                Ls[i] = t0 + i < T ? L[t0 + i] : 0.0f;
                Ds[i] = t0 + i < T ? D[t0 + i] : 0.0f;
                Ss[i] = t0 + i < T ? seq_start(st, t0 + i) : T;
            }
            __syncthreads();
            if (s >= T || t0 + TILE <= s) continue; /* warp-uniform: no query t >= s in this tile */
            int t = t0 + lane;
            float p = 0.0f, ds = 0.0f;
            if (t >= s && t < T && Ss[lane] <= s) {
                float dot = 0.0f, dp = 0.0f;
                for (int d = 0; d < hs; d++) {
                    dot += qs[lane][d] * ks[warp][d];
                    dp += dos[lane][d] * vs[warp][d];
                }
                p = expf(scale * dot - Ls[lane]);
                ds = p * (dp - Ds[lane]);
            }
            int k0 = max(0, s - t0), k1 = min(TILE, T - t0);
            for (int kk = k0; kk < k1; kk++) {
                float pk = __shfl_sync(ATT_FULL, p, kk), dsk = __shfl_sync(ATT_FULL, ds, kk);
#pragma unroll
                for (int j = 0; j < HS / 32; j++)
                    if (lane + 32 * j < hs) {
                        dv[j] += pk * dos[kk][lane + 32 * j];
                        dk[j] += dsk * qs[kk][lane + 32 * j];
                    }
            }
        }
    }
    if (s >= T) return;
    float *dks = dqkv + row0 + C + (size_t)kvh * hs + (size_t)s * C3, *dvs = dks + KC;
#pragma unroll
    for (int j = 0; j < HS / 32; j++)
        if (lane + 32 * j < hs) {
            dks[lane + 32 * j] = scale * dk[j];
            dvs[lane + 32 * j] = dv[j];
        }
}

} /* namespace att_fp32 */

#endif
