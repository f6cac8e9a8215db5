/* Launches the SwiGLU kernels of swiglu.cuh. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/swiglu.cuh"

void anv_cuda_swiglu_forward(float *out, const float *inp, int N, int F) {
    size_t n = (size_t)N * F;
    if (n == 0) return;
    swiglu::forward<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(out, inp, N, F);
    ANV_CUDA_LAUNCHED("swiglu forward");
}

void anv_cuda_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F) {
    size_t n = (size_t)N * F;
    if (n == 0) return;
    swiglu::backward<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(dinp, inp, dout, N, F);
    ANV_CUDA_LAUNCHED("swiglu backward");
}
