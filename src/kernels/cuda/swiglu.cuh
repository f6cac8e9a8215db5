/* SwiGLU, Llama's MLP activation, as the CPU's swiglu.c: the kernels, in a header so that
 * tests/gpu/test_cuda_emu.cc runs the same source on the CPU; swiglu.cu launches them. */
#ifndef ANVIL_KERNELS_CUDA_SWIGLU_CUH
#define ANVIL_KERNELS_CUDA_SWIGLU_CUH

#ifndef ANVIL_CUDA_EMULATION
#include <cuda_runtime.h>
#endif
#include <stddef.h>

namespace swiglu {

/* Grid-stride over (N, F): out (N, F) = silu(gate) * up, silu(x) = x / (1 + e^-x), from inp (N, 2F) =
 * gate | up per row. */
__global__ void forward(float *out, const float *inp, int N, int F) {
    size_t n = (size_t)N * F, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t j = i + i / F * F; /* the gate's index in inp (N, 2F) */
        float g = inp[j];
        out[i] = g / (1.0f + expf(-g)) * inp[j + F];
    }
}

/* Grid-stride over (N, F): dinp (N, 2F) = d gate | d up (overwritten) from dout (N, F); with
 * s = sigmoid(gate): d gate = dout * up * s (1 + gate (1 - s)),  d up = dout * gate * s. */
__global__ void backward(float *dinp, const float *inp, const float *dout, int N, int F) {
    size_t n = (size_t)N * F, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        size_t j = i + i / F * F; /* the gate's index in inp and dinp (N, 2F) */
        float g = inp[j], u = inp[j + F], d = dout[i];
        float s = 1.0f / (1.0f + expf(-g));
        dinp[j] = d * u * s * (1.0f + g * (1.0f - s));
        dinp[j + F] = d * g * s;
    }
}

} /* namespace swiglu */

#endif
