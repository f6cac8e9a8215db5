/* Deterministic reductions (internal, C++): a block-wide sum and max, and the sum in double of a
 * functor over n elements, returned to the host. Every sum has a fixed order (lane-strided, then the
 * warp butterfly, then the warps in order; blocks own fixed slices and their partials are added in
 * block order), so the bits never vary from run to run. */
#ifndef ANVIL_KERNELS_CUDA_REDUCE_CUH
#define ANVIL_KERNELS_CUDA_REDUCE_CUH

#include "kernels/cuda/cuda_common.h"

#include <math.h>

/* The sum (or max) of v over the block (blockDim.x a multiple of 32, at most 1024), returned to every
 * thread; `shared` holds 32 values. Contains __syncthreads: every thread of the block must call it. */
template <class T, class Op> __device__ T anv_block_reduce(T v, T *shared, Op op) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    T total = shared[0];
    for (int w = 1; w < warps; w++) total = op(total, shared[w]);
    return total;
}

struct anv_op_add {
    template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct anv_op_max {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

enum { REDUCE_BLOCKS = 256, REDUCE_THREADS = 256 };

/* part[block] = sum of value(i) over the block's slice of [0, n). */
template <class F> __global__ void reduce_partials(double *part, size_t n, F value) {
    __shared__ double shared[32];
    size_t per = (n + REDUCE_BLOCKS - 1) / REDUCE_BLOCKS, a = blockIdx.x * per, b = a + per < n ? a + per : n;
    double acc = 0;
    for (size_t i = a + threadIdx.x; i < b; i += REDUCE_THREADS) acc += value(i);
    acc = anv_block_reduce(acc, shared, anv_op_add());
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

/* part[REDUCE_BLOCKS] = the partials added in block order. */
static __global__ void reduce_finish(double *part) {
    double t = 0;
    for (int k = 0; k < REDUCE_BLOCKS; k++) t += part[k];
    part[REDUCE_BLOCKS] = t;
}

/* The sum of value(i) for i in [0, n), after waiting for the device; NaN (logged) on a CUDA error. */
template <class F> double anv_cuda_reduce(size_t n, F value, const char *what) {
    double *part = (double *)anv_cuda_scratch(sizeof(double) * (REDUCE_BLOCKS + 1), what);
    if (!part) return NAN;
    cudaStream_t st = anv_cuda_stream();
    reduce_partials<<<REDUCE_BLOCKS, REDUCE_THREADS, 0, st>>>(part, n, value);
    reduce_finish<<<1, 1, 0, st>>>(part);
    double total = NAN;
    if (anv_cuda_check(cudaGetLastError(), what) != 0 ||
        anv_cuda_check(cudaMemcpyAsync(&total, part + REDUCE_BLOCKS, sizeof total, cudaMemcpyDeviceToHost, st), what) !=
            0 ||
        anv_cuda_check(cudaStreamSynchronize(st), what) != 0) {
        anv_log(ANV_LOG_WARN, "%s", anv_last_error());
        return NAN;
    }
    return total;
}

#endif
