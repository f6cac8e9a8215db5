/* Launches the RMSNorm kernels of rmsnorm.cuh; dw by the deterministic column sums of colsum.cuh (no
 * atomics). */
#include "kernels/cuda/colsum.cuh"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/rmsnorm.cuh"

void anv_cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, float eps, int N, int C) {
    if (N <= 0 || C <= 0) return;
    unsigned blocks = (N + rms::WARPS - 1) / rms::WARPS;
    rms::forward<<<blocks, rms::THREADS, 0, anv_cuda_stream()>>>(out, rstd, inp, w, eps, N, C);
    ANV_CUDA_LAUNCHED("rmsnorm forward");
}

void anv_cuda_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                               const float *rstd, int N, int C) {
    if (N <= 0 || C <= 0) return;
    unsigned blocks = (N + rms::WARPS - 1) / rms::WARPS;
    rms::backward_dinp<<<blocks, rms::THREADS, 0, anv_cuda_stream()>>>(dinp, dout, inp, w, rstd, N, C);
    ANV_CUDA_LAUNCHED("rmsnorm backward");
    if (dw) anv_cuda_colsum(dw, N, C, rms::dw_term{dout, inp, rstd, C}, "rmsnorm backward dw");
}
