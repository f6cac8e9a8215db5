/* Causal attention on tensor cores, for the bf16 precision: the kernels of attention_tc.cu, in a header
 * of their own so that tests/gpu/test_cuda_emu.cc can also run them on the CPU (through
 * tests/gpu/cuda_emu.h, which emulates the few CUDA features used here).
 *
 * The maths is attention.cuh's (S = Q K^T / sqrt(hs), P = softmax(S) causal and within a packed row's
 * sequences, O = P V, lse per row;
 * backward with D_t = sum_j dO_tj O_tj: dS = P * (dO V^T - D), dQ = dS K / sqrt(hs),
 * dK = dS^T Q / sqrt(hs), dV = P^T dO), with every product on the tensor cores: mma.sync m16n8k16,
 * bf16 inputs, fp32 accumulation. Q, K, V, dO are rounded to bf16 (nearest even) on their way into
 * shared memory, P and dS on their way into the second product of each pair, as in PyTorch's bf16 flash
 * attention. Softmax, its running max and sum, lse and the outputs stay fp32. Heads are grouped as in
 * attention.cuh: qkv rows (C + 2 KC, KC = NKV HS) hold NH query heads and NKV key/value heads, query
 * head h reading key/value head h / (NH / NKV).
 *
 * Fragments (PTX ISA, "matrix fragments for mma.m16n8k16"): lane = 4 g + q (g = lane / 4, q = lane % 4)
 * holds, as pairs of bf16 packed in 32 bits (the lower index in the low half):
 *   A (16 x 16): a[0] = A[g][2q, 2q+1], a[1] = A[g+8][2q, 2q+1], a[2] = A[g][2q+8, +9], a[3] = A[g+8][2q+8, +9]
 *   B (16 x 8):  b[0] = B[2q, 2q+1][g],  b[1] = B[2q+8, 2q+9][g]
 *   C (16 x 8, fp32): c[0], c[1] = C[g][2q, 2q+1], c[2], c[3] = C[g+8][2q, 2q+1]
 * so a B operand whose columns are rows of a row-major matrix X (B = X^T) reads two adjacent elements
 * of X per register, and the accumulators of two adjacent 16 x 8 score tiles are, element for element,
 * the A operand of the 16 x 16 probability tile that multiplies next (FlashAttention-2's register
 * reuse): scores and probabilities never leave the registers. Products whose B is not a transpose
 * (P V, dS K, P^T dO, dS^T Q) read a transposed copy of the tile, written so when it is staged.
 *
 * Layout. A block of 4 warps owns 64 rows (query rows in the forward and the dQ pass, key rows in the
 * dK/dV pass), 16 per warp, and walks over tiles of 64 rows of the other operand staged in shared
 * memory as bf16 (row pitch HS + 8: the 8 rows g of a fragment load start 4 banks apart, so the loads
 * are free of bank conflicts). Like attention.cuh: dQ and dK/dV are separate passes over disjoint parts
 * of dqkv, a dK/dV block sums its group's query heads in order, each output element has one owner and
 * a fixed order of additions, so results are bitwise reproducible (no atomics). HS (the head size) is
 * 32, 64 or 128; qkv rows and heads are 16-byte aligned because both are multiples of HS floats. */
#ifndef ANVIL_KERNELS_CUDA_ATTENTION_TC_CUH
#define ANVIL_KERNELS_CUDA_ATTENTION_TC_CUH

#ifndef ANVIL_CUDA_EMULATION
#include <cuda_bf16.h>
#endif

namespace att_tc {

typedef __nv_bfloat16 bf16;
typedef unsigned int u32;

enum {
    ROWS = 64, /* rows of a block, and of a tile of the other operand */
    WARPS = 4, /* 16 rows each */
    THREADS = WARPS * 32,
    TPITCH = ROWS + 8 /* row pitch of a transposed tile (HS rows of 64) */
};
#define ATT_TC_FULL 0xffffffffu

/* Sizes in bf16 elements of a staged tile (ROWS x HS, pitch HS + 8) and of a transposed one
 * (HS x ROWS, pitch TPITCH); and each kernel's dynamic shared memory in bytes. */
template <int HS> struct dims {
    static const int pitch = HS + 8;
    static const int tile = ROWS * pitch;
    static const int ttile = HS * TPITCH;
    static const int forward_bytes = (2 * tile + ttile) * 2;                /* Q, K; V^T */
    static const int dq_bytes = (4 * tile + ttile) * 2;                     /* Q, dO, K, V; K^T */
    static const int dkv_bytes = (4 * tile + 2 * ttile) * 2 + 3 * ROWS * 4; /* K, V, Q, dO; Q^T, dO^T; L, D, starts */
};

/* The kernels' dynamic shared memory (tests/gpu/cuda_emu.h defines it when emulated). */
#ifndef ANVIL_CUDA_EMULATION
extern __shared__ __align__(128) unsigned char att_tc_smem[];
#endif

__device__ inline u32 load_pair(const bf16 *x) {
#ifdef ANVIL_CUDA_EMULATION
    u32 v;
    memcpy(&v, x, 4);
    return v;
#else
    return *reinterpret_cast<const u32 *>(x);
#endif
}

__device__ inline u32 pack_pair(float lo, float hi) {
    return (u32)__bfloat16_as_ushort(__float2bfloat16(lo)) | (u32)__bfloat16_as_ushort(__float2bfloat16(hi)) << 16;
}

/* c (16 x 8) += A (16 x 16) B (16 x 8), fragments as in the header comment. */
__device__ inline void mma(float c[4], const u32 a[4], const u32 b[2]) {
#ifdef ANVIL_CUDA_EMULATION
    emu_mma_m16n8k16_bf16(c, a, b);
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

/* A fragment: rows r0 .. r0 + 15 and columns k0 .. k0 + 15 of the row-major bf16 matrix m (pitch p). */
__device__ inline void frag_a(u32 a[4], const bf16 *m, int p, int r0, int k0) {
    int lane = threadIdx.x % 32;
    const bf16 *x = m + (r0 + lane / 4) * p + k0 + 2 * (lane % 4);
    a[0] = load_pair(x);
    a[1] = load_pair(x + 8 * p);
    a[2] = load_pair(x + 8);
    a[3] = load_pair(x + 8 * p + 8);
}

/* B fragment whose column j is row n0 + j of the row-major bf16 matrix m (pitch p), from column k0:
 * B[k][j] = m[n0 + j][k0 + k]. */
__device__ inline void frag_bt(u32 b[2], const bf16 *m, int p, int n0, int k0) {
    int lane = threadIdx.x % 32;
    const bf16 *x = m + (n0 + lane / 4) * p + k0 + 2 * (lane % 4);
    b[0] = load_pair(x);
    b[1] = load_pair(x + 8);
}

/* The A fragments of a 16 x 64 probability tile from the accumulators of its eight 16 x 8 tiles:
 * a[kk] covers columns 16 kk .. 16 kk + 15, i.e. accumulator tiles 2 kk and 2 kk + 1. */
__device__ inline void scores_to_a(u32 a[ROWS / 16][4], const float s[ROWS / 8][4]) {
#pragma unroll
    for (int kk = 0; kk < ROWS / 16; kk++) {
        a[kk][0] = pack_pair(s[2 * kk][0], s[2 * kk][1]);
        a[kk][1] = pack_pair(s[2 * kk][2], s[2 * kk][3]);
        a[kk][2] = pack_pair(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[kk][3] = pack_pair(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
}

/* Stages rows r0 .. r0 + ROWS - 1 of src (row stride ld floats, HS columns), rounded to bf16, row-major
 * into rows_dst (pitch HS + 8) and/or transposed into t_dst (pitch TPITCH); either may be NULL. Rows
 * at or past `rows` are zero. */
template <int HS>
__device__ inline void load_tile(bf16 *rows_dst, bf16 *t_dst, const float *src, size_t ld, int r0, int rows) {
    const int per_row = HS / 4;
    for (int i = threadIdx.x; i < ROWS * per_row; i += THREADS) {
        int r = i / per_row, c = (i % per_row) * 4;
        float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r0 + r < rows) x = *reinterpret_cast<const float4 *>(src + (size_t)(r0 + r) * ld + c);
        bf16 v[4] = {__float2bfloat16(x.x), __float2bfloat16(x.y), __float2bfloat16(x.z), __float2bfloat16(x.w)};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            if (rows_dst) rows_dst[r * dims<HS>::pitch + c + j] = v[j];
            if (t_dst) t_dst[(c + j) * TPITCH + r] = v[j];
        }
    }
}

/* c[n] (16 x 64 as eight 16 x 8 tiles) = A B^T: A the 16 x HS rows r0.. of the staged tile a_tile, B
 * a whole staged tile (64 x HS). */
template <int HS>
__device__ inline void rows_times_tile_t(float c[ROWS / 8][4], const bf16 *a_tile, int r0, const bf16 *b_tile) {
#pragma unroll
    for (int n = 0; n < ROWS / 8; n++) c[n][0] = c[n][1] = c[n][2] = c[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < HS / 16; kk++) {
        u32 a[4];
        frag_a(a, a_tile, dims<HS>::pitch, r0, kk * 16);
#pragma unroll
        for (int n = 0; n < ROWS / 8; n++) {
            u32 b[2];
            frag_bt(b, b_tile, dims<HS>::pitch, n * 8, kk * 16);
            mma(c[n], a, b);
        }
    }
}

/* acc[n] (16 x HS as 16 x 8 tiles) += P B: P the 16 x 64 probability tile in A fragments, B (64 x HS)
 * given transposed (HS x 64, pitch TPITCH). */
template <int HS>
__device__ inline void scores_times_tile(float acc[HS / 8][4], const u32 p[ROWS / 16][4], const bf16 *bt) {
#pragma unroll
    for (int kk = 0; kk < ROWS / 16; kk++)
#pragma unroll
        for (int n = 0; n < HS / 8; n++) {
            u32 b[2];
            frag_bt(b, bt, TPITCH, n * 8, kk * 16);
            mma(acc[n], p[kk], b);
        }
}

/* Writes scale * acc (the warp's 16 x HS result; element i of tile n is row g + 8 (i / 2), column
 * 8 n + 2 q + i % 2) to dst (row stride ld floats), rows row0 .. row0 + 15, those below `rows`. */
template <int HS>
__device__ inline void write_rows(float *dst, size_t ld, int row0, int rows, float scale, const float acc[HS / 8][4]) {
    int lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        int r = row0 + g + 8 * half;
        if (r >= rows) continue;
        float *d = dst + (size_t)r * ld + 2 * q;
#pragma unroll
        for (int n = 0; n < HS / 8; n++) {
            d[8 * n] = scale * acc[n][2 * half];
            d[8 * n + 1] = scale * acc[n][2 * half + 1];
        }
    }
}

/* The first key of row t's sequence (st: the row's starts, or NULL; packed rows, kernel_list.h). */
__device__ inline int seq_start(const int32_t *st, int t) { return st ? st[t] : 0; }

/* The first key of each of a lane's two rows (0 past the end). */
__device__ inline void row_starts(int lo[2], const int32_t *st, const int row[2], int T) {
    for (int r = 0; r < 2; r++) lo[r] = row[r] < T ? seq_start(st, row[r]) : 0;
}

/* grid (ceil(T / 64), B * NH), THREADS threads, dims<HS>::forward_bytes of dynamic shared memory:
 * out (B, T, C) and lse (B, NH, T) from qkv (B, T, C + 2 NKV HS). */
template <int HS>
__global__ void __launch_bounds__(THREADS)
    forward(float *out, float *lse, const float *qkv, const int32_t *starts, int T, int C, int NH, int NKV) {
    bf16 *qs = reinterpret_cast<bf16 *>(att_tc_smem), *ks = qs + dims<HS>::tile, *vt = ks + dims<HS>::tile;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
    int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int q0 = (gridDim.x - 1 - blockIdx.x) * ROWS; /* the longest rows first */
    int row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    size_t KC = (size_t)NKV * HS, C3 = C + 2 * KC, row0 = (size_t)b * T * C3;
    const float *qp = qkv + row0 + (size_t)h * HS;
    const float *kp = qkv + row0 + C + (size_t)(h / (NH / NKV)) * HS, *vp = kp + KC;
    const float scale = 1.0f / sqrtf((float)HS);
    const int32_t *st = starts ? starts + (size_t)b * T : nullptr;
    int lo[2];
    row_starts(lo, st, row, T);
    load_tile<HS>(qs, nullptr, qp, C3, q0, T);

    /* per row (g, g + 8): running max m and this lane's part of the running sum l */
    float o[HS / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < HS / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    for (int s0 = seq_start(st, q0) / ROWS * ROWS; s0 <= q0; s0 += ROWS) {
        __syncthreads(); /* the previous K and V are consumed (and Q is staged) */
        load_tile<HS>(ks, nullptr, kp, C3, s0, T);
        load_tile<HS>(nullptr, vt, vp, C3, s0, T);
        __syncthreads();
        float s[ROWS / 8][4];
        rows_times_tile_t<HS>(s, qs, warp * 16, ks);
        /* online softmax; a row may have no key in this tile yet (packed rows), so a maximum still -inf
         * counts as 0 when exponentiating, which turns the row's scores into zeros */
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < ROWS / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int key = s0 + 8 * n + 2 * q + i % 2, r = i / 2;
                s[n][i] = key >= lo[r] && key <= row[r] ? scale * s[n][i] : -INFINITY;
                mx[r] = fmaxf(mx[r], s[n][i]);
            }
        float alpha[2], m_exp[2];
#pragma unroll
        for (int r = 0; r < 2; r++) { /* the row's four lanes are q = 0..3 of the same g */
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(ATT_TC_FULL, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(ATT_TC_FULL, mx[r], 2));
            float m_new = fmaxf(m[r], mx[r]);
            m_exp[r] = m_new == -INFINITY ? 0.0f : m_new;
            alpha[r] = expf(m[r] - m_exp[r]);
            m[r] = m_new;
            l[r] *= alpha[r];
        }
#pragma unroll
        for (int n = 0; n < ROWS / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                s[n][i] = expf(s[n][i] - m_exp[i / 2]);
                l[i / 2] += s[n][i];
            }
#pragma unroll
        for (int n = 0; n < HS / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) o[n][i] *= alpha[i / 2];
        u32 p[ROWS / 16][4];
        scores_to_a(p, s);
        scores_times_tile<HS>(o, p, vt);
    }
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(ATT_TC_FULL, l[r], 1);
        l[r] += __shfl_xor_sync(ATT_TC_FULL, l[r], 2);
        inv[r] = 1.0f / l[r];
        if (q == 0 && row[r] < T) lse[(size_t)bh * T + row[r]] = m[r] + logf(l[r]);
    }
#pragma unroll
    for (int n = 0; n < HS / 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) o[n][i] *= inv[i / 2];
    write_rows<HS>(out + (size_t)b * T * C + (size_t)h * HS, C, q0 + warp * 16, T, 1.0f, o);
}

/* grid (ceil(T / 64), B * NH), THREADS threads, dims<HS>::dq_bytes of dynamic shared memory; a block per
 * 64 query rows t: dQ = dS K / sqrt(hs) over the key rows s <= t, written to the q part of dqkv
 * (B, T, C + 2 NKV HS). lse and delta (B, NH, T). */
template <int HS>
__global__ void __launch_bounds__(THREADS)
    backward_dq(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta,
                const int32_t *starts, int T, int C, int NH, int NKV) {
    bf16 *qs = reinterpret_cast<bf16 *>(att_tc_smem), *dos = qs + dims<HS>::tile, *ks = dos + dims<HS>::tile,
         *vs = ks + dims<HS>::tile, *kt = vs + dims<HS>::tile;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
    int bh = blockIdx.y, b = bh / NH, h = bh % NH;
    int q0 = (gridDim.x - 1 - blockIdx.x) * ROWS;
    int row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    size_t KC = (size_t)NKV * HS, C3 = C + 2 * KC, row0 = (size_t)b * T * C3, base = row0 + (size_t)h * HS;
    const float *qp = qkv + base;
    const float *kp = qkv + row0 + C + (size_t)(h / (NH / NKV)) * HS, *vp = kp + KC;
    const float *dop = dout + (size_t)b * T * C + (size_t)h * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int32_t *st = starts ? starts + (size_t)b * T : nullptr;
    int lo[2];
    row_starts(lo, st, row, T);
    load_tile<HS>(qs, nullptr, qp, C3, q0, T);
    load_tile<HS>(dos, nullptr, dop, C, q0, T);
    float L[2], D[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        L[r] = row[r] < T ? lse[(size_t)bh * T + row[r]] : 0.0f;
        D[r] = row[r] < T ? delta[(size_t)bh * T + row[r]] : 0.0f;
    }

    float dq[HS / 8][4];
#pragma unroll
    for (int n = 0; n < HS / 8; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
    for (int s0 = seq_start(st, q0) / ROWS * ROWS; s0 <= q0; s0 += ROWS) {
        __syncthreads();
        load_tile<HS>(ks, kt, kp, C3, s0, T);
        load_tile<HS>(vs, nullptr, vp, C3, s0, T);
        __syncthreads();
        float s[ROWS / 8][4], dp[ROWS / 8][4];
        rows_times_tile_t<HS>(s, qs, warp * 16, ks);   /* S = Q K^T */
        rows_times_tile_t<HS>(dp, dos, warp * 16, vs); /* dP = dO V^T */
#pragma unroll
        for (int n = 0; n < ROWS / 8; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int key = s0 + 8 * n + 2 * q + i % 2, r = i / 2;
                float p = key >= lo[r] && key <= row[r] ? expf(scale * s[n][i] - L[r]) : 0.0f;
                s[n][i] = p * (dp[n][i] - D[r]); /* dS */
            }
        u32 ds[ROWS / 16][4];
        scores_to_a(ds, s);
        scores_times_tile<HS>(dq, ds, kt); /* dQ += dS K */
    }
    write_rows<HS>(dqkv + base, C3, q0 + warp * 16, T, scale, dq);
}

/* grid (ceil(T / 64), B * NKV), THREADS threads, dims<HS>::dkv_bytes of dynamic shared memory; a block per
 * 64 key rows s of key/value head kvh: dK = dS^T Q / sqrt(hs) and dV = P^T dO over the query rows t >= s
 * of s's sequence, of each query head of kvh's group, the heads in order, written to the k and v parts
 * of dqkv (B, T, C + 2 NKV HS). */
template <int HS>
__global__ void __launch_bounds__(THREADS)
    backward_dkv(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta,
                 const int32_t *starts, int T, int C, int NH, int NKV) {
    bf16 *ks = reinterpret_cast<bf16 *>(att_tc_smem), *vs = ks + dims<HS>::tile, *qs = vs + dims<HS>::tile,
         *dos = qs + dims<HS>::tile, *qt = dos + dims<HS>::tile, *dot = qt + dims<HS>::ttile;
    float *Ls = reinterpret_cast<float *>(dot + dims<HS>::ttile), *Ds = Ls + ROWS;
    int *Ss = reinterpret_cast<int *>(Ds + ROWS);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, q = lane % 4;
    int b = blockIdx.y / NKV, kvh = blockIdx.y % NKV, group = NH / NKV;
    int k0 = (gridDim.x - 1 - blockIdx.x) * ROWS; /* the fewest query tiles last */
    int key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};
    size_t KC = (size_t)NKV * HS, C3 = C + 2 * KC, row0 = (size_t)b * T * C3;
    const float *kp = qkv + row0 + C + (size_t)kvh * HS, *vp = kp + KC;
    const float scale = 1.0f / sqrtf((float)HS);
    const int32_t *st = starts ? starts + (size_t)b * T : nullptr;
    load_tile<HS>(ks, nullptr, kp, C3, k0, T);
    load_tile<HS>(vs, nullptr, vp, C3, k0, T);

    float dk[HS / 8][4], dv[HS / 8][4];
#pragma unroll
    for (int n = 0; n < HS / 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) dk[n][i] = dv[n][i] = 0.0f;
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        const float *qp = qkv + row0 + (size_t)h * HS, *dop = dout + (size_t)b * T * C + (size_t)h * HS;
        const float *L = lse + ((size_t)b * NH + h) * T, *D = delta + ((size_t)b * NH + h) * T;
        /* query tiles up to the first whose first row starts after the block's keys */
        for (int t0 = k0; t0 < T && seq_start(st, t0) < k0 + ROWS; t0 += ROWS) {
            __syncthreads();
            load_tile<HS>(qs, qt, qp, C3, t0, T);
            load_tile<HS>(dos, dot, dop, C, t0, T);
            for (int i = threadIdx.x; i < ROWS; i += THREADS) {
                Ls[i] = t0 + i < T ? L[t0 + i] : 0.0f;
                Ds[i] = t0 + i < T ? D[t0 + i] : 0.0f;
                Ss[i] = t0 + i < T ? seq_start(st, t0 + i) : T;
            }
            __syncthreads();
            float pt[ROWS / 8][4], dpt[ROWS / 8][4];
            rows_times_tile_t<HS>(pt, ks, warp * 16, qs);   /* S^T = K Q^T (keys x queries) */
            rows_times_tile_t<HS>(dpt, vs, warp * 16, dos); /* dP^T = V dO^T */
#pragma unroll
            for (int n = 0; n < ROWS / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    int c = 8 * n + 2 * q + i % 2, t = t0 + c;
                    int k = key[i / 2];
                    float p = t >= k && t < T && Ss[c] <= k ? expf(scale * pt[n][i] - Ls[c]) : 0.0f;
                    pt[n][i] = p;
                    dpt[n][i] = p * (dpt[n][i] - Ds[c]); /* dS^T */
                }
            u32 pa[ROWS / 16][4], dsa[ROWS / 16][4];
            scores_to_a(pa, pt);
            scores_to_a(dsa, dpt);
            scores_times_tile<HS>(dv, pa, dot); /* dV += P^T dO */
            scores_times_tile<HS>(dk, dsa, qt); /* dK += dS^T Q */
        }
    }
    write_rows<HS>(dqkv + row0 + C + (size_t)kvh * HS, C3, k0 + warp * 16, T, scale, dk);
    write_rows<HS>(dqkv + row0 + C + KC + (size_t)kvh * HS, C3, k0 + warp * 16, T, 1.0f, dv);
}

} /* namespace att_tc */

#endif
