/* General matrix multiply for the CPU kernels (internal to src/kernels/cpu): the GEMMs of
 * kernel_list.h and the built-in GEMM's blocking. */
#ifndef ANVIL_KERNELS_CPU_GEMM_H
#define ANVIL_KERNELS_CPU_GEMM_H

#include "anvil/kernels.h"

/* anv_gemm, anv_gemm_builtin, anv_gemm_bf16: the internal lines of kernel_list.h. */
#define ANV_KERNEL_INTERNAL(ret, name, params, args) ret anv_##name params;
#include "anvil/kernel_list.h"

/* Blocking of the built-in GEMM: C in (MC, NC) tiles, K in KC slices. */
enum { ANV_GEMM_MC = 96, ANV_GEMM_NC = 256, ANV_GEMM_KC = 256 };

/* This thread's packing buffer, MC*KC + KC*NC floats, 64-byte aligned. Defined once (gemm_pack.c),
 * not per ISA copy, so every thread carries one set of thread-local buffers instead of three. */
float *anv_gemm_pack_buffer(void);

/* 1 when the bf16 GEMM may run on AMX tiles here (amx.c); anv_cpu_amx_allow(0) turns that off (tests of
 * the AVX512_BF16 kernel on AMX machines), 1 back on. Defined once, not per ISA copy. */
int anv_cpu_amx(void);
void anv_cpu_amx_allow(int allow);
/* Configures the calling thread's eight tiles as 16 rows of 64 bytes (palette 1), once per thread. */
void anv_cpu_amx_configure(void);

#endif
