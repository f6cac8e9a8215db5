/* Causal attention on tensor cores, for the bf16 precision: the kernels of attention_tc.cu, in a header
 * of their own so that tests/gpu/test_attention_emu.cc can also run them on the CPU (through
 * tests/gpu/cuda_emu.h, which emulates the few CUDA features used here).
 *
 * The maths is attention.cu's (S = Q K^T / sqrt(hs), P = softmax(S) causal, O = P V, lse per row;
 * backward with D_t = sum_j dO_tj O_tj: dS = P * (dO V^T - D), dQ = dS K / sqrt(hs),
 * dK = dS^T Q / sqrt(hs), dV = P^T dO), but every product runs as 16x16x16 bf16 WMMA tiles with fp32
 * accumulation: Q, K, V, dO, P and dS are rounded to bf16 (nearest even) on their way into shared
 * memory, as in PyTorch's bf16 flash attention. Softmax, its running max and sum, lse and the outputs
 * stay fp32.
 *
 * Layout. A block of 4 warps owns 64 rows (query rows in the forward and the dQ pass, key rows in the
 * dK/dV pass), 16 per warp, and walks over tiles of 64 rows of the other operand, which it stages in
 * shared memory as bf16 (row pitch HS + 8 elements: 16-byte multiples for WMMA, and rows that start
 * 4 banks apart). Each warp computes its 16 x 64 score tile with WMMA into a per-warp fp32 buffer;
 * then lane l owns row l / 2 and the half l % 2 of its columns for the elementwise work (softmax, mask,
 * dS) and of the output's columns. The forward's output lives in those lanes' registers, so the online
 * softmax can rescale it row by row; dK, dV and dQ, never rescaled, accumulate in WMMA fragments.
 * Like attention.cu: dQ and dK/dV are separate passes over disjoint parts of dqkv, each output element
 * has one owner and a fixed order of additions, so results are bitwise reproducible (no atomics).
 * HS (the head size) is 32, 64 or 128; qkv rows are 16-byte aligned because C = NH * HS. */
#ifndef ANVIL_KERNELS_CUDA_ATTENTION_TC_CUH
#define ANVIL_KERNELS_CUDA_ATTENTION_TC_CUH

#ifndef ANVIL_CUDA_EMULATION
#include <cuda_bf16.h>
#include <mma.h>
#endif

namespace att_tc {

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

enum {
    ROWS = 64, /* rows of a block, and of a tile of the other operand */
    WARPS = 4, /* 16 rows each */
    THREADS = WARPS * 32,
    SCORE_PITCH = 72 /* bf16 row pitch of the per-warp P and dS tiles (64 columns + 8) */
};
#define ATT_TC_FULL 0xffffffffu

/* Row pitches: bf16 operand tiles, and the per-warp fp32 buffers (scores, or a 16 x HS output). */
template <int HS> struct pitch {
    static const int tile = HS + 8;
    static const int f32 = (HS > ROWS ? HS : ROWS) + 4;
};

/* Bytes of the shared-memory pieces; each is a multiple of 32 bytes, so consecutive pieces keep the
 * 256-bit alignment WMMA needs. */
template <int HS> struct bytes {
    static const int tile = ROWS * pitch<HS>::tile * 2;
    static const int f32 = WARPS * 16 * pitch<HS>::f32 * 4;
    static const int scores = WARPS * 16 * SCORE_PITCH * 2;
    static const int forward = 3 * tile + f32 + scores;                         /* Q, K, V; S/PV; P */
    static const int backward = 4 * tile + 2 * f32 + 2 * scores + 2 * ROWS * 4; /* + dO; dP; dS; L, D */
};

/* dst (ROWS x HS bf16, pitch HS + 8) = rows r0 .. r0 + ROWS - 1 of src (row stride ld floats), rounded
 * to bf16; rows at or past `rows` are zero. */
template <int HS> __device__ inline void load_tile(bf16 *dst, const float *src, size_t ld, int r0, int rows) {
    const int per_row = HS / 4;
    for (int i = threadIdx.x; i < ROWS * per_row; i += THREADS) {
        int r = i / per_row, c = (i % per_row) * 4;
        float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r0 + r < rows) x = *reinterpret_cast<const float4 *>(src + (size_t)(r0 + r) * ld + c);
        bf16 *d = dst + r * pitch<HS>::tile + c;
        d[0] = __float2bfloat16(x.x);
        d[1] = __float2bfloat16(x.y);
        d[2] = __float2bfloat16(x.z);
        d[3] = __float2bfloat16(x.w);
    }
}

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_bt; /* a transposed tile */
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;

/* out (16 x 64 fp32, pitch pitch<HS>::f32) = A (16 x HS, the warp's rows of a bf16 tile) times B^T,
 * B being a whole bf16 tile (64 x HS): out[i][j] = sum_d A[i][d] B[j][d]. */
template <int HS> __device__ inline void rows_times_tile_t(float *out, const bf16 *A, const bf16 *B) {
    const int ld = pitch<HS>::tile;
#pragma unroll
    for (int n = 0; n < ROWS / 16; n++) {
        frag_c acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int k = 0; k < HS / 16; k++) {
            frag_a a;
            frag_bt b;
            wmma::load_matrix_sync(a, A + k * 16, ld);
            wmma::load_matrix_sync(b, B + n * 16 * ld + k * 16, ld);
            wmma::mma_sync(acc, a, b, acc);
        }
        wmma::store_matrix_sync(out + n * 16, acc, pitch<HS>::f32, wmma::mem_row_major);
    }
}

/* acc[n] += P (16 x 64 bf16, pitch SCORE_PITCH) times B (a whole 64 x HS bf16 tile), columns 16n.. */
template <int HS> __device__ inline void scores_times_tile(frag_c *acc, const bf16 *P, const bf16 *B) {
#pragma unroll
    for (int k = 0; k < ROWS / 16; k++) {
        frag_a a;
        wmma::load_matrix_sync(a, P + k * 16, SCORE_PITCH);
#pragma unroll
        for (int n = 0; n < HS / 16; n++) {
            frag_b b;
            wmma::load_matrix_sync(b, B + k * 16 * pitch<HS>::tile + n * 16, pitch<HS>::tile);
            wmma::mma_sync(acc[n], a, b, acc[n]);
        }
    }
}

/* Stores acc (16 x HS) in the warp's fp32 buffer; then the calling lane (row lane / 2, half lane % 2)
 * writes scale times its half row to dst (row stride ld floats) if that row is below `rows`. */
template <int HS>
__device__ inline void write_rows(float *dst, size_t ld, int row0, int rows, float scale, frag_c *acc, float *buf) {
#pragma unroll
    for (int n = 0; n < HS / 16; n++)
        wmma::store_matrix_sync(buf + n * 16, acc[n], pitch<HS>::f32, wmma::mem_row_major);
    __syncwarp();
    int lane = threadIdx.x % 32, r = lane / 2, c0 = (lane % 2) * (HS / 2);
    if (row0 + r < rows)
        for (int j = 0; j < HS / 2; j++)
            dst[(size_t)(row0 + r) * ld + c0 + j] = scale * buf[r * pitch<HS>::f32 + c0 + j];
    __syncwarp();
}

/* grid (ceil(T / 64), B * NH), THREADS threads, bytes<HS>::forward of dynamic shared memory:
 * out (B, T, C) and lse (B, NH, T) from qkv (B, T, 3C). */
template <int HS>
__global__ void __launch_bounds__(THREADS) forward(float *out, float *lse, const float *qkv, int T, int C, int NH) {
    extern __shared__ __align__(128) unsigned char att_tc_smem[];
    bf16 *qs = reinterpret_cast<bf16 *>(att_tc_smem), *ks = qs + ROWS * pitch<HS>::tile,
         *vs = ks + ROWS * pitch<HS>::tile;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
    float *sbuf = reinterpret_cast<float *>(vs + ROWS * pitch<HS>::tile) + warp * 16 * pitch<HS>::f32;
    bf16 *pbuf = reinterpret_cast<bf16 *>(att_tc_smem + 3 * bytes<HS>::tile + bytes<HS>::f32) + warp * 16 * SCORE_PITCH;

    int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int qblock = gridDim.x - 1 - blockIdx.x; /* the longest rows first */
    int q0 = qblock * ROWS, t = q0 + warp * 16 + r;
    size_t C3 = 3 * (size_t)C;
    const float *q = qkv + (size_t)b * T * C3 + (size_t)h * HS, *k = q + C, *v = q + 2 * C;
    const float scale = 1.0f / sqrtf((float)HS);
    load_tile<HS>(qs, q, C3, q0, T);

    float m = -INFINITY, l = 0.0f, o[HS / 2];
#pragma unroll
    for (int j = 0; j < HS / 2; j++) o[j] = 0.0f;
    for (int s0 = 0; s0 <= q0; s0 += ROWS) {
        __syncthreads(); /* the previous K and V are consumed */
        load_tile<HS>(ks, k, C3, s0, T);
        load_tile<HS>(vs, v, C3, s0, T);
        __syncthreads();
        rows_times_tile_t<HS>(sbuf, qs + warp * 16 * pitch<HS>::tile, ks);
        __syncwarp();
        /* online softmax over this tile's columns of row t: key s0 <= t is always among them, so the
         * new maximum is finite */
        float x[ROWS / 2], mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < ROWS / 2; j++) {
            int c = half * (ROWS / 2) + j;
            x[j] = s0 + c <= t ? scale * sbuf[r * pitch<HS>::f32 + c] : -INFINITY;
            mx = fmaxf(mx, x[j]);
        }
        mx = fmaxf(mx, __shfl_xor_sync(ATT_TC_FULL, mx, 1));
        float m_new = fmaxf(m, mx), alpha = expf(m - m_new), sum = 0.0f;
#pragma unroll
        for (int j = 0; j < ROWS / 2; j++) {
            float p = expf(x[j] - m_new);
            pbuf[r * SCORE_PITCH + half * (ROWS / 2) + j] = __float2bfloat16(p);
            sum += p;
        }
        sum += __shfl_xor_sync(ATT_TC_FULL, sum, 1);
        l = l * alpha + sum;
        m = m_new;
        __syncwarp();
        /* P V for the warp's 16 rows, through the fp32 buffer into the lanes' registers */
        frag_c pv[HS / 16];
#pragma unroll
        for (int n = 0; n < HS / 16; n++) wmma::fill_fragment(pv[n], 0.0f);
        scores_times_tile<HS>(pv, pbuf, vs);
#pragma unroll
        for (int n = 0; n < HS / 16; n++)
            wmma::store_matrix_sync(sbuf + n * 16, pv[n], pitch<HS>::f32, wmma::mem_row_major);
        __syncwarp();
#pragma unroll
        for (int j = 0; j < HS / 2; j++) o[j] = o[j] * alpha + sbuf[r * pitch<HS>::f32 + half * (HS / 2) + j];
    }
    if (t >= T) return;
    float *dst = out + ((size_t)b * T + t) * C + (size_t)h * HS + half * (HS / 2), inv = 1.0f / l;
#pragma unroll
    for (int j = 0; j < HS / 2; j++) dst[j] = o[j] * inv;
    if (half == 0) lse[(size_t)bh * T + t] = m + logf(l);
}

/* The per-warp pieces of the backward's shared memory. */
template <int HS> struct backward_smem {
    bf16 *own, *own2;     /* the block's 64 rows: Q and dO (dQ pass) or K and V (dK/dV pass) */
    bf16 *other, *other2; /* the current tile of the other operand's pair */
    float *s, *dp;        /* this warp's 16 x 64 scores and dP (pitch pitch<HS>::f32) */
    bf16 *p, *ds;         /* this warp's P and dS in bf16 (pitch SCORE_PITCH) */
    float *L, *D;         /* lse and delta of the 64 query rows of the current query tile */
    __device__ backward_smem(unsigned char *base, int warp) {
        const int tile = ROWS * pitch<HS>::tile, f32 = 16 * pitch<HS>::f32, sc = 16 * SCORE_PITCH;
        own = reinterpret_cast<bf16 *>(base);
        own2 = own + tile;
        other = own2 + tile;
        other2 = other + tile;
        float *f = reinterpret_cast<float *>(other2 + tile);
        s = f + warp * f32;
        dp = f + WARPS * f32 + warp * f32;
        bf16 *g = reinterpret_cast<bf16 *>(f + 2 * WARPS * f32);
        p = g + warp * sc;
        ds = g + WARPS * sc + warp * sc;
        L = reinterpret_cast<float *>(g + 2 * WARPS * sc);
        D = L + ROWS;
    }
};

/* grid (ceil(T / 64), B * NH), THREADS threads, bytes<HS>::backward of dynamic shared memory; a block
 * per 64 key rows s: dK = dS^T Q / sqrt(hs) and dV = P^T dO over the query rows t >= s, written to the
 * k and v parts of dqkv (B, T, 3C). lse and delta (B, NH, T). */
template <int HS>
__global__ void __launch_bounds__(THREADS) backward_dkv(float *dqkv, const float *dout, const float *qkv,
                                                        const float *lse, const float *delta, int T, int C, int NH) {
    extern __shared__ __align__(128) unsigned char att_tc_smem[];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
    backward_smem<HS> sm(att_tc_smem, warp);
    int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int kblock = gridDim.x - 1 - blockIdx.x; /* the fewest query tiles last */
    int k0 = kblock * ROWS, s = k0 + warp * 16 + r;
    size_t C3 = 3 * (size_t)C, base = (size_t)b * T * C3 + (size_t)h * HS;
    const float *q = qkv + base, *k = q + C, *v = q + 2 * C;
    const float *dO = dout + (size_t)b * T * C + (size_t)h * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    load_tile<HS>(sm.own, k, C3, k0, T);
    load_tile<HS>(sm.own2, v, C3, k0, T);

    frag_c dk[HS / 16], dv[HS / 16];
#pragma unroll
    for (int n = 0; n < HS / 16; n++) {
        wmma::fill_fragment(dk[n], 0.0f);
        wmma::fill_fragment(dv[n], 0.0f);
    }
    for (int t0 = k0; t0 < T; t0 += ROWS) {
        __syncthreads();
        load_tile<HS>(sm.other, q, C3, t0, T);
        load_tile<HS>(sm.other2, dO, C, t0, T);
        for (int i = threadIdx.x; i < ROWS; i += THREADS) {
            sm.L[i] = t0 + i < T ? lse[(size_t)bh * T + t0 + i] : 0.0f;
            sm.D[i] = t0 + i < T ? delta[(size_t)bh * T + t0 + i] : 0.0f;
        }
        __syncthreads();
        /* S^T (keys x queries) = K Q^T and dP^T = V dO^T for the warp's 16 keys */
        rows_times_tile_t<HS>(sm.s, sm.own + warp * 16 * pitch<HS>::tile, sm.other);
        rows_times_tile_t<HS>(sm.dp, sm.own2 + warp * 16 * pitch<HS>::tile, sm.other2);
        __syncwarp();
#pragma unroll
        for (int j = 0; j < ROWS / 2; j++) {
            int c = half * (ROWS / 2) + j, t = t0 + c, i = r * pitch<HS>::f32 + c;
            float p = t >= s && t < T ? expf(scale * sm.s[i] - sm.L[c]) : 0.0f;
            sm.p[r * SCORE_PITCH + c] = __float2bfloat16(p);
            sm.ds[r * SCORE_PITCH + c] = __float2bfloat16(p * (sm.dp[i] - sm.D[c]));
        }
        __syncwarp();
        scores_times_tile<HS>(dv, sm.p, sm.other2); /* dV += P^T dO */
        scores_times_tile<HS>(dk, sm.ds, sm.other); /* dK += dS^T Q */
    }
    int row0 = k0 + warp * 16;
    write_rows<HS>(dqkv + base + C, C3, row0, T, scale, dk, sm.s);
    write_rows<HS>(dqkv + base + 2 * (size_t)C, C3, row0, T, 1.0f, dv, sm.s);
}

/* grid (ceil(T / 64), B * NH), THREADS threads, bytes<HS>::backward of dynamic shared memory; a block
 * per 64 query rows t: dQ = dS K / sqrt(hs) over the key rows s <= t, written to the q part of dqkv. */
template <int HS>
__global__ void __launch_bounds__(THREADS) backward_dq(float *dqkv, const float *dout, const float *qkv,
                                                       const float *lse, const float *delta, int T, int C, int NH) {
    extern __shared__ __align__(128) unsigned char att_tc_smem[];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, r = lane / 2, half = lane % 2;
    backward_smem<HS> sm(att_tc_smem, warp);
    int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int qblock = gridDim.x - 1 - blockIdx.x;
    int q0 = qblock * ROWS, t = q0 + warp * 16 + r;
    size_t C3 = 3 * (size_t)C, base = (size_t)b * T * C3 + (size_t)h * HS;
    const float *q = qkv + base, *k = q + C, *v = q + 2 * C;
    const float *dO = dout + (size_t)b * T * C + (size_t)h * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    load_tile<HS>(sm.own, q, C3, q0, T);
    load_tile<HS>(sm.own2, dO, C, q0, T);
    float L = t < T ? lse[(size_t)bh * T + t] : 0.0f, D = t < T ? delta[(size_t)bh * T + t] : 0.0f;

    frag_c dq[HS / 16];
#pragma unroll
    for (int n = 0; n < HS / 16; n++) wmma::fill_fragment(dq[n], 0.0f);
    for (int s0 = 0; s0 <= q0; s0 += ROWS) {
        __syncthreads();
        load_tile<HS>(sm.other, k, C3, s0, T);
        load_tile<HS>(sm.other2, v, C3, s0, T);
        __syncthreads();
        /* S = Q K^T and dP = dO V^T for the warp's 16 queries */
        rows_times_tile_t<HS>(sm.s, sm.own + warp * 16 * pitch<HS>::tile, sm.other);
        rows_times_tile_t<HS>(sm.dp, sm.own2 + warp * 16 * pitch<HS>::tile, sm.other2);
        __syncwarp();
#pragma unroll
        for (int j = 0; j < ROWS / 2; j++) {
            int c = half * (ROWS / 2) + j, i = r * pitch<HS>::f32 + c;
            float p = s0 + c <= t ? expf(scale * sm.s[i] - L) : 0.0f;
            sm.ds[r * SCORE_PITCH + c] = __float2bfloat16(p * (sm.dp[i] - D));
        }
        __syncwarp();
        scores_times_tile<HS>(dq, sm.ds, sm.other); /* dQ += dS K */
    }
    write_rows<HS>(dqkv + base, C3, q0 + warp * 16, T, scale, dq, sm.s);
}

} /* namespace att_tc */

#endif
