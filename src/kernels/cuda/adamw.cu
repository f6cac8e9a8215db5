/* Launches the AdamW kernel of adamw.cuh: every segment of a parameter block in one launch. */
#include "kernels/cuda/adamw.cuh"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

void anv_cuda_adamw_update(float *p, const float *g, float *m, float *v, size_t lo, size_t n,
                           const anv_adamw_segments_t *segs, float lr, float beta1, float beta2, float eps, float wd,
                           float bc1, float bc2_sqrt) {
    if (n == 0 || segs->count == 0) return;
    adamw::update<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(
        p, g, m, v, lo, n, segs->count, segs->start, segs->end, segs->decay, lr, beta1, beta2, eps, wd, bc1, bc2_sqrt);
    ANV_CUDA_LAUNCHED("adamw update");
}
