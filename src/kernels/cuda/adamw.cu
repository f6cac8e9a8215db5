/* The AdamW update, element-wise as the CPU's adamw.c (kernels.h gives the formula). The caller
 * passes contiguous ranges, so one launch per call suffices. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

/* p, m, v (n) updated from g (n). */
__global__ void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                             float eps, float wd, float bc1, float bc2_sqrt) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] -= lr * (mhat / denom + wd * p[i]);
    }
}

void anv_cuda_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                           float eps, float wd, float bc1, float bc2_sqrt) {
    if (n == 0) return;
    adamw_update<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(p, g, m, v, n, lr, beta1, beta2, eps,
                                                                                 wd, bc1, bc2_sqrt);
    ANV_CUDA_LAUNCHED("adamw update");
}
