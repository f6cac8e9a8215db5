/* Residual connections, element-wise. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

/* out (n) = a + b */
__global__ void residual_forward(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

/* da (n) += dout;  db (n) += dout */
__global__ void residual_backward(float *da, float *db, const float *dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float d = dout[i];
        da[i] += d;
        db[i] += d;
    }
}

void anv_cuda_residual_forward(float *out, const float *a, const float *b, size_t n) {
    if (n == 0) return;
    residual_forward<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(out, a, b, n);
    ANV_CUDA_LAUNCHED("residual forward");
}

void anv_cuda_residual_backward(float *da, float *db, const float *dout, size_t n) {
    if (n == 0) return;
    residual_backward<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(da, db, dout, n);
    ANV_CUDA_LAUNCHED("residual backward");
}
