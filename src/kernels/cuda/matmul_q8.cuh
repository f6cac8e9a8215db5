/* Inference with int8 weights (--weights q8), as the CPU's matmul_q8.c: the kernels, in a header so that
 * tests/gpu/test_cuda_emu.cc runs the same source on the CPU; matmul_q8.cu launches them. */
#ifndef ANVIL_KERNELS_CUDA_MATMUL_Q8_CUH
#define ANVIL_KERNELS_CUDA_MATMUL_Q8_CUH

#include "kernels/cuda/warp.cuh"

#include <stddef.h>
#include <stdint.h>

namespace q8 {

enum { BLOCK = 32, WARPS = 8 };

/* Grid-stride over the n / 32 blocks of x: q, d as kernel_list.h's quantize_q8 (the CPU's arithmetic:
 * d = amax / 127, q = round-to-nearest-even(x * (127 / amax))). */
__global__ void quantize(int8_t *q, float *d, const float *x, size_t blocks) {
    for (size_t b = (size_t)blockIdx.x * blockDim.x + threadIdx.x; b < blocks; b += (size_t)gridDim.x * blockDim.x) {
        const float *v = x + b * BLOCK;
        float amax = 0.0f;
        for (int i = 0; i < BLOCK; i++) amax = fmaxf(amax, fabsf(v[i]));
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        d[b] = amax / 127.0f;
        for (int i = 0; i < BLOCK; i++) q[b * BLOCK + i] = (int8_t)__float2int_rn(v[i] * inv);
    }
}

/* grid (ceil(OC / WARPS), N), a warp per output (n, o): lane l takes the blocks l, l + 32, ... of the
 * row, each d_w d_x times its exact integer dot product; the warp sums the lanes. */
__global__ void forward(float *out, const int8_t *xq, const float *xd, const int8_t *wq, const float *wd,
                        const float *bias, int IC, int OC) {
    int n = blockIdx.y, o = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32, blocks = IC / BLOCK;
    if (o >= OC) return; /* whole warps */
    const int8_t *w = wq + (size_t)o * IC, *x = xq + (size_t)n * IC;
    float sum = 0.0f;
    for (int b = lane; b < blocks; b += 32) {
        int dot = 0;
        for (int i = 0; i < BLOCK; i++) dot += (int)w[b * BLOCK + i] * (int)x[b * BLOCK + i];
        sum += (float)dot * (wd[(size_t)o * blocks + b] * xd[(size_t)n * blocks + b]);
    }
    sum = anv_warp_sum(sum);
    if (lane == 0) out[(size_t)n * OC + o] = sum + (bias ? bias[o] : 0.0f);
}

} /* namespace q8 */

#endif
