/* The AdamW update of a parameter block's segments (anv_adamw_update in kernels.h): the kernel, in a
 * header so that tests/gpu/test_cuda_emu.cc runs the same source on the CPU; adamw.cu launches it. */
#ifndef ANVIL_KERNELS_CUDA_ADAMW_CUH
#define ANVIL_KERNELS_CUDA_ADAMW_CUH

#include <stddef.h>

namespace adamw {

/* The first segment whose end is past float gi, or count if none. */
__device__ inline int segment_after(const size_t *end, int count, size_t gi) {
    int lo = 0, hi = count;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (end[mid] > gi)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Grid-stride over the floats i < n of the window that starts at float lo of the block. A thread's
 * floats increase, so after one binary search its segment only moves forward. */
__global__ void update(float *p, const float *g, float *m, float *v, size_t lo, size_t n, int count,
                       const size_t *start, const size_t *end, const unsigned char *decay, float lr, float beta1,
                       float beta2, float eps, float wd, float bc1, float bc2_sqrt) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    int s = i < n ? segment_after(end, count, lo + i) : count;
    for (; i < n; i += stride) {
        while (s < count && end[s] <= lo + i) s++;
        if (s == count) return;          /* past the last segment: so are this thread's later floats */
        if (lo + i < start[s]) continue; /* between two tensors */
        float wds = decay[s] ? wd : 0.0f;
        float gi = g[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] -= lr * (mhat / denom + wds * p[i]);
    }
}

} /* namespace adamw */

#endif
