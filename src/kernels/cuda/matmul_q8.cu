/* Launches the int8-weight kernels of matmul_q8.cuh: the rows of inp are quantized into the backend's
 * scratch, then multiplied. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/matmul_q8.cuh"

void anv_cuda_quantize_q8(int8_t *q, float *d, const float *x, size_t n) {
    size_t blocks = n / q8::BLOCK;
    if (blocks == 0) return;
    q8::quantize<<<anv_cuda_blocks(blocks), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(q, d, x, blocks);
    ANV_CUDA_LAUNCHED("quantize q8");
}

/* The kernels read the rows as quantize_q8 writes them. */
void anv_cuda_pack_q8(int8_t *, float *, int, int) {}

void anv_cuda_matmul_q8_forward(float *out, const float *inp, const int8_t *wq, const float *wd, const float *bias,
                                int N, int IC, int OC) {
    size_t n = (size_t)N * IC;
    if (n == 0 || OC <= 0) return;
    int8_t *xq = (int8_t *)anv_cuda_scratch(n + n / q8::BLOCK * sizeof(float), "q8 matmul");
    if (!xq) return;
    float *xd = (float *)(xq + n); /* n is a multiple of 32: the scales stay 4-byte aligned */
    anv_cuda_quantize_q8(xq, xd, inp, n);
    dim3 grid((OC + q8::WARPS - 1) / q8::WARPS, N);
    q8::forward<<<grid, q8::WARPS * 32, 0, anv_cuda_stream()>>>(out, xq, xd, wq, wd, bias, IC, OC);
    ANV_CUDA_LAUNCHED("matmul q8 forward");
}
