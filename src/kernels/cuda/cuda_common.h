/* Shared by the CUDA kernels (internal, C++): the stream every kernel runs on, the cuBLASLt handle,
 * device scratch memory, error reporting, launch sizes, and the warp reductions of warp.cuh. */
#ifndef ANVIL_KERNELS_CUDA_COMMON_H
#define ANVIL_KERNELS_CUDA_COMMON_H

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stddef.h>

#include "anvil/base.h"
#include "kernels/cuda/warp.cuh"
#include "kernels/table.h"

/* ---- device state (device.cu); valid after anv_cuda_init() succeeded ---- */
cudaStream_t anv_cuda_stream(void);
cublasLtHandle_t anv_cuda_lt(void);
void *anv_cuda_lt_workspace(size_t *bytes);
/* Device memory of at least `bytes` for one kernel call: every call may reuse (or replace) the same
 * block, which is safe because all kernels are ordered on the one stream. NULL with an error (logged)
 * naming `what`. */
void *anv_cuda_scratch(size_t bytes, const char *what);

/* ---- errors ----
 * 0 when err is cudaSuccess; otherwise records "CUDA <what>: <message>" with anv_error and returns -1. */
int anv_cuda_check(cudaError_t err, const char *what);
/* The same for a cuBLASLt status. */
int anv_cublas_check(cublasStatus_t st, const char *what);
/* For kernels, which return nothing: anv_cuda_check, and a failure is also logged (a warning), since
 * the caller has no status to look at. Call after each launch with the launch's error. */
void anv_cuda_report(cudaError_t err, const char *what);
#define ANV_CUDA_LAUNCHED(what) anv_cuda_report(cudaGetLastError(), what)

/* ---- launch sizes ---- */
enum { ANV_CUDA_THREADS = 256 };
/* Blocks of ANV_CUDA_THREADS for a grid-stride loop over n elements: at least 1, at most 2^20. */
static inline unsigned anv_cuda_blocks(size_t n) {
    size_t b = (n + ANV_CUDA_THREADS - 1) / ANV_CUDA_THREADS;
    return b < 1 ? 1u : b > (1u << 20) ? (1u << 20) : (unsigned)b;
}

#endif
