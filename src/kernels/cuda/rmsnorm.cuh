/* RMSNorm over the last axis (Llama), as the CPU's rmsnorm.c: the kernels, in a header so that
 * tests/gpu/test_cuda_emu.cc runs the same source on the CPU; rmsnorm.cu launches them. One warp per
 * row, the row's sums in double in a fixed order (lane-strided, then the warp butterfly). */
#ifndef ANVIL_KERNELS_CUDA_RMSNORM_CUH
#define ANVIL_KERNELS_CUDA_RMSNORM_CUH

#include "kernels/cuda/warp.cuh"

#include <stddef.h>

namespace rms {

enum { WARPS = 8, THREADS = WARPS * 32 };

/* grid ceil(N / WARPS), THREADS threads: out (N, C) = inp * rstd * w, rstd (N) (may be NULL) =
 * 1 / sqrt(mean(inp^2) + eps), from inp (N, C), w (C). */
__global__ void forward(float *out, float *rstd, const float *inp, const float *w, float eps, int N, int C) {
    int row = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    double ss = 0;
    for (int c = lane; c < C; c += 32) ss += (double)x[c] * x[c];
    float rs = (float)(1.0 / sqrt(anv_warp_sum(ss) / C + eps));
    float *o = out + (size_t)row * C;
    for (int c = lane; c < C; c += 32) o[c] = x[c] * rs * w[c];
    if (rstd && lane == 0) rstd[row] = rs;
}

/* grid ceil(N / WARPS), THREADS threads: dinp (N, C) += rstd (g - xhat mean(g xhat)) with g = dout * w,
 * xhat = inp * rstd. */
__global__ void backward_dinp(float *dinp, const float *dout, const float *inp, const float *w, const float *rstd,
                              int N, int C) {
    int row = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C, *d = dout + (size_t)row * C;
    float rs = rstd[row];
    double sgx = 0;
    for (int c = lane; c < C; c += 32) sgx += (double)(d[c] * w[c]) * (x[c] * rs);
    float mgx = (float)(anv_warp_sum(sgx) / C);
    float *di = dinp + (size_t)row * C;
    for (int c = lane; c < C; c += 32) di[c] += rs * (d[c] * w[c] - x[c] * rs * mgx);
}

/* value(n, c) = dout * xhat, the terms of dw's column sums. */
struct dw_term {
    const float *dout, *inp, *rstd;
    int C;
    __device__ double operator()(int n, int c) const {
        size_t i = (size_t)n * C + c;
        return dout[i] * (inp[i] * rstd[n]);
    }
};

} /* namespace rms */

#endif
