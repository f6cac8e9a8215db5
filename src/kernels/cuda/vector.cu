/* Vector kernels: fill, scale, scaled add, dropout (element-wise) and the sum of squares (reduce.cuh:
 * fixed order, in double, so the same bits on every run). */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/dropout_mask.h"

/* x (n) = value */
__global__ void fill(float *x, float value, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = value;
}

/* dst (n) = scale src (n); dst may be src */
__global__ void scale_into(float *dst, const float *src, float scale, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = scale * src[i];
}

/* dst (n) += scale src (n) */
__global__ void add_scaled(float *dst, const float *src, float scale, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] += scale * src[i];
}

/* out (n) = or += the kept elements of inp, scaled (dropout_mask.h) */
__global__ void dropout(float *out, const float *inp, size_t n, uint32_t threshold, float scale, uint64_t seed,
                        int accumulate) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = anv_dropout_keep(seed, i, threshold) ? scale * inp[i] : 0.0f;
        out[i] = accumulate ? out[i] + v : v;
    }
}

void anv_cuda_fill(float *x, float value, size_t n) {
    if (n == 0) return;
    fill<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(x, value, n);
    ANV_CUDA_LAUNCHED("fill");
}

void anv_cuda_scale_into(float *dst, const float *src, float scale, size_t n) {
    if (n == 0) return;
    scale_into<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(dst, src, scale, n);
    ANV_CUDA_LAUNCHED("scale");
}

void anv_cuda_add_scaled(float *dst, const float *src, float scale, size_t n) {
    if (n == 0) return;
    add_scaled<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(dst, src, scale, n);
    ANV_CUDA_LAUNCHED("add scaled");
}

void anv_cuda_dropout(float *out, const float *inp, size_t n, float p, uint64_t seed, int accumulate) {
    if (n == 0) return;
    dropout<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(out, inp, n, anv_dropout_threshold(p),
                                                                            1.0f / (1.0f - p), seed, accumulate);
    ANV_CUDA_LAUNCHED("dropout");
}

struct square_value {
    const float *x;
    __device__ double operator()(size_t i) const { return (double)x[i] * x[i]; }
};

double anv_cuda_sumsq(const float *x, size_t n) {
    if (n == 0) return 0;
    return anv_cuda_reduce(n, square_value{x}, "sum of squares");
}
