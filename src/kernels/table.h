/* One backend's kernels as a table of function pointers, a member per line of kernel_list.h (internal).
 * Each CPU instruction-set copy and the CUDA backend provide one; src/kernels/cpu/dispatch.c routes the
 * public names of kernels.h to the table in use. */
#ifndef ANVIL_KERNELS_TABLE_H
#define ANVIL_KERNELS_TABLE_H

#include "anvil/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha op(A) op(B) + beta C, row-major; op transposes when ta / tb (see kernels/cpu/gemm.h). */
typedef void anv_gemm_fn(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                         int ldb, float beta, float *C, int ldc);

typedef struct {
    const char *name;    /* "avx512", "avx2", "portable", "cuda" */
    size_t block_floats; /* anv_device_block_floats() */
#define ANV_KERNEL(ret, name, params, args) ret(*name) params;
#include "anvil/kernel_list.h"
} anv_kernel_table_t;

#ifdef ANVIL_HAVE_CUDA
/* What the CUDA backend module (src/kernels/cuda/, libanvil_cuda.so) exports for cuda_module.c: its
 * table, and device memory. */
extern const anv_kernel_table_t anv_cuda_kernels;
/* 0 when a usable GPU is present; else -1 with an error saying why ("no CUDA device", driver). */
int anv_cuda_init(void);
void *anv_cuda_alloc(size_t bytes, const char *what); /* managed memory, zero-filled */
void anv_cuda_free(void *p);
void anv_cuda_sync(void);
size_t anv_cuda_memory_bytes(void);
/* Events for the kernel profiler (see cuda_module.h). */
int anv_cuda_timer_mark(void);
double anv_cuda_timer_seconds(int begin, int end);
void anv_cuda_timer_reset(void);
#endif

#ifdef __cplusplus
}
#endif

#endif
