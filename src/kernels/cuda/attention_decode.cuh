/* Causal attention for inference with a KV cache (anv_attention_decode): the kernels, in a header so
 * that tests/gpu/test_cuda_emu.cc runs the same source on the CPU; attention.cu launches them.
 *
 * attend: a block per (new row i, query head h) of WARPS warps, reading key/value head h / (NH / NKV)
 * of the caches. Warp w takes the cached keys t = w, w + WARPS, ... <= pos + i; for each, the warp's
 * lanes hold the head dimensions lane, lane + 32, ... of q, k and v, a butterfly sum gives q . k on
 * every lane, and an online softmax (running max m and sum l, the output rescaled by e^(m_old - m_new)
 * as the max grows) accumulates p v. The warps' partial results (m, l, output) then meet in shared
 * memory, where warp 0 rescales them to the largest max and adds them in warp order: one owner and a
 * fixed order of additions per output, so results are reproducible. A decode step is one row, so
 * parallelism comes from the heads and the warps' share of the keys. */
#ifndef ANVIL_KERNELS_CUDA_ATTENTION_DECODE_CUH
#define ANVIL_KERNELS_CUDA_ATTENTION_DECODE_CUH

#ifndef ANVIL_CUDA_EMULATION
#include <cuda_runtime.h>
#endif
#include <stddef.h>

namespace att_dec {

enum { WARPS = 4, THREADS = WARPS * 32 };

/* The dynamic shared memory of attend<J>: per warp its m, l and 32 J output dimensions. */
constexpr size_t smem_bytes(int J) { return (size_t)WARPS * (2 + 32 * J) * sizeof(float); }

/* The kernels' dynamic shared memory (tests/gpu/cuda_emu.h defines it when emulated). */
#ifndef ANVIL_CUDA_EMULATION
extern __shared__ __align__(16) unsigned char att_dec_smem[];
#endif

/* Grid-stride over n KC: rows pos..pos+n-1 of kc and vc (KC = NKV hs floats each) = the keys and
 * values of qkv (n, C + 2 KC). */
__global__ void append_kv(float *kc, float *vc, const float *qkv, int pos, int n, int C, int KC) {
    size_t total = (size_t)n * KC, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += stride) {
        size_t i = idx / KC, c = idx % KC, src = i * (C + 2 * (size_t)KC) + C + c, dst = (pos + i) * KC + c;
        kc[dst] = qkv[src];
        vc[dst] = qkv[src + KC];
    }
}

__device__ inline float warp_sum(float v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* grid (n, NH), THREADS threads, smem_bytes(J) of dynamic shared memory; head size hs = C / NH <= 32 J.
 * out (n, C): new row i (position pos + i, its q in qkv (n, C + 2 NKV hs)) over cached rows 0..pos+i of
 * kc, vc (rows of NKV hs). */
template <int J>
__global__ void __launch_bounds__(THREADS)
    attend(float *out, const float *kc, const float *vc, const float *qkv, int pos, int C, int NH, int NKV) {
    float *partial = reinterpret_cast<float *>(att_dec_smem); /* (WARPS, 2 + 32 J): m, l, output */
    int i = blockIdx.x, h = blockIdx.y, hs = C / NH, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    size_t KC = (size_t)NKV * hs;
    const float *q = qkv + i * (C + 2 * KC) + (size_t)h * hs;
    const float *kh = kc + (size_t)(h / (NH / NKV)) * hs, *vh = vc + (size_t)(h / (NH / NKV)) * hs;
    float scale = 1.0f / sqrtf((float)hs), qr[J], acc[J], m = -INFINITY, l = 0.0f;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int d = lane + 32 * j;
        qr[j] = d < hs ? q[d] : 0.0f;
        acc[j] = 0.0f;
    }
    for (int t = warp; t <= pos + i; t += WARPS) {
        const float *k = kh + t * KC, *v = vh + t * KC;
        float dot = 0.0f;
#pragma unroll
        for (int j = 0; j < J; j++)
            if (lane + 32 * j < hs) dot += qr[j] * k[lane + 32 * j];
        float s = warp_sum(dot) * scale;
        float m_new = fmaxf(m, s), corr = expf(m - m_new), p = expf(s - m_new); /* corr = 0 at the first key */
        l = l * corr + p;
#pragma unroll
        for (int j = 0; j < J; j++)
            if (lane + 32 * j < hs) acc[j] = acc[j] * corr + p * v[lane + 32 * j];
        m = m_new;
    }
    float *mine = partial + (size_t)warp * (2 + 32 * J);
    if (lane == 0) {
        mine[0] = m;
        mine[1] = l;
    }
#pragma unroll
    for (int j = 0; j < J; j++) mine[2 + lane + 32 * j] = acc[j];
    __syncthreads();
    if (warp != 0) return;
    float M = -INFINITY, L = 0.0f, o[J];
    for (int w = 0; w < WARPS; w++) M = fmaxf(M, partial[(size_t)w * (2 + 32 * J)]);
#pragma unroll
    for (int j = 0; j < J; j++) o[j] = 0.0f;
    for (int w = 0; w < WARPS; w++) {
        const float *part = partial + (size_t)w * (2 + 32 * J);
        float c = part[0] == -INFINITY ? 0.0f : expf(part[0] - M); /* a warp without keys (pos + i < w) adds 0 */
        L += part[1] * c;
#pragma unroll
        for (int j = 0; j < J; j++) o[j] += part[2 + lane + 32 * j] * c;
    }
    float *dst = out + (size_t)i * C + (size_t)h * hs;
#pragma unroll
    for (int j = 0; j < J; j++)
        if (lane + 32 * j < hs) dst[lane + 32 * j] = o[j] / L;
}

} /* namespace att_dec */

#endif
