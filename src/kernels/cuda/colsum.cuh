/* Deterministic column sums (internal, C++): dst (C) += sum over rows n of value(n, c), for an (N, C)
 * array given by a functor, without atomics. Pass 1: a (32, 8) block owns 32 columns of one chunk of
 * COLSUM_ROWS rows; thread (x, y) sums rows y, y + 8, ... of the chunk in order, and thread (x, 0) adds
 * the 8 row-thread sums in order into the chunk's partial (double). Pass 2: one thread per column
 * adds the chunk partials in chunk order. Every sum has a fixed order, so the bits never vary. */
#ifndef ANVIL_KERNELS_CUDA_COLSUM_CUH
#define ANVIL_KERNELS_CUDA_COLSUM_CUH

#include "kernels/cuda/cuda_common.h"

enum { COLSUM_ROWS = 64, COLSUM_Y = 8 };

/* part (chunks, C): each chunk's column sums. */
template <class F> __global__ void colsum_partials(double *part, int N, int C, F value) {
    __shared__ double s[COLSUM_Y][33];
    int c = blockIdx.x * 32 + threadIdx.x, chunk = blockIdx.y;
    int n0 = chunk * COLSUM_ROWS, n1 = n0 + COLSUM_ROWS < N ? n0 + COLSUM_ROWS : N;
    double acc = 0;
    if (c < C)
        for (int n = n0 + threadIdx.y; n < n1; n += COLSUM_Y) acc += value(n, c);
    s[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double t = 0;
        for (int y = 0; y < COLSUM_Y; y++) t += s[y][threadIdx.x];
        part[(size_t)chunk * C + c] = t;
    }
}

/* dst (C) += sum over the chunks of part (chunks, C), in chunk order. */
static __global__ void colsum_finish(float *dst, const double *part, int chunks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double t = 0;
    for (int k = 0; k < chunks; k++) t += part[(size_t)k * C + c];
    dst[c] += (float)t;
}

/* dst (C) += column sums of value over N rows; `what` names the caller in errors. */
template <class F> void anv_cuda_colsum(float *dst, int N, int C, F value, const char *what) {
    if (N <= 0 || C <= 0) return;
    int chunks = (N + COLSUM_ROWS - 1) / COLSUM_ROWS;
    double *part = (double *)anv_cuda_scratch(sizeof(double) * chunks * C, what);
    if (!part) return;
    cudaStream_t st = anv_cuda_stream();
    colsum_partials<<<dim3((C + 31) / 32, chunks), dim3(32, COLSUM_Y), 0, st>>>(part, N, C, value);
    colsum_finish<<<(C + ANV_CUDA_THREADS - 1) / ANV_CUDA_THREADS, ANV_CUDA_THREADS, 0, st>>>(dst, part, chunks, C);
    ANV_CUDA_LAUNCHED(what);
}

#endif
