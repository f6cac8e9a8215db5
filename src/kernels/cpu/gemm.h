/* General matrix multiply for the CPU kernels (internal to src/kernels/cpu).
 * C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C, row-major with leading dimensions.
 * op(A) = A^T when ta (A stored (K, M)); op(B) = B^T when tb (B stored (N, K)). beta 0 ignores C's
 * old contents. Runs on the OpenMP pool when called outside a parallel region, on the calling thread
 * inside one. Deterministic: each C element sums over K in a fixed order. */
#ifndef ANVIL_KERNELS_CPU_GEMM_H
#define ANVIL_KERNELS_CPU_GEMM_H

void anv_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

/* The built-in blocked GEMM (same contract): anv_gemm without OpenBLAS or on AVX-512 (gemm.c), and the
 * small per-head products of attention, which run inside the kernel's own parallel loop (whatever OpenMP runtime OpenBLAS was
 * built with). */
void anv_gemm_builtin(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc);

/* The same product in mixed precision (anv_matmul_precision() BF16): op(A) and op(B) rounded to bfloat16
 * (round to nearest even; subnormals to zero, NaN kept), products accumulated in fp32, C fp32. The same
 * contract as anv_gemm; vdpbf16ps on CPUs with AVX512_BF16, software rounding elsewhere. */
void anv_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc);

/* Blocking of the built-in GEMM: C in (MC, NC) tiles, K in KC slices. */
enum { ANV_GEMM_MC = 96, ANV_GEMM_NC = 256, ANV_GEMM_KC = 256 };

/* This thread's packing buffer, MC*KC + KC*NC floats, 64-byte aligned. Defined once (gemm_pack.c),
 * not per ISA copy, so every thread carries one set of thread-local buffers instead of three. */
float *anv_gemm_pack_buffer(void);

#endif
