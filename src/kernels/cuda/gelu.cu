/* GELU, tanh approximation (GPT-2's "gelu_new"), element-wise as the CPU's gelu.c. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */

/* out (n) = 0.5 x (1 + tanh(k (x + 0.044715 x^3))) */
__global__ void gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

/* dinp (n) = gelu'(inp) dout; dinp may alias dout (each element is read before it is written). */
__global__ void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        float th = tanhf(GELU_K * (x + 0.044715f * x * x * x));
        float du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        float grad = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
        dinp[i] = grad * dout[i];
    }
}

void anv_cuda_gelu_forward(float *out, const float *inp, size_t n) {
    if (n == 0) return;
    gelu_forward<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(out, inp, n);
    ANV_CUDA_LAUNCHED("gelu forward");
}

void anv_cuda_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    if (n == 0) return;
    gelu_backward<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(dinp, inp, dout, n);
    ANV_CUDA_LAUNCHED("gelu backward");
}
