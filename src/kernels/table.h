/* One backend's kernels as a table of function pointers (internal). Each CPU instruction-set copy and
 * the CUDA backend provide one; src/kernels/cpu/dispatch.c routes the public names of kernels.h to the
 * table in use. */
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
    const char *name; /* "avx512", "avx2", "portable", "cuda" */
    __typeof__(anv_matmul_forward) *matmul_forward;
    __typeof__(anv_matmul_backward) *matmul_backward;
    __typeof__(anv_matmul_nt_forward) *matmul_nt_forward;
    __typeof__(anv_matmul_nt_backward) *matmul_nt_backward;
    __typeof__(anv_embedding_forward) *embedding_forward;
    __typeof__(anv_embedding_backward) *embedding_backward;
    __typeof__(anv_layernorm_forward) *layernorm_forward;
    __typeof__(anv_layernorm_backward) *layernorm_backward;
    __typeof__(anv_gelu_forward) *gelu_forward;
    __typeof__(anv_gelu_backward) *gelu_backward;
    __typeof__(anv_residual_forward) *residual_forward;
    __typeof__(anv_residual_backward) *residual_backward;
    __typeof__(anv_attention_scratch_floats) *attention_scratch_floats;
    __typeof__(anv_attention_forward) *attention_forward;
    __typeof__(anv_attention_backward) *attention_backward;
    __typeof__(anv_attention_decode) *attention_decode;
    __typeof__(anv_crossentropy_chunk_forward) *crossentropy_chunk_forward;
    __typeof__(anv_crossentropy_loss_sum) *crossentropy_loss_sum;
    __typeof__(anv_crossentropy_chunk_backward) *crossentropy_chunk_backward;
    __typeof__(anv_fill) *fill;
    __typeof__(anv_scale_into) *scale_into;
    __typeof__(anv_add_scaled) *add_scaled;
    __typeof__(anv_sumsq) *sumsq;
    __typeof__(anv_adamw_update) *adamw_update;
    anv_gemm_fn *gemm;         /* the GEMM the matmuls use (OpenBLAS on the CPU where built with it) */
    anv_gemm_fn *gemm_builtin; /* anvil's own GEMM (the same as gemm where there is no other) */
    anv_gemm_fn *gemm_bf16;    /* the product with inputs rounded to bf16 (matmul precision BF16) */
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
/* Events for the kernel profiler (see cuda_module.h). */
int anv_cuda_timer_mark(void);
double anv_cuda_timer_seconds(int begin, int end);
void anv_cuda_timer_reset(void);
#endif

#ifdef __cplusplus
}
#endif

#endif
