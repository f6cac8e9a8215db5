/* Per-instruction-set copies of the CPU kernels (internal).
 *
 * CMake compiles the kernel sources (ANVIL_KERNEL_SOURCES) more than once: as part of the library for
 * the build's baseline target ("portable"), and on x86-64 again with -march=x86-64-v3 (AVX2 + FMA,
 * ANVIL_ISA_AVX2 defined) and -march=x86-64-v4 -mavx512bf16 (AVX-512, ANVIL_ISA_AVX512). Included
 * before any other anvil header, this renames every kernel to <name>_<isa> so the copies coexist in
 * one binary; dispatch.c defines the public names, which call the copy chosen at start. */
#ifndef ANVIL_KERNELS_CPU_ISA_H
#define ANVIL_KERNELS_CPU_ISA_H

#if defined(ANVIL_ISA_AVX512)
#define ANV_ISA_SUFFIX _avx512
#define ANV_ISA_LABEL "avx512"
#elif defined(ANVIL_ISA_AVX2)
#define ANV_ISA_SUFFIX _avx2
#define ANV_ISA_LABEL "avx2"
#else
#define ANV_ISA_SUFFIX _portable
#define ANV_ISA_LABEL "portable"
#endif
#define ANV_ISA_CAT2(a, b) a##b
#define ANV_ISA_CAT(a, b) ANV_ISA_CAT2(a, b)
#define ANV_ISA_NAME(name) ANV_ISA_CAT(name, ANV_ISA_SUFFIX)

#define anv_matmul_forward ANV_ISA_NAME(anv_matmul_forward)
#define anv_matmul_backward ANV_ISA_NAME(anv_matmul_backward)
#define anv_matmul_nt_forward ANV_ISA_NAME(anv_matmul_nt_forward)
#define anv_matmul_nt_backward ANV_ISA_NAME(anv_matmul_nt_backward)
#define anv_embedding_forward ANV_ISA_NAME(anv_embedding_forward)
#define anv_embedding_backward ANV_ISA_NAME(anv_embedding_backward)
#define anv_layernorm_forward ANV_ISA_NAME(anv_layernorm_forward)
#define anv_layernorm_backward ANV_ISA_NAME(anv_layernorm_backward)
#define anv_gelu_forward ANV_ISA_NAME(anv_gelu_forward)
#define anv_gelu_backward ANV_ISA_NAME(anv_gelu_backward)
#define anv_residual_forward ANV_ISA_NAME(anv_residual_forward)
#define anv_residual_backward ANV_ISA_NAME(anv_residual_backward)
#define anv_attention_scratch_floats ANV_ISA_NAME(anv_attention_scratch_floats)
#define anv_attention_forward ANV_ISA_NAME(anv_attention_forward)
#define anv_attention_backward ANV_ISA_NAME(anv_attention_backward)
#define anv_attention_decode ANV_ISA_NAME(anv_attention_decode)
#define anv_crossentropy_chunk_forward ANV_ISA_NAME(anv_crossentropy_chunk_forward)
#define anv_crossentropy_loss_sum ANV_ISA_NAME(anv_crossentropy_loss_sum)
#define anv_crossentropy_chunk_backward ANV_ISA_NAME(anv_crossentropy_chunk_backward)
#define anv_fill ANV_ISA_NAME(anv_fill)
#define anv_scale_into ANV_ISA_NAME(anv_scale_into)
#define anv_add_scaled ANV_ISA_NAME(anv_add_scaled)
#define anv_sumsq ANV_ISA_NAME(anv_sumsq)
#define anv_adamw_update ANV_ISA_NAME(anv_adamw_update)
#define anv_gemm ANV_ISA_NAME(anv_gemm)
#define anv_gemm_builtin ANV_ISA_NAME(anv_gemm_builtin)
#define anv_gemm_bf16 ANV_ISA_NAME(anv_gemm_bf16)
#define anv_cpu_kernels ANV_ISA_NAME(anv_cpu_kernels)

#endif
