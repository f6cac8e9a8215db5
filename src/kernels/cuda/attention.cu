/* Causal multi-head self-attention in the style of flash attention: the (T, T) scores never leave the
 * chip. Per (b, h), with hs = C / NH and Q, K, V (T, hs) strided views into qkv (row stride 3C):
 *   S = Q K^T / sqrt(hs), masked to s <= t;  P = softmax(S) row-wise;  O = P V;  lse = log-sum-exp of
 *   each row of S (the CPU's definition: max + log(sum of exp(S - max))).
 * Backward, with P recomputed from lse and D_t = sum_j dO_tj O_tj:
 *   dS = P * (dO V^T - D);  dQ = dS K / sqrt(hs);  dK = dS^T Q / sqrt(hs);  dV = P^T dO.
 *
 * Layout: a block of ATT_WARPS warps, one warp per row (a query row t in the forward and the dQ pass, a
 * key row s in the dK/dV pass); the block stages tiles of ATT_TILE rows of the other operand in shared
 * memory (row stride HS + 1, so that lane l reading row l is free of bank conflicts). Within a tile,
 * lane l takes the tile's row l for the dot products; then the row's output accumulates over the tile's
 * rows in order, each lane holding the head dimensions lane, lane + 32, ... The forward keeps an online
 * softmax (running max m and sum l, rescaled as the max grows). Each output element has one owner and a
 * fixed order of additions, and dQ and dK/dV are separate passes that write disjoint parts of dqkv:
 * deterministic, no atomics. HS, the head size rounded up to 32, 64 or 128, sizes the registers and
 * the shared tiles. In the bf16 precision, head sizes of 32, 64 and 128 go to the tensor-core kernels of
 * attention_tc.cuh instead. */
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

enum { ATT_WARPS = 8, ATT_TILE = 32, ATT_MAX_HS = 128 };
#define FULL_MASK 0xffffffffu

/* tile[r][d] = src[(r0 + r) * ld + d] for r < ATT_TILE, d < hs; rows past `rows` are 0. */
template <int HS>
__device__ void load_tile(float (*tile)[HS + 1], const float *src, size_t ld, int r0, int rows, int hs) {
    for (int i = threadIdx.x; i < ATT_TILE * hs; i += blockDim.x) {
        int r = i / hs, d = i % hs;
        tile[r][d] = r0 + r < rows ? src[(size_t)(r0 + r) * ld + d] : 0.0f;
    }
}

/* dst[d] = src[d] for d < hs, by one warp. */
__device__ void load_row(float *dst, const float *src, int hs) {
    for (int d = threadIdx.x % 32; d < hs; d += 32) dst[d] = src[d];
}

/* grid (ceil(T / ATT_WARPS), B * NH): out (B, T, C) and lse (B, NH, T) from qkv (B, T, 3C). */
template <int HS>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_forward(float *out, float *lse, const float *qkv, int T, int C, int NH) {
    __shared__ float ks[ATT_TILE][HS + 1], vs[ATT_TILE][HS + 1], qs[ATT_WARPS][HS];
    int bh = blockIdx.y, b = bh / NH, h = bh % NH, hs = C / NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int t = blockIdx.x * ATT_WARPS + warp, t_last = min(T - 1, (int)(blockIdx.x + 1) * ATT_WARPS - 1);
    size_t C3 = 3 * (size_t)C;
    const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hs, *k = q + C, *v = q + 2 * C;
    float scale = 1.0f / sqrtf((float)hs);
    if (t < T) load_row(qs[warp], q + t * C3, hs);
    float m = -INFINITY, l = 0.0f, acc[HS / 32];
#pragma unroll
    for (int j = 0; j < HS / 32; j++) acc[j] = 0.0f;
    for (int s0 = 0; s0 <= t_last; s0 += ATT_TILE) {
        __syncthreads(); /* the previous tile is consumed (and qs written) */
        load_tile<HS>(ks, k, C3, s0, T, hs);
        load_tile<HS>(vs, v, C3, s0, T, hs);
        __syncthreads();
        if (t >= T || s0 > t) continue; /* warp-uniform */
        int s = s0 + lane;
        float score = -INFINITY;
        if (s <= t) {
            float dot = 0.0f;
            for (int d = 0; d < hs; d++) dot += qs[warp][d] * ks[lane][d];
            score = scale * dot;
        }
        float m_new = fmaxf(m, anv_warp_max(score)); /* finite: key s0 <= t is in the tile */
        float p = s <= t ? expf(score - m_new) : 0.0f, corr = expf(m - m_new);
        l = l * corr + anv_warp_sum(p);
        int nk = min(ATT_TILE, t - s0 + 1);
#pragma unroll
        for (int j = 0; j < HS / 32; j++) acc[j] *= corr;
        for (int kk = 0; kk < nk; kk++) {
            float pk = __shfl_sync(FULL_MASK, p, kk);
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

/* One warp per (b, h, t) row: delta (B, NH, T) = sum over the head's dimensions of dout * out. */
__global__ void attention_delta(float *delta, const float *out, const float *dout, int B, int T, int C, int NH) {
    size_t row = (size_t)blockIdx.x * ATT_WARPS + threadIdx.x / 32;
    if (row >= (size_t)B * NH * T) return;
    int hs = C / NH, lane = threadIdx.x % 32;
    size_t bh = row / T, t = row % T, b = bh / NH, h = bh % NH;
    size_t off = (b * T + t) * C + h * hs;
    double d = 0;
    for (int j = lane; j < hs; j += 32) d += (double)out[off + j] * dout[off + j];
    d = anv_warp_sum(d);
    if (lane == 0) delta[row] = (float)d;
}

/* grid (ceil(T / ATT_WARPS), B * NH), a warp per query row t: dq (rows of dqkv) = dS K / sqrt(hs). */
template <int HS>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_backward_dq(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta, int T,
                          int C, int NH) {
    __shared__ float ks[ATT_TILE][HS + 1], vs[ATT_TILE][HS + 1], qs[ATT_WARPS][HS], dos[ATT_WARPS][HS];
    int bh = blockIdx.y, b = bh / NH, h = bh % NH, hs = C / NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int t = blockIdx.x * ATT_WARPS + warp, t_last = min(T - 1, (int)(blockIdx.x + 1) * ATT_WARPS - 1);
    size_t C3 = 3 * (size_t)C, base = (size_t)b * T * C3 + (size_t)h * hs;
    const float *q = qkv + base, *k = q + C, *v = q + 2 * C;
    const float *dO = dout + (size_t)b * T * C + (size_t)h * hs;
    float scale = 1.0f / sqrtf((float)hs), L = 0.0f, D = 0.0f;
    if (t < T) {
        load_row(qs[warp], q + t * C3, hs);
        load_row(dos[warp], dO + (size_t)t * C, hs);
        L = lse[(size_t)bh * T + t];
        D = delta[(size_t)bh * T + t];
    }
    float acc[HS / 32];
#pragma unroll
    for (int j = 0; j < HS / 32; j++) acc[j] = 0.0f;
    for (int s0 = 0; s0 <= t_last; s0 += ATT_TILE) {
        __syncthreads();
        load_tile<HS>(ks, k, C3, s0, T, hs);
        load_tile<HS>(vs, v, C3, s0, T, hs);
        __syncthreads();
        if (t >= T || s0 > t) continue;
        int s = s0 + lane;
        float ds = 0.0f;
        if (s <= t) {
            float dot = 0.0f, dp = 0.0f;
            for (int d = 0; d < hs; d++) {
                dot += qs[warp][d] * ks[lane][d];
                dp += dos[warp][d] * vs[lane][d];
            }
            ds = expf(scale * dot - L) * (dp - D);
        }
        int nk = min(ATT_TILE, t - s0 + 1);
        for (int kk = 0; kk < nk; kk++) {
            float dsk = __shfl_sync(FULL_MASK, ds, kk);
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

/* grid (ceil(T / ATT_WARPS), B * NH), a warp per key row s: dk = dS^T Q / sqrt(hs), dv = P^T dO over the
 * query rows t >= s. */
template <int HS>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_backward_dkv(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta,
                           int T, int C, int NH) {
    __shared__ float qs[ATT_TILE][HS + 1], dos[ATT_TILE][HS + 1], ks[ATT_WARPS][HS], vs[ATT_WARPS][HS];
    __shared__ float Ls[ATT_TILE], Ds[ATT_TILE];
    int bh = blockIdx.y, b = bh / NH, h = bh % NH, hs = C / NH;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int s = blockIdx.x * ATT_WARPS + warp;
    size_t C3 = 3 * (size_t)C, base = (size_t)b * T * C3 + (size_t)h * hs;
    const float *q = qkv + base, *k = q + C, *v = q + 2 * C;
    const float *dO = dout + (size_t)b * T * C + (size_t)h * hs;
    float scale = 1.0f / sqrtf((float)hs);
    if (s < T) {
        load_row(ks[warp], k + s * C3, hs);
        load_row(vs[warp], v + s * C3, hs);
    }
    float dk[HS / 32], dv[HS / 32];
#pragma unroll
    for (int j = 0; j < HS / 32; j++) dk[j] = dv[j] = 0.0f;
    /* query tiles from the one holding the block's first key row to the end */
    for (int t0 = (int)blockIdx.x * ATT_WARPS / ATT_TILE * ATT_TILE; t0 < T; t0 += ATT_TILE) {
        __syncthreads();
        load_tile<HS>(qs, q, C3, t0, T, hs);
        load_tile<HS>(dos, dO, C, t0, T, hs);
        for (int i = threadIdx.x; i < ATT_TILE; i += blockDim.x) {
            Ls[i] = t0 + i < T ? lse[(size_t)bh * T + t0 + i] : 0.0f;
            Ds[i] = t0 + i < T ? delta[(size_t)bh * T + t0 + i] : 0.0f;
        }
        __syncthreads();
        if (s >= T || t0 + ATT_TILE <= s) continue; /* warp-uniform: no query t >= s in this tile */
        int t = t0 + lane;
        float p = 0.0f, ds = 0.0f;
        if (t >= s && t < T) {
            float dot = 0.0f, dp = 0.0f;
            for (int d = 0; d < hs; d++) {
                dot += qs[lane][d] * ks[warp][d];
                dp += dos[lane][d] * vs[warp][d];
            }
            p = expf(scale * dot - Ls[lane]);
            ds = p * (dp - Ds[lane]);
        }
        int k0 = max(0, s - t0), k1 = min(ATT_TILE, T - t0);
        for (int kk = k0; kk < k1; kk++) {
            float pk = __shfl_sync(FULL_MASK, p, kk), dsk = __shfl_sync(FULL_MASK, ds, kk);
#pragma unroll
            for (int j = 0; j < HS / 32; j++)
                if (lane + 32 * j < hs) {
                    dv[j] += pk * dos[kk][lane + 32 * j];
                    dk[j] += dsk * qs[kk][lane + 32 * j];
                }
        }
    }
    if (s >= T) return;
    float *dks = dqkv + base + C + (size_t)s * C3, *dvs = dks + C;
#pragma unroll
    for (int j = 0; j < HS / 32; j++)
        if (lane + 32 * j < hs) {
            dks[lane + 32 * j] = scale * dk[j];
            dvs[lane + 32 * j] = dv[j];
        }
}

/* HS for a head size: 32, 64 or 128; 0 (with an error, logged) when larger. */
static int head_tile(int C, int NH, const char *what) {
    int hs = NH > 0 ? C / NH : 0;
    if (hs >= 1 && hs <= ATT_MAX_HS && hs * NH == C) return hs <= 32 ? 32 : hs <= 64 ? 64 : 128;
    anv_error("%s: head size %d (C %d, %d heads) is not supported on the GPU (1 to %d, C = heads x size)", what, hs, C,
              NH, ATT_MAX_HS);
    anv_kernel_failed();
    return 0;
}

size_t anv_cuda_attention_scratch_floats(int T) {
    (void)T;
    return 0; /* the kernels keep their tiles in shared memory */
}

/* The bf16 precision takes the tensor-core kernels where the head size allows. */
static int use_tensor_cores(int C, int NH) {
    return anv_matmul_precision() == ANV_PRECISION_BF16 && anv_cuda_attention_tc_head(C, NH) > 0;
}

void anv_cuda_attention_forward(float *out, float *lse, float *scratch, const float *qkv, int B, int T, int C, int NH) {
    (void)scratch;
    if (B <= 0 || T <= 0) return;
    if (use_tensor_cores(C, NH)) {
        anv_cuda_attention_tc_forward(out, lse, qkv, B, T, C, NH);
        return;
    }
    int HS = head_tile(C, NH, "attention forward");
    dim3 grid((T + ATT_WARPS - 1) / ATT_WARPS, B * NH);
    cudaStream_t st = anv_cuda_stream();
    if (HS == 32)
        attention_forward<32><<<grid, ATT_WARPS * 32, 0, st>>>(out, lse, qkv, T, C, NH);
    else if (HS == 64)
        attention_forward<64><<<grid, ATT_WARPS * 32, 0, st>>>(out, lse, qkv, T, C, NH);
    else if (HS == 128)
        attention_forward<128><<<grid, ATT_WARPS * 32, 0, st>>>(out, lse, qkv, T, C, NH);
    else
        return;
    ANV_CUDA_LAUNCHED("attention forward");
}

/* The backward's passes for one head tile size. */
template <int HS>
static void backward_passes(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta,
                            int B, int T, int C, int NH) {
    dim3 grid((T + ATT_WARPS - 1) / ATT_WARPS, B * NH);
    cudaStream_t st = anv_cuda_stream();
    attention_backward_dq<HS><<<grid, ATT_WARPS * 32, 0, st>>>(dqkv, dout, qkv, lse, delta, T, C, NH);
    attention_backward_dkv<HS><<<grid, ATT_WARPS * 32, 0, st>>>(dqkv, dout, qkv, lse, delta, T, C, NH);
}

void anv_cuda_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out,
                                 const float *lse, int B, int T, int C, int NH) {
    (void)scratch;
    if (B <= 0 || T <= 0) return;
    int HS = head_tile(C, NH, "attention backward");
    if (!HS) return;
    size_t rows = (size_t)B * NH * T;
    float *delta = (float *)anv_cuda_scratch(sizeof(float) * rows, "attention backward");
    if (!delta) return;
    attention_delta<<<(unsigned)((rows + ATT_WARPS - 1) / ATT_WARPS), ATT_WARPS * 32, 0, anv_cuda_stream()>>>(
        delta, out, dout, B, T, C, NH);
    if (use_tensor_cores(C, NH))
        anv_cuda_attention_tc_backward(dqkv, dout, qkv, lse, delta, B, T, C, NH);
    else if (HS == 32)
        backward_passes<32>(dqkv, dout, qkv, lse, delta, B, T, C, NH);
    else if (HS == 64)
        backward_passes<64>(dqkv, dout, qkv, lse, delta, B, T, C, NH);
    else
        backward_passes<128>(dqkv, dout, qkv, lse, delta, B, T, C, NH);
    ANV_CUDA_LAUNCHED("attention backward");
}

void anv_cuda_attention_decode(float *out, float *kc, float *vc, const float *qkv, int pos, int n, int C, int NH) {
    if (n <= 0) return;
    int HS = head_tile(C, NH, "attention decode");
    if (!HS) return;
    cudaStream_t st = anv_cuda_stream();
    att_dec::append_kv<<<anv_cuda_blocks((size_t)n * C), ANV_CUDA_THREADS, 0, st>>>(kc, vc, qkv, pos, n, C);
    dim3 grid(n, NH);
    if (HS == 32)
        att_dec::attend<1><<<grid, att_dec::THREADS, att_dec::smem_bytes(1), st>>>(out, kc, vc, qkv, pos, C, NH);
    else if (HS == 64)
        att_dec::attend<2><<<grid, att_dec::THREADS, att_dec::smem_bytes(2), st>>>(out, kc, vc, qkv, pos, C, NH);
    else
        att_dec::attend<4><<<grid, att_dec::THREADS, att_dec::smem_bytes(4), st>>>(out, kc, vc, qkv, pos, C, NH);
    ANV_CUDA_LAUNCHED("attention decode");
}
